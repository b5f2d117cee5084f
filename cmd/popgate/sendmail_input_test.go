package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadSendmailMessage(t *testing.T) {
	tests := []struct {
		in         string
		ignoreDots bool
		want       string
	}{
		{"a\n.\nb\n", false, "a\n"},
		{"a\r\n.\r\nb\r\n", false, "a\r\n"},
		{"a\n.\nb\n", true, "a\n.\nb\n"},
		{"a\n..\nb\n", false, "a\n..\nb\n"},
		{"a\n. \nb\n", false, "a\n. \nb\n"},
		{"a\nx.\n", false, "a\nx.\n"},
		{"a\n.", false, "a\n"},
		{".\n", false, ""},
		{"no newline", false, "no newline"},
		{"", false, ""},
		{strings.Repeat("y", 70000) + ".\n.\n", false, strings.Repeat("y", 70000) + ".\n"},
	}
	for _, tt := range tests {
		got, err := readSendmailMessage(strings.NewReader(tt.in), tt.ignoreDots, 1<<20)
		if err != nil || string(got) != tt.want {
			t.Errorf("read(%.30q, -i=%v) = %.30q, %v; want %.30q", tt.in, tt.ignoreDots, got, err, tt.want)
		}
	}
	if _, err := readSendmailMessage(strings.NewReader(strings.Repeat("x\n", 600)), true, 1024); !errors.Is(err, errMessageTooLarge) {
		t.Errorf("oversized message: err = %v", err)
	}
}

func TestExtractRecipients(t *testing.T) {
	tests := []struct {
		msg  string
		want []string
	}{
		{"To: alice\nSubject: s\n\nTo: not@header\n", []string{"alice"}},
		{"To: Alice <alice@example.com>, bob@example.com\r\nCc: \"Carol, C.\" <carol@example.com>\r\nBcc: dave@x.example\r\n\r\n",
			[]string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@x.example"}},
		{"to: a@example.com,\n  b@example.com\nCC: c@example.com\n\n", []string{"a@example.com", "b@example.com", "c@example.com"}},
		{"To: undisclosed-recipients:;\nBcc: x@example.com\n\n", []string{"x@example.com"}},
		{"To: team: a@example.com, b@example.com;\n\n", []string{"a@example.com", "b@example.com"}},
		{"To: root, www-data (the web server)\n\n", []string{"root", "www-data"}},
		{"To: Root <root>\n\n", []string{"root"}},
		{"From: x@example.com\nSubject: none\n\n", nil},
		{"Resent-To: r@example.com\nX-To: y@example.com\n\n", nil},
		{"no header line\nTo: a@example.com\n", nil},
	}
	for _, tt := range tests {
		if got := extractRecipients([]byte(tt.msg)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("extract(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func FuzzExtractRecipients(f *testing.F) {
	f.Add("To: Alice <alice@example.com>, root\nCc: \"a, b\" <c@d>\n\nbody")
	f.Add("To: g: a@b, (c) d@e;\n\n")
	f.Add("Bcc: <<>>,,(((\n")
	f.Fuzz(func(t *testing.T, msg string) {
		for _, r := range extractRecipients([]byte(msg)) {
			if r == "" || strings.ContainsAny(r, "\r\n") {
				t.Fatalf("bad recipient %q from %q", r, msg)
			}
		}
	})
}
