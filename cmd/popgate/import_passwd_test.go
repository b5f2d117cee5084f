package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/auth"
	"github.com/spf13/afero"
)

// Hashes of "correct horse" made by mkpasswd (Debian whois, libxcrypt).
const (
	testYescrypt = "$y$j75$pE4qh5RGOS3sC2mZ06ZQv.$SBOEw/TE/MXJBzydUrI1PlMcUZ.ZmJg1Dv8blT5kJV/"
	testSHA512   = "$6$5Ae7s6VThkGQsFjG$Sj0V.0THB6QY7pYpa3WYHd433Ui0F0KemloUMugNXoO/Aapc54OlH81p9OOLVb.fOdUh4XQ4covNcE88RtU27/"
	testMD5      = "$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8."
)

// importCLI runs `popgate import passwd ARGS --config cfg` in-process.
func importCLI(t *testing.T, cfg string, args ...string) (string, string, int) {
	t.Helper()
	return runPopgate(t, append(append([]string{"import", "passwd"}, args...), "--config", cfg)...)
}

// passwdFixture writes a passwd and a shadow file into dir.
func passwdFixture(t *testing.T, dir string) (passwd, shadow string) {
	t.Helper()
	passwd = writeFile(t, dir, "passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"+
		"bob:x:1001:1001:Bob:/home/bob:/bin/false\n"+
		"carol:x:1002:1002:Carol:/home/carol:/bin/sh\n"+
		"dave:x:1003:1003:Dave:/home/dave:/bin/sh\n")
	shadow = writeFile(t, dir, "shadow", "root:"+testSHA512+":19000:0:99999:7:::\n"+
		"alice:"+testYescrypt+":19000:0:99999:7:::\n"+
		"bob:"+testSHA512+":19000:0:99999:7:::\n"+
		"carol:!"+testSHA512+":19000:0:99999:7:::\n"+
		"dave:"+testMD5+":19000:0:99999:7:::\n")
	return passwd, shadow
}

// TestImportPasswd: the accounts become users who log in with their old
// password; system and locked accounts are listed as skipped; a second run
// adds nothing and reports the users as present.
func TestImportPasswd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "popgate.toml", "data_dir = \""+dir+"\"\ndomains = [\"example.com\", \"example.org\"]\n")
	passwd, shadow := passwdFixture(t, dir)

	out, errs, code := importCLI(t, cfg, "--passwd", passwd, "--shadow", shadow, "--domain", "Example.ORG")
	if code != 0 {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	for _, want := range []string{
		"skipped  root (passwd line 1): system account (uid 0 < min-uid 1000)",
		"imported alice@example.org (yescrypt)",
		"imported bob@example.org (SHA-512-crypt)",
		"skipped  carol (passwd line 4): locked",
		"imported dave@example.org (MD5-crypt (weak))",
		"3 imported, 0 already present, 2 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "1 user(s) have weak MD5-crypt hashes") {
		t.Errorf("no MD5 warning: %q", errs)
	}
	users := filepath.Join(dir, "users")
	first, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(users); st.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, want 0600", st.Mode().Perm())
	}
	if want := "alice@example.org:{CRYPT}" + testYescrypt + "\nbob@example.org:{SHA512-CRYPT}" + testSHA512 +
		"\ndave@example.org:{MD5-CRYPT}" + testMD5 + "\n"; string(first) != want {
		t.Errorf("users file:\n%s\nwant:\n%s", first, want)
	}
	u, err := auth.NewUsers(afero.NewOsFs(), users, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := auth.NewService(u, auth.NewLimiter(auth.DefaultLimiterConfig(), time.Now), nil)
	for _, user := range []string{"alice@example.org", "bob@example.org", "dave@example.org"} {
		if _, err := svc.Authenticate(context.Background(), mustAddr("192.0.2.1"), user, "correct horse"); err != nil {
			t.Errorf("%s cannot log in with the old password: %v", user, err)
		}
	}
	if _, err := svc.Authenticate(context.Background(), mustAddr("192.0.2.1"), "alice@example.org", "wrong horse"); err == nil {
		t.Error("wrong password accepted")
	}

	// Idempotent: nothing added, everyone reported as present.
	out, _, code = importCLI(t, cfg, "--passwd", passwd, "--shadow", shadow, "--domain", "example.org")
	if code != 0 || !strings.Contains(out, "0 imported, 3 already present, 2 skipped") ||
		!strings.Contains(out, "present  alice@example.org: already in the users file, left alone") {
		t.Errorf("second run: %d\n%s", code, out)
	}
	if again, _ := os.ReadFile(users); !bytes.Equal(again, first) {
		t.Errorf("second run changed the users file:\n%s", again)
	}

	// A user set by hand since is left alone; --min-uid 0 adds root, and
	// the default domain is the first configured one.
	out, _, code = importCLI(t, cfg, "--passwd", passwd, "--shadow", shadow, "--min-uid", "0")
	if code != 0 || !strings.Contains(out, "imported root@example.com") || !strings.Contains(out, "imported alice@example.com") {
		t.Errorf("min-uid 0, default domain: %d\n%s", code, out)
	}
}

// TestImportPasswdBadInput: malformed files are refused with file:line and
// write nothing; unreadable files, unknown domains and bad flags get a
// clear message.
func TestImportPasswdBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "popgate.toml", "data_dir = \""+dir+"\"\ndomains = [\"example.com\"]\n")
	passwd, shadow := passwdFixture(t, dir)
	badPasswd := writeFile(t, dir, "passwd.bad", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice\n")
	badShadow := writeFile(t, dir, "shadow.bad", "alice:"+testYescrypt+":19000:0:99999:7:::\nbob:x\n")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--passwd", badPasswd, "--shadow", shadow}, 1, badPasswd + ":2: 6 fields, want 7"},
		{[]string{"--passwd", passwd, "--shadow", badShadow}, 1, badShadow + ":2: 2 fields, want 9"},
		{[]string{"--passwd", filepath.Join(dir, "missing"), "--shadow", shadow}, 1, "passwd file: open " + filepath.Join(dir, "missing") + ": no such file"},
		{[]string{"--passwd", passwd, "--shadow", dir}, 1, "shadow file: read " + dir + ": is a directory"},
		{[]string{"--passwd", passwd, "--shadow", shadow, "--domain", "elsewhere.net"}, 2, "--domain elsewhere.net is not one of the configured domains (example.com)"},
		{[]string{"--passwd", passwd, "--shadow", shadow, "--min-uid", "-5"}, 2, "--min-uid -5: must not be negative"},
		{[]string{"--passwd", passwd, "--shadow", shadow, "--min-uid", "many"}, 2, "invalid value"},
		{[]string{"--passwd", passwd, "extra"}, 2, "usage: popgate import passwd"},
	}
	for _, c := range cases {
		out, errs, code := importCLI(t, cfg, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q (stdout %q)", c.args, code, errs, c.code, c.want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "users")); !os.IsNotExist(err) {
		t.Errorf("a refused import left a users file: %v", err)
	}
}
