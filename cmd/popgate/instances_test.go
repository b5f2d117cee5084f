package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/pop3/pop3test"
)

// sharedPair assembles two popgate instances with their own data_dir and
// one mail_dir, as two machines behind a balancer with a shared volume.
// Each has its own clock so a test can let one see the other's leases
// expire.
func sharedPair(t *testing.T) (a, b *testServer, clockB *fakeClock, mailDir string) {
	t.Helper()
	mailDir = filepath.Join(t.TempDir(), "shared-mail")
	start := func(name string, clock *fakeClock) *testServer {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t, dir)
		cfg.MailDir = mailDir
		cfg.Relay.Mirror = nil
		return startServer(t, cfg, clock)
	}
	clockB = &fakeClock{}
	return start("a", &fakeClock{}), start("b", clockB), clockB, mailDir
}

func popSession(t *testing.T, addr, user, pass string) *pop3test.Client {
	t.Helper()
	c := pop3test.DialFrom(t, "127.0.0.5", addr)
	c.Login(user, pass)
	return c
}

// TestSharedMailDirTwoInstances: mail taken in by B is read through A, a
// session on A makes B answer [IN-USE], and the data_dirs hold no mail.
func TestSharedMailDirTwoInstances(t *testing.T) {
	a, b, _, mailDir := sharedPair(t)
	if got := trySend(t, "127.0.0.6", b.addr("smtp.listen"), "x@remote.example", "bob@example.com"); !strings.HasPrefix(got, "250") {
		t.Fatalf("delivery on B: %q", got)
	}
	if files, _ := filepath.Glob(filepath.Join(mailDir, "example.com", "bob", "new", "*")); len(files) != 1 {
		t.Fatalf("shared mail_dir new/ = %q, want the message", files)
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "mail")); !os.IsNotExist(err) {
		t.Errorf("B's data_dir has a mail directory (%v): mail_dir not used", err)
	}

	c := popSession(t, a.addr("pop3.listen"), "bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 1 ")

	other := pop3test.DialFrom(t, "127.0.0.5", b.addr("pop3.listen"))
	other.Expect("", "+OK")
	other.Expect("USER bob@example.com", "+OK")
	other.Expect("PASS bob-password", "-ERR [IN-USE]")

	c.Expect("DELE 1", "+OK")
	c.Expect("QUIT", "+OK")
	c = popSession(t, b.addr("pop3.listen"), "bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 0 0")
	c.Expect("QUIT", "+OK")
}

// TestSharedMailDirLeaseExpiry: an instance that stops renewing (here:
// whose lease B's clock sees as expired) loses the mailbox to the other,
// and its late QUIT deletes nothing.
func TestSharedMailDirLeaseExpiry(t *testing.T) {
	a, b, clockB, _ := sharedPair(t)
	if got := trySend(t, "127.0.0.6", b.addr("smtp.listen"), "x@remote.example", "bob@example.com"); !strings.HasPrefix(got, "250") {
		t.Fatalf("delivery on B: %q", got)
	}
	onA := popSession(t, a.addr("pop3.listen"), "bob@example.com", "bob-password")
	onA.Expect("DELE 1", "+OK")

	clockB.advance(a.cfg.POP3.LockLease.Duration + time.Second)
	onB := popSession(t, b.addr("pop3.listen"), "bob@example.com", "bob-password")
	onB.Expect("STAT", "+OK 1 ")

	onA.Expect("QUIT", "-ERR [SYS/TEMP]")
	onB.Expect("STAT", "+OK 1 ")
	onB.Expect("QUIT", "+OK")
}

func TestMailDirConfig(t *testing.T) {
	cfg, err := parseConfig([]byte("data_dir = \"/var/lib/popgate\"\n"), "t.toml")
	if err != nil || cfg.mailDir() != "/var/lib/popgate/mail" {
		t.Fatalf("default mail_dir = %q, %v; want <data_dir>/mail", cfg.mailDir(), err)
	}
	cfg, err = parseConfig([]byte("mail_dir = \"shared/mail\"\n[pop3]\nlock_lease = \"30s\"\n"), "t.toml")
	if err != nil || cfg.mailDir() != "./shared/mail" || cfg.POP3.LockLease.Duration != 30*time.Second {
		t.Fatalf("mail_dir = %q, lease %v, %v", cfg.mailDir(), cfg.POP3.LockLease, err)
	}
	_, err = parseConfig([]byte("[pop3]\nlock_lease = \"1s\"\n"), "t.toml")
	if err == nil || !strings.Contains(err.Error(), "t.toml:2") || !strings.Contains(err.Error(), "pop3.lock_lease") {
		t.Fatalf("lock_lease = 1s: %v, want an error at t.toml:2 naming the key", err)
	}
}

// TestInstanceID: made once, then the same at every start; another
// data_dir gets another.
func TestInstanceID(t *testing.T) {
	fs := afero.NewMemMapFs()
	first, err := instanceID(fs, "/a")
	if err != nil || len(first) != 16 {
		t.Fatalf("instanceID = %q, %v", first, err)
	}
	if again, err := instanceID(fs, "/a"); err != nil || again != first {
		t.Fatalf("second start: %q, %v; want %q", again, err, first)
	}
	if other, _ := instanceID(fs, "/b"); other == first {
		t.Fatalf("two data_dirs share the id %q", other)
	}
}

// docBlock returns the fenced block that follows the first line of
// docs/operations.md containing marker.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("operations.md has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```")
	_, rest, _ = strings.Cut(rest, "\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("no fenced block after %q", marker)
	}
	return block
}

// TestOperationsSharedExample: the instance configuration shown in
// docs/operations.md decodes with every key known and passes validation
// (its files replaced by temporary ones).
func TestOperationsSharedExample(t *testing.T) {
	text := docBlock(t, "`/etc/popgate/a.toml`")
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, "/etc/popgate/users", users)
	text = strings.ReplaceAll(text, "/var/lib/popgate-a/", filepath.Dir(users)+"/")
	cfg, err := parseConfig([]byte(text), "a.toml")
	if err != nil {
		t.Fatalf("the documented a.toml: %v\n%s", err, text)
	}
	if cfg.mailDir() != "/srv/mail" || len(cfg.Relay.ProxyProtocol) != 1 {
		t.Errorf("documented a.toml: mail_dir %q, proxy_protocol %v", cfg.mailDir(), cfg.Relay.ProxyProtocol)
	}
}
