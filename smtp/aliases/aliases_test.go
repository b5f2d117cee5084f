package aliases

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
)

const sample = `# aliases for example.com
postmaster: root
root: alice
sales: bob, carol@example.com,
	dave@elsewhere.net
team: sales, alice
everyone: :include:/etc/mail/everyone
lists: "|/usr/bin/mailman post lists", alice
archive: /var/mail/archive
only-pipe: "|/bin/false"
loop1: loop2
loop2: loop1
Info@example.org: alice@example.com
`

func isLocal(d string) bool { return d == "example.com" || d == "example.org" }

func parse(t *testing.T, text string) *Map {
	t.Helper()
	m, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExpand(t *testing.T) {
	m := parse(t, sample)
	var logs bytes.Buffer
	m.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m.ReadInclude = func(path string) (io.ReadCloser, error) {
		if path != "/etc/mail/everyone" {
			return nil, os.ErrNotExist
		}
		return io.NopCloser(strings.NewReader("# staff\nalice, bob\n\"|/bin/sh\"\nerin@example.org\n")), nil
	}
	cases := []struct {
		in   string
		want []string
	}{
		{"alice@example.com", []string{"alice@example.com"}},
		{"postmaster@example.com", []string{"alice@example.com"}},
		{"postmaster@example.org", []string{"alice@example.org"}},
		{"sales@example.com", []string{"bob@example.com", "carol@example.com", "dave@elsewhere.net"}},
		{"team@example.com", []string{"bob@example.com", "carol@example.com", "dave@elsewhere.net", "alice@example.com"}},
		{"everyone@example.com", []string{"alice@example.com", "bob@example.com", "erin@example.org"}},
		{"lists@example.com", []string{"alice@example.com"}},
		{"info@example.org", []string{"alice@example.com"}},
	}
	for _, tc := range cases {
		got, err := m.Expand(tc.in, isLocal)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Expand(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if !strings.Contains(logs.String(), "aliases target refused") || !strings.Contains(logs.String(), "mailman") {
		t.Errorf("pipe refusal not logged: %s", logs.String())
	}
}

func TestExpandFailures(t *testing.T) {
	m := parse(t, sample)
	for _, in := range []string{"loop1@example.com", "only-pipe@example.com", "archive@example.com"} {
		if got, err := m.Expand(in, isLocal); !errors.Is(err, ErrLoop) {
			t.Errorf("Expand(%s) = %v, %v; want ErrLoop (nothing deliverable)", in, got, err)
		}
	}
	if _, err := m.Expand("everyone@example.com", isLocal); err == nil || !strings.Contains(err.Error(), "includes are not enabled") {
		t.Errorf(":include: without a reader: err = %v", err)
	}
}

func TestExpandDepthAndSize(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 20; i++ {
		b.WriteString("a" + string(rune('a'+i)) + ": a" + string(rune('a'+i+1)) + "\n")
	}
	m := parse(t, b.String())
	if _, err := m.Expand("aa@example.com", isLocal); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep chain: err = %v", err)
	}
	var big strings.Builder
	big.WriteString("big: ")
	for i := 0; i < maxExpansion+5; i++ {
		fmt.Fprintf(&big, "v%d@remote.net, ", i)
	}
	m = parse(t, big.String())
	if _, err := m.Expand("big@example.com", isLocal); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("huge list: err = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"  indented: x\n", "line 1: continuation line without an alias"},
		{"noseparator\n", "line 1: missing ':'"},
		{"a: b\na: c\n", `line 2: alias "a" defined twice`},
		{": b\n", "line 1: bad alias name"},
		{"a:\n", `line 1: alias "a" has no targets`},
		{"a: b c\n", `line 1: bad target "b c"`},
		{"ok: x\n\nbad: <x>\n", "line 3: bad target"},
	}
	for _, tc := range cases {
		_, err := Parse(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) err = %v, want %q", tc.text, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("a: b,\n c\n")
	f.Add("x: \"|a,b\", y\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(strings.NewReader(text))
		if err != nil {
			return
		}
		for k := range m.entries {
			addr := k
			if !strings.Contains(addr, "@") {
				addr += "@example.com"
			}
			_, _ = m.Expand(addr, isLocal)
		}
	})
}

// TestCatchAll: "@domain" takes what no other key names in that domain,
// once: its targets are not caught again, and %1 is the local part.
func TestCatchAll(t *testing.T) {
	m := parse(t, `@example.org: catchall
@example.com: %1@example.org
info@example.org: alice@example.com
postmaster: alice@example.com
`)
	cases := []struct {
		in   string
		want []string
	}{
		{"nobody@example.org", []string{"catchall@example.org"}},   // caught once, not again
		{"info@example.org", []string{"alice@example.com"}},        // the address wins
		{"postmaster@example.org", []string{"alice@example.com"}},  // so does a local-part key
		{"sales@example.com", []string{"sales@example.org"}},       // %1, and not caught a second time
		{"catchall@example.org", []string{"catchall@example.org"}}, // the catch-all's own mailbox
	}
	for _, tc := range cases {
		got, err := m.Expand(tc.in, isLocal)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Expand(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if !m.Has("anyone@example.org") || m.Has("anyone@example.net") {
		t.Error("Has does not follow the catch-all")
	}
}
