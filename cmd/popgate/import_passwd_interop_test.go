//go:build interop

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// poplibLogin logs in over POP3 with Python's poplib (USER/PASS, then
// STAT and QUIT) from the loopback address from, and returns its output and
// whether it succeeded. Each attempt comes from its own address so that
// the failed-login limiter, which counts per IP, stays out of the way.
func poplibLogin(t *testing.T, addr, from, user, pass string) (string, bool) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	script := `import poplib, socket, sys
class POP3From(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(sys.argv[5], 0))
p = POP3From(sys.argv[1], int(sys.argv[2]), timeout=20)
try:
    p.user(sys.argv[3]); p.pass_(sys.argv[4]); print("stat", p.stat()); p.quit(); print("login ok")
except poplib.error_proto as e:
    print("refused", e); sys.exit(1)`
	out, err := exec.Command(need(t, "python3"), "-c", script, host, port, user, pass, from).CombinedOutput()
	return string(out), err == nil
}

// TestInteropImportPasswdLogin: a passwd and shadow file whose hashes
// libxcrypt made (mkpasswd, every method a shadow file holds), imported by
// the real binary, then `popgate serve`: each user logs in over POP3 with
// the original password, and not with a wrong one. Locked, DES and system
// accounts are reported as skipped, and a second import adds nothing.
func TestInteropImportPasswdLogin(t *testing.T) {
	mk := need(t, "mkpasswd")
	dir := t.TempDir()
	type account struct{ name, method, password string }
	accounts := []account{
		{"yes", "yescrypt", "correct horse battery"},
		{"yeslow", "yescrypt -R 1", "ünïcode pässwörd"},
		{"sha512", "sha512crypt", "Tr0ub4dor&3"},
		{"sha256", "sha256crypt", "hunter2 hunter2"},
		{"md5", "md5crypt", "old but gold"},
		{"blf", "bcrypt -R 5", "blowfish!"},
		{"locked", "sha512crypt", "never used"},
		{"des", "descrypt", "shortpw"},
		{"sys", "sha512crypt", "system"},
	}
	var passwd, shadow strings.Builder
	for i, a := range accounts {
		args := append(strings.Fields("-m "+a.method), "--stdin")
		cmd := exec.Command(mk, args...)
		cmd.Stdin = strings.NewReader(a.password + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mkpasswd %v: %v", args, err)
		}
		hash := strings.TrimSpace(string(out))
		if a.name == "locked" {
			hash = "!" + hash
		}
		uid := 1000 + i
		if a.name == "sys" {
			uid = 120
		}
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:/home/%s:/bin/false\n", a.name, uid, uid, a.name, a.name)
		fmt.Fprintf(&shadow, "%s:%s:20000:0:99999:7:::\n", a.name, hash)
	}
	passwdPath := filepath.Join(dir, "passwd")
	shadowPath := filepath.Join(dir, "shadow")
	cfg := filepath.Join(dir, "popgate.toml")
	for path, text := range map[string]string{
		passwdPath: passwd.String(),
		shadowPath: shadow.String(),
		cfg: fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com", "office.example"]
data_dir = %q
[pop3]
listen = ["127.0.0.1:0"]
[smtp]
listen = ["127.0.0.1:0"]
submission = ["127.0.0.1:0"]
`, dir),
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"import", "passwd", "--passwd", passwdPath, "--shadow", shadowPath, "--domain", "office.example", "--config", cfg}
	out, err := runCmd(t, "", binary(t), args...)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	for _, want := range []string{
		"imported yes@office.example (yescrypt)", "imported yeslow@office.example (yescrypt)",
		"imported sha512@office.example (SHA-512-crypt)", "imported sha256@office.example (SHA-256-crypt)",
		"imported md5@office.example (MD5-crypt (weak))", "imported blf@office.example (bcrypt)",
		"skipped  locked (passwd line 7): locked", "skipped  des (passwd line 8): unsupported scheme DES crypt",
		"skipped  sys (passwd line 9): system account (uid 120 < min-uid 1000)",
		"6 imported, 0 already present, 3 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	if out, err := runCmd(t, "", binary(t), "check", "--config", cfg); err != nil {
		t.Fatalf("check after import: %v\n%s", err, out)
	}

	s := startBinary(t, cfg)
	for i, a := range accounts[:6] {
		user := a.name + "@office.example"
		if out, ok := poplibLogin(t, s.pop, fmt.Sprintf("127.0.0.%d", 10+i), user, a.password); !ok || !strings.Contains(out, "login ok") {
			t.Errorf("%s (%s) cannot log in with the original password:\n%s", user, a.method, out)
		}
		if out, ok := poplibLogin(t, s.pop, fmt.Sprintf("127.0.0.%d", 30+i), user, a.password+"x"); ok || !strings.Contains(out, "refused") {
			t.Errorf("%s (%s): a wrong password was not refused:\n%s", user, a.method, out)
		}
	}
	if out, ok := poplibLogin(t, s.pop, "127.0.0.50", "locked@office.example", "never used"); ok || !strings.Contains(out, "refused") {
		t.Errorf("a locked account logged in:\n%s", out)
	}

	// Idempotent, also while the server runs: nothing added.
	out, err = runCmd(t, "", binary(t), args...)
	if err != nil || !strings.Contains(out, "0 imported, 6 already present, 3 skipped") {
		t.Errorf("second import: %v\n%s", err, out)
	}
	// Bad input through the binary: a malformed shadow file names its line.
	bad := filepath.Join(dir, "shadow.bad")
	if err := os.WriteFile(bad, []byte(shadow.String()+"broken:line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "", binary(t), "import", "passwd", "--passwd", passwdPath, "--shadow", bad, "--config", cfg)
	if err == nil || !strings.Contains(out, bad+":10: 2 fields, want 9") {
		t.Errorf("malformed shadow: %v\n%s", err, out)
	}
}
