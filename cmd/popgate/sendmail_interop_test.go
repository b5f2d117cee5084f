//go:build interop

package main

// sendmail(1) through the real binary, called the way real programs call
// it: bsd-mailx (set sendmail= in MAILRC), Python's subprocess with -t -i,
// git send-email --smtp-server=, PHP's mail() with sendmail_path, and a
// local user other than root. The binary is reached through symlinks named
// sendmail, mailq and newaliases, as the Debian package installs them.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sendmailEnv is a data directory, a configuration and a copy of the
// binary with sendmail, mailq and newaliases symlinks, all reachable by an
// unprivileged user.
type sendmailEnv struct {
	dir, cfg, data, sendmail string
}

func newSendmailEnv(t *testing.T) *sendmailEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &sendmailEnv{dir: dir, cfg: filepath.Join(dir, "popgate.toml"), data: filepath.Join(dir, "data")}
	bin := filepath.Join(dir, "popgate")
	in, err := os.Open(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()
	for _, name := range []string{"sendmail", "mailq", "newaliases"} {
		if err := os.Symlink("popgate", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.sendmail = filepath.Join(dir, "sendmail")
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.data, "users"), []byte("alice@example.com:{PLAIN}a\nbob@example.com:{PLAIN}b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aliases := filepath.Join(dir, "aliases")
	if err := os.WriteFile(aliases, []byte("postmaster: alice\nroot: alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com"]
data_dir = %q
[users]
aliases = %q
[pop3]
listen = ["127.0.0.1:0"]
[smtp]
listen = ["127.0.0.1:0"]
submission = []
[queue]
smarthost = "127.0.0.1:1"
`, e.data, aliases)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// command runs a program with POPGATE_CONFIG set, optionally as uid 65534.
func (e *sendmailEnv) command(t *testing.T, asNobody bool, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	home := filepath.Join(e.dir, "home")
	_ = os.MkdirAll(home, 0o777)
	_ = os.Chmod(home, 0o777)
	cmd.Env = append(os.Environ(), "POPGATE_CONFIG="+e.cfg, "HOME="+home, "MAILRC="+filepath.Join(e.dir, "mailrc"))
	if asNobody {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mailbox returns the messages in a user's maildir new/.
func (e *sendmailEnv) mailbox(t *testing.T, user string) []string {
	t.Helper()
	dir := filepath.Join(e.data, "mail", "example.com", user, "new")
	es, _ := os.ReadDir(dir)
	var out []string
	for _, en := range es {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// find returns the one message in user's maildir that contains marker.
func (e *sendmailEnv) find(t *testing.T, user, marker string) string {
	t.Helper()
	var found []string
	for _, m := range e.mailbox(t, user) {
		if strings.Contains(m, marker) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d messages with %q", user, len(found), marker)
	}
	return found[0]
}

func TestInteropSendmailClients(t *testing.T) {
	e := newSendmailEnv(t)
	startBinary(t, e.cfg)

	t.Run("bsd-mailx", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(e.dir, "mailrc"), []byte("set sendmail="+e.sendmail+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := e.command(t, false, "sent by mailx\n", need(t, "mail"), "-s", "mailx subject", "alice@example.com")
		if err != nil {
			t.Fatalf("mail: %v\n%s", err, out)
		}
		m := e.find(t, "alice", "Subject: mailx subject")
		if !strings.Contains(m, "\n\nsent by mailx\n") || !strings.Contains(m, "(popgate, from userid 0 root via socket)") {
			t.Errorf("mailx message:\n%s", m)
		}
	})

	t.Run("python subprocess -t -i", func(t *testing.T) {
		script := `import subprocess, sys
msg = b"To: Bob <bob@example.com>\nCc: postmaster\nBcc: alice@example.com\nSubject: from python\n\nline\n.\nafter dot\n"
r = subprocess.run([sys.argv[1], "-t", "-i"], input=msg)
sys.exit(r.returncode)
`
		out, err := e.command(t, false, "", need(t, "python3"), "-c", script, e.sendmail)
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		bob := e.find(t, "bob", "Subject: from python")
		if strings.Contains(bob, "Bcc:") || !strings.Contains(bob, "\nline\n.\nafter dot\n") {
			t.Errorf("bob's copy:\n%s", bob)
		}
		// postmaster (Cc) and alice (Bcc) are both alice: one copy.
		e.find(t, "alice", "Subject: from python")
	})

	t.Run("git send-email", func(t *testing.T) {
		repo := filepath.Join(e.dir, "repo")
		git := need(t, "git")
		if out, err := e.command(t, false, "", git, "init", "-q", repo); err != nil {
			t.Fatalf("git init: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(repo, "README"), []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"-C", repo, "add", "README"},
			{"-C", repo, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", "a patch for popgate"},
			{"-C", repo, "format-patch", "-1", "-o", filepath.Join(e.dir, "patches")},
		} {
			if out, err := e.command(t, false, "", git, args...); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		patches, _ := filepath.Glob(filepath.Join(e.dir, "patches", "*.patch"))
		if len(patches) != 1 {
			t.Fatalf("patches: %v", patches)
		}
		out, err := e.command(t, false, "", git, "-C", repo, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "send-email", "--smtp-server="+e.sendmail,
			"--to=bob@example.com", "--from=Dev <dev@example.com>", "--confirm=never", "--suppress-cc=all", "--no-validate", "--quiet", patches[0])
		if err != nil {
			t.Fatalf("git send-email: %v\n%s", err, out)
		}
		m := e.find(t, "bob", "a patch for popgate")
		if !strings.Contains(m, "From: Dev <dev@example.com>") || strings.Contains(m, "X-Authentication-Warning") {
			t.Errorf("git send-email message:\n%s", m)
		}
	})

	t.Run("php mail()", func(t *testing.T) {
		out, err := e.command(t, false, "", need(t, "php"), "-d", "sendmail_path="+e.sendmail+" -t -i", "-r",
			`exit(mail("alice@example.com", "from php", "php body\n.\nstill php") ? 0 : 1);`)
		if err != nil {
			t.Fatalf("php: %v\n%s", err, out)
		}
		m := e.find(t, "alice", "Subject: from php")
		if !strings.Contains(m, "php body\n.\nstill php") {
			t.Errorf("php message:\n%s", m)
		}
	})

	t.Run("unprivileged user", func(t *testing.T) {
		out, err := e.command(t, true, "Subject: from nobody\n\nhi\n", e.sendmail, "-f", "boss@example.com", "bob")
		if err != nil {
			t.Fatalf("sendmail as nobody: %v\n%s", err, out)
		}
		m := e.find(t, "bob", "Subject: from nobody")
		for _, want := range []string{"(popgate, from userid 65534 nobody via socket)",
			"X-Authentication-Warning: mx.example.com: nobody set sender to boss@example.com using -f"} {
			if !strings.Contains(m, want) {
				t.Errorf("message lacks %q:\n%s", want, m)
			}
		}
		// mailq needs the control socket: root's only.
		if out, err := e.command(t, true, "", filepath.Join(e.dir, "mailq")); exitCode(err) != 77 {
			t.Errorf("mailq as nobody: %v %s", err, out)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"ghost"}, 67},
			{[]string{"-k", "alice"}, 64},
			{[]string{}, 64},
			{[]string{"bob%remote.example@example.com"}, 65},
		} {
			out, err := e.command(t, false, "x\n", e.sendmail, c.args...)
			if exitCode(err) != c.code {
				t.Errorf("sendmail %q: exit %v, want %d\n%s", c.args, err, c.code, out)
			}
		}
	})

	t.Run("mailq and newaliases", func(t *testing.T) {
		if out, err := e.command(t, false, "", filepath.Join(e.dir, "mailq")); err != nil || !strings.Contains(out, "Mail queue is empty") {
			t.Errorf("mailq: %v\n%s", err, out)
		}
		if out, err := e.command(t, false, "", filepath.Join(e.dir, "newaliases")); err != nil || !strings.Contains(out, "2 aliases") {
			t.Errorf("newaliases: %v\n%s", err, out)
		}
	})
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// TestInteropSendmailSpoolWhenDown: with the server stopped, root and an
// unprivileged user still send; the mail waits in the maildrop and is
// delivered when the server starts, and the maildrop is empty afterwards.
func TestInteropSendmailSpoolWhenDown(t *testing.T) {
	e := newSendmailEnv(t)
	// Nothing has run yet: root sets the maildrop up itself.
	if out, err := e.command(t, false, "Subject: before first start\n\nx\n", e.sendmail, "-v", "alice"); err != nil ||
		!strings.Contains(out, "left in the maildrop") {
		t.Fatalf("first send: %v\n%s", err, out)
	}
	// The server ran once (it makes data_dir searchable), then stopped.
	s := startBinary(t, e.cfg)
	waitUntil(t, "the first message", 10*time.Second, func() bool { return len(e.mailbox(t, "alice")) == 1 })
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()

	if out, err := e.command(t, false, "Subject: root while down\n\nx\n", e.sendmail, "-v", "alice"); err != nil ||
		!strings.Contains(out, "left in the maildrop") {
		t.Fatalf("root while down: %v\n%s", err, out)
	}
	if out, err := e.command(t, true, "Subject: nobody while down\n\nx\n", e.sendmail, "-v", "alice"); err != nil ||
		!strings.Contains(out, "left in the maildrop") {
		t.Fatalf("nobody while down: %v\n%s", err, out)
	}
	if out, err := e.command(t, false, "", filepath.Join(e.dir, "mailq")); err != nil || !strings.Contains(out, "2 message(s) wait in the maildrop") {
		t.Errorf("mailq while down: %v\n%s", err, out)
	}
	startBinary(t, e.cfg)
	waitUntil(t, "the maildrop drained", 10*time.Second, func() bool { return len(e.mailbox(t, "alice")) == 3 })
	if m := e.find(t, "alice", "Subject: nobody while down"); !strings.Contains(m, "from userid 65534 nobody via maildrop") {
		t.Errorf("drained message:\n%s", m)
	}
	waitUntil(t, "the maildrop emptied", 10*time.Second, func() bool {
		es, _ := os.ReadDir(filepath.Join(e.data, "maildrop"))
		return len(es) == 0
	})
}
