package maildir

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestMailboxPath(t *testing.T) {
	s := NewStore(afero.NewMemMapFs(), "/data/mail/", Options{})
	good := []struct{ domain, local, want string }{
		{"example.com", "alice", "/data/mail/example.com/alice"},
		{"Example.COM", "alice", "/data/mail/example.com/alice"},
		{"example.com", "Alice.Smith", "/data/mail/example.com/Alice.Smith"},
		{"example.com", "a+tag", "/data/mail/example.com/a+tag"},
		{"xn--bcher-kva.example", "b", "/data/mail/xn--bcher-kva.example/b"},
	}
	for _, tt := range good {
		got, err := s.MailboxPath(tt.domain, tt.local)
		if err != nil || got != tt.want {
			t.Errorf("MailboxPath(%q, %q) = %q, %v; want %q", tt.domain, tt.local, got, err, tt.want)
		}
	}
	bad := []struct{ domain, local string }{
		{"example.com", "../x"},
		{"example.com", "a/b"},
		{"example.com", ""},
		{"", "alice"},
		{"example.com", "x\x00"},
		{"example.com", "\n"},
		{"example.com", "a\tb"},
		{"example.com", "a\x7fb"},
		{"example.com", ".."},
		{"..", "alice"},
		{"example.com", "."},
		{"example.com", ".hidden"},
		{"a/b", "alice"},
		{"example.com", `a\b`},
		{"example.com", "john..doe"},
		{"example.com", strings.Repeat("a", 256)},
	}
	for _, tt := range bad {
		got, err := s.MailboxPath(tt.domain, tt.local)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("MailboxPath(%q, %q) = %q, %v; want ErrBadName", tt.domain, tt.local, got, err)
		}
		if _, err := s.Open(tt.domain, tt.local); !errors.Is(err, ErrBadName) {
			t.Errorf("Open(%q, %q) error = %v; want ErrBadName", tt.domain, tt.local, err)
		}
	}
}

func TestNewStoreDefaults(t *testing.T) {
	s := NewStore(afero.NewMemMapFs(), "/m", Options{})
	if s.now == nil || s.log == nil || s.hostname == "" {
		t.Fatalf("defaults not set: now %v log %v hostname %q", s.now != nil, s.log != nil, s.hostname)
	}
}
