package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/auth"
	"github.com/spf13/afero"
)

// userCLI runs `popgate user ...` in-process against a configuration whose
// users file is in dir, feeding stdin.
func userCLI(t *testing.T, cfgPath, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code := run(context.Background(), e, append(append([]string{"user"}, args...), "--config", cfgPath))
	return out.String(), errb.String(), code
}

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "popgate.toml", "data_dir = \""+dir+"\"\n")
	users := filepath.Join(dir, "users")

	if out, errs, code := userCLI(t, cfgPath, "first passphrase\n", "add", "--stdin", "Alice@Example.com"); code != 0 || !strings.Contains(out, "added alice@example.com") {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	if st, err := os.Stat(users); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	if _, _, code := userCLI(t, cfgPath, "second passphrase\n", "add", "--stdin", "bob@example.com"); code != 0 {
		t.Fatal("add bob failed")
	}
	verify := func(user, pass string) bool {
		u, err := auth.NewUsers(afero.NewOsFs(), users, time.Now, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = auth.NewService(u, auth.NewLimiter(auth.DefaultLimiterConfig(), time.Now), nil).Authenticate(context.Background(), mustAddr("192.0.2.1"), user, pass)
		return err == nil
	}
	if !verify("alice@example.com", "first passphrase") {
		t.Error("alice's password does not verify")
	}
	if out, _, code := userCLI(t, cfgPath, "", "list"); code != 0 || out != "alice@example.com\nbob@example.com\n" {
		t.Errorf("list = %q (%d)", out, code)
	}
	if out, _, code := userCLI(t, cfgPath, "a new passphrase\n", "passwd", "--stdin", "alice@example.com"); code != 0 || !strings.Contains(out, "password changed") {
		t.Errorf("passwd: %d %q", code, out)
	}
	if verify("alice@example.com", "first passphrase") || !verify("alice@example.com", "a new passphrase") {
		t.Error("passwd did not replace the password")
	}
	if out, _, code := userCLI(t, cfgPath, "", "del", "bob@example.com"); code != 0 || !strings.Contains(out, "deleted bob@example.com") {
		t.Errorf("del: %d %q", code, out)
	}
	if out, _, _ := userCLI(t, cfgPath, "", "list"); out != "alice@example.com\n" {
		t.Errorf("list after del = %q", out)
	}

	// Bad input: a clear message, the right exit code, the file untouched.
	before, _ := os.ReadFile(users)
	bad := []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"x passphrase\n", []string{"add", "--stdin", "alice@example.com"}, 1, "exists"},
		{"x passphrase\n", []string{"passwd", "--stdin", "nobody@example.com"}, 1, "nobody@example.com"},
		{"", []string{"del", "nobody@example.com"}, 1, "nobody@example.com"},
		{"short\n", []string{"add", "--stdin", "carol@example.com"}, 1, "too short"},
		{"", []string{"add", "--stdin", "carol@example.com"}, 1, "no input"},
		{"a passphrase\n", []string{"add", "--stdin", "../etc/passwd@example.com"}, 1, ""},
		{"a passphrase\n", []string{"add", "--stdin", "carol"}, 1, ""},
		{"a passphrase\n", []string{"add", "--stdin", "ca/rol@example.com"}, 1, ""},
		{"a passphrase\n", []string{"add", "--stdin", "carol@example.com\x00"}, 1, ""},
		{"a passphrase\n", []string{"add", "--stdin", "car ol@example.com"}, 1, ""},
		{"a passphrase\n", []string{"add", "carol@example.com"}, 2, "--stdin"},
		{"", []string{"add"}, 2, "argument"},
		{"", []string{"list", "extra"}, 2, "argument"},
		{"", []string{"frob", "x@example.com"}, 2, "unknown user command"},
	}
	for _, tc := range bad {
		_, errs, code := userCLI(t, cfgPath, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || errs == "" {
			t.Errorf("user %q: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if after, _ := os.ReadFile(users); !bytes.Equal(before, after) {
		t.Errorf("bad input changed the users file:\n%s\n---\n%s", before, after)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
