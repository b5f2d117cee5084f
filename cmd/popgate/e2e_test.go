package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/auth"
	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// fakeClock is real time plus an offset that the test moves forward, so
// that a test can jump over a grant's lifetime while the parts that wait
// on real timers (the mirror's coalescing, socket deadlines) still run.
// Exact expiry to the nanosecond is proven in package acl with synctest.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// testServer is a popgate assembled from a real configuration on
// 127.0.0.1:0 listeners, serving in the background.
type testServer struct {
	*services
	cancel context.CancelFunc
	done   chan error
	reload chan os.Signal
}

func startServer(t *testing.T, cfg *Config, clock *fakeClock) *testServer {
	t.Helper()
	s, err := assemble(cfg, options{now: clock.now, logger: slog.New(slog.NewTextHandler(testLogOut(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{services: s, cancel: cancel, done: make(chan error, 1), reload: make(chan os.Signal, 1)}
	go func() { ts.done <- s.run(ctx, ts.reload) }()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	<-ts.done
	ts.cancel = nil
}

// testConfig is a server for example.com in dir where loopback is not
// trusted, so 127.0.0.2, 127.0.0.3 … stand for different remote clients.
func testConfig(t *testing.T, dir string) *Config {
	t.Helper()
	cfg := defaultConfig()
	cfg.Hostname = "mx.example.com"
	cfg.Domains = []string{"example.com"}
	cfg.DataDir = dir
	cfg.POP3.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Submission = []string{"127.0.0.1:0"}
	cfg.POP3.AllowPlaintextAuth = true
	cfg.Relay.TrustedNetworks = nil
	cfg.Relay.Mirror = []MirrorConfig{
		{Path: filepath.Join(dir, "access.db"), Flavor: "sendmail", Format: "hash"},
		{Path: filepath.Join(dir, "postfix-access.db"), Flavor: "postfix", Format: "hash"},
	}
	// A smarthost that refuses connections keeps relayed mail queued.
	cfg.Queue.Smarthost = "127.0.0.1:1"
	hash, err := auth.HashPassword("alice's secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("alice@example.com:"+hash+"\nbob@example.com:{PLAIN}bob-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// popLogin logs in over POP3 from the loopback address from and quits,
// which grants from relay permission.
func popLogin(t *testing.T, from, addr, user, pass string) {
	t.Helper()
	c := pop3test.DialFrom(t, from, addr)
	c.Login(user, pass)
	c.Expect("QUIT", "+OK")
}

// trySend runs one SMTP transaction and returns the reply to RCPT.
func trySend(t *testing.T, from, addr, sender, rcpt string) string {
	t.Helper()
	c := smtptest.DialFrom(t, from, addr)
	c.Hello("client.example.net")
	c.Expect("MAIL FROM:<"+sender+">", "250")
	got := c.Cmd("RCPT TO:<" + rcpt + ">")
	if strings.HasPrefix(got, "250") {
		c.Expect("DATA", "354")
		c.Expect("Subject: test\r\n\r\nhello from "+from+"\r\n.", "250")
	}
	c.Expect("QUIT", "221")
	return got
}

// mapHas reports whether key is in the map file at path (false if the
// file does not exist yet).
func mapValue(t *testing.T, path, key string) string {
	t.Helper()
	m, err := accessdb.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return ""
		}
		t.Fatal(err)
	}
	v, _ := m.Get([]byte(key))
	return string(v)
}

// waitFor polls cond for up to 10 s. The mirror writes asynchronously
// (coalesced to one write a second), so its tests wait for a state rather
// than assert a time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPOPBeforeSMTPLoop walks the product's central loop through real
// listeners: relay refused → POP3 login from 127.0.0.2 → relay allowed
// from 127.0.0.2 only → the grant is in both access.db mirrors → a restart
// keeps it → at pop_ttl relay stops.
func TestPOPBeforeSMTPLoop(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	clock := &fakeClock{}
	s := startServer(t, cfg, clock)
	pop, mx := s.addr("pop3.listen"), s.addr("smtp.listen")

	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay before login: %q, want 554 5.7.1", got)
	}
	// Local delivery needs no grant.
	if got := trySend(t, "127.0.0.4", mx, "stranger@remote.example", "alice@example.com"); !strings.HasPrefix(got, "250") {
		t.Fatalf("local delivery: %q", got)
	}

	popLogin(t, "127.0.0.2", pop, "alice@example.com", "alice's secret")

	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay after login: %q, want 250", got)
	}
	if got := trySend(t, "127.0.0.3", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay from another address: %q, want 554 5.7.1", got)
	}
	items, err := s.queue.List()
	if err != nil || len(items) != 1 || items[0].Recipients[0].Addr != "friend@remote.example" {
		t.Fatalf("queue = %+v, %v; want the one relayed message", items, err)
	}
	// The relayed message names the login that allowed it.
	body, err := os.ReadFile(filepath.Join(dir, "queue", items[0].ID+".msg"))
	if err != nil || !strings.Contains(string(body), "relay granted by POP3 login of alice@example.com") {
		t.Errorf("Received header lacks the grant: %v\n%s", err, body)
	}

	sendmailDB, postfixDB := cfg.Relay.Mirror[0].Path, cfg.Relay.Mirror[1].Path
	waitFor(t, "the grant in both mirrors", func() bool {
		return mapValue(t, sendmailDB, "connect:127.0.0.2") == "RELAY" && mapValue(t, postfixDB, "127.0.0.2") == "OK"
	})

	// Restart halfway through the grant: it survives.
	s.stop()
	clock.advance(10 * time.Minute)
	s = startServer(t, cfg, clock)
	mx = s.addr("smtp.listen")
	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay after restart: %q, want 250 (grant still valid)", got)
	}
	if got := mapValue(t, sendmailDB, "connect:127.0.0.2"); got != "RELAY" {
		t.Errorf("mirror rebuilt at start without the valid grant: %q", got)
	}

	// Just before pop_ttl after the login relaying still works; at it, it stops.
	clock.advance(5*time.Minute - 5*time.Second)
	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay 5 s before expiry: %q", got)
	}
	clock.advance(5 * time.Second)
	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay at pop_ttl: %q, want 554 5.7.1", got)
	}

	// A restart after expiry restores nothing and the mirrors lose the IP.
	s.stop()
	s = startServer(t, cfg, clock)
	waitFor(t, "the expired grant gone from both mirrors", func() bool {
		return mapValue(t, sendmailDB, "connect:127.0.0.2") == "" && mapValue(t, postfixDB, "127.0.0.2") == ""
	})
	if got := trySend(t, "127.0.0.2", s.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay after restart past expiry: %q", got)
	}
}

// TestLocalDeliveryThenPOP3 delivers over SMTP and reads the same bytes
// back over POP3; DELE takes effect only at QUIT.
func TestLocalDeliveryThenPOP3(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startServer(t, cfg, &fakeClock{})
	mx, pop := s.addr("smtp.listen"), s.addr("pop3.listen")
	if got := trySend(t, "127.0.0.5", mx, "x@remote.example", "Bob@Example.COM"); !strings.HasPrefix(got, "250") {
		t.Fatalf("delivery to bob: %q", got)
	}
	if got := trySend(t, "127.0.0.5", mx, "x@remote.example", "nobody@example.com"); !strings.HasPrefix(got, "550 5.1.1") {
		t.Fatalf("unknown local user: %q, want 550 5.1.1", got)
	}

	c := pop3test.DialFrom(t, "127.0.0.5", pop)
	c.Login("bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 1 ")
	msg := c.Retr(1)
	if !strings.HasPrefix(msg, "Return-Path: <x@remote.example>\r\nDelivered-To: bob@example.com\r\nReceived: from client.example.net") || !strings.Contains(msg, "hello from 127.0.0.5\r\n") {
		t.Errorf("message = %q", msg)
	}
	c.Expect("DELE 1", "+OK")
	c.Conn.Close() // dropped, not QUIT: nothing is deleted

	// Until the server has seen the drop, the mailbox is still locked.
	waitFor(t, "the dropped session's lock to be released", func() bool {
		c = pop3test.DialFrom(t, "127.0.0.5", pop)
		c.Expect("", "+OK")
		c.Expect("USER bob@example.com", "+OK")
		if got := c.Expect("PASS bob-password", ""); strings.HasPrefix(got, "-ERR [IN-USE]") {
			return false
		} else if !strings.HasPrefix(got, "+OK") {
			t.Fatalf("PASS after a dropped session: %q", got)
		}
		return true
	})
	c.Expect("STAT", "+OK 1 ")
	c.Expect("DELE 1", "+OK")
	c.Expect("QUIT", "+OK")

	c = pop3test.DialFrom(t, "127.0.0.5", pop)
	c.Login("bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 0 0")
}

// TestControlCommandsAgainstServer runs the CLI's control commands
// against a live server, as an operator would.
func TestControlCommandsAgainstServer(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	clock := &fakeClock{}
	s := startServer(t, cfg, clock)
	popLogin(t, "127.0.0.2", s.addr("pop3.listen"), "bob@example.com", "bob-password")
	if got := trySend(t, "127.0.0.2", s.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay: %q", got)
	}
	cfgPath := filepath.Join(dir, "popgate.toml")
	toml := fmt.Sprintf("domains = [\"example.com\"]\ndata_dir = %q\n[pop3]\nlisten = []\n[smtp]\nlisten = []\nsubmission = [\"127.0.0.1:0\"]\n", dir)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, int) {
		var out, errb strings.Builder
		code := run(context.Background(), &env{stdout: &out, stderr: &errb}, append(args, "--config", cfgPath))
		return out.String() + errb.String(), code
	}
	if out, code := cli("health"); code != 0 || !strings.Contains(out, "1 live grants") {
		t.Errorf("health: %d %q", code, out)
	}
	if out, code := cli("grants", "list"); code != 0 || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "bob@example.com") {
		t.Errorf("grants list: %d %q", code, out)
	}
	out, code := cli("access", "why", "127.0.0.2", "--from", "bob@example.com", "--to", "friend@remote.example")
	if code != 0 || !strings.Contains(out, "relay") || !strings.Contains(out, "bob@example.com") {
		t.Errorf("access why: %d %q", code, out)
	}
	if out, code := cli("queue", "list"); code != 0 || !strings.Contains(out, "friend@remote.example") || !strings.Contains(out, "1 message(s) queued") {
		t.Errorf("queue list: %d %q", code, out)
	}
	if out, code := cli("grants", "revoke", "127.0.0.9"); code != 1 || !strings.Contains(out, "no grant for 127.0.0.9") {
		t.Errorf("revoke unknown: %d %q", code, out)
	}
	if out, code := cli("grants", "revoke-user", "bob@example.com"); code != 0 || !strings.Contains(out, "revoked 1 grant") {
		t.Errorf("revoke-user: %d %q", code, out)
	}
	if got := trySend(t, "127.0.0.2", s.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay after revoke: %q, want 554", got)
	}
	items, _ := s.queue.List()
	if out, code := cli("queue", "del", items[0].ID); code != 0 {
		t.Errorf("queue del: %d %q", code, out)
	}
	if out, code := cli("queue", "del", "no-such-id"); code != 1 {
		t.Errorf("queue del unknown: %d %q", code, out)
	}
	if out, code := cli("grants", "frobnicate"); code != 2 || !strings.Contains(out, "unknown grants command") {
		t.Errorf("bad subcommand: %d %q", code, out)
	}
	// A changed password voids the user's grants in the running server.
	popLogin(t, "127.0.0.8", s.addr("pop3.listen"), "bob@example.com", "bob-password")
	var out2, errb2 strings.Builder
	code = run(context.Background(), &env{stdin: strings.NewReader("a brand new password\n"), stdout: &out2, stderr: &errb2},
		[]string{"user", "passwd", "--stdin", "bob@example.com", "--config", cfgPath})
	if code != 0 || !strings.Contains(out2.String(), "revoked 1 relay grant(s) of bob@example.com") {
		t.Errorf("user passwd: %d %q %q", code, out2.String(), errb2.String())
	}
	if got := trySend(t, "127.0.0.8", s.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay after passwd: %q, want 554", got)
	}
	s.stop()
	if out, code := cli("health"); code != 1 || !strings.Contains(out, "not running") {
		t.Errorf("health with the server stopped: %d %q", code, out)
	}
}

// testLogOut shows server logs with POPGATE_TEST_LOG=1.
func testLogOut() io.Writer {
	if os.Getenv("POPGATE_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// TestReloadSwapsRulesKeepsGrants changes the access file under a running
// server: SIGHUP applies it, keeps live grants, and a broken file is
// rejected while the old rules stay in force.
func TestReloadSwapsRulesKeepsGrants(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	access := filepath.Join(dir, "access")
	writeFile(t, dir, "access", "Connect:127.0.0.6 RELAY\n")
	cfg.Relay.AccessFile = access
	cfgPath := filepath.Join(dir, "popgate.toml")
	var b strings.Builder
	if err := writeConfigDoc(&b, cfg); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "popgate.toml", b.String())
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := assemble(cfg, options{now: time.Now, logger: slog.New(slog.NewTextHandler(testLogOut(), nil)), configPath: cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, hup) }()
	defer func() { cancel(); <-done }()
	mx := s.addr("smtp.listen")
	reload := func() { hup <- syscallHUP }

	popLogin(t, "127.0.0.2", s.addr("pop3.listen"), "bob@example.com", "bob-password")
	if got := trySend(t, "127.0.0.6", mx, "x@example.com", "far@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay by static rule: %q", got)
	}
	waitFor(t, "static rule in the mirror", func() bool {
		return mapValue(t, cfg.Relay.Mirror[0].Path, "connect:127.0.0.6") == "RELAY"
	})

	before := s.relay.Load()
	writeFile(t, dir, "access", "Connect:127.0.0.7 RELAY\n")
	reload()
	waitFor(t, "the reload", func() bool { return s.relay.Load() != before })
	if got := trySend(t, "127.0.0.6", mx, "x@example.com", "far@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("removed rule still relays: %q", got)
	}
	if got := trySend(t, "127.0.0.7", mx, "x@example.com", "far@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("new rule does not relay: %q", got)
	}
	if got := trySend(t, "127.0.0.2", mx, "bob@example.com", "far@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("POP grant lost in reload: %q", got)
	}
	waitFor(t, "mirror rewritten with the new rules", func() bool {
		return mapValue(t, cfg.Relay.Mirror[0].Path, "connect:127.0.0.7") == "RELAY" &&
			mapValue(t, cfg.Relay.Mirror[0].Path, "connect:127.0.0.6") == "" &&
			mapValue(t, cfg.Relay.Mirror[0].Path, "connect:127.0.0.2") == "RELAY"
	})

	// A broken access file: the reload is rejected, the rules stay.
	current := s.relay.Load()
	writeFile(t, dir, "access", "Connect:127.0.0.7 PERHAPS\n")
	if err := s.reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken access file: reload err = %v, want the line named", err)
	}
	if s.relay.Load() != current {
		t.Error("a rejected reload replaced the running rules")
	}
	if got := trySend(t, "127.0.0.7", mx, "x@example.com", "far@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("rules lost after a rejected reload: %q", got)
	}
}

var syscallHUP os.Signal = syscall.SIGHUP

// TestMessageVanishesDuringSession: another program deletes a message
// file between STAT and RETR; the session reports it and carries on.
func TestMessageVanishesDuringSession(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startServer(t, cfg, &fakeClock{})
	mx, pop := s.addr("smtp.listen"), s.addr("pop3.listen")
	for range 2 {
		if got := trySend(t, "127.0.0.5", mx, "x@remote.example", "bob@example.com"); !strings.HasPrefix(got, "250") {
			t.Fatalf("delivery: %q", got)
		}
	}
	c := pop3test.DialFrom(t, "127.0.0.5", pop)
	c.Login("bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 2 ")
	files, _ := filepath.Glob(filepath.Join(dir, "mail", "example.com", "bob", "new", "*"))
	if len(files) != 2 {
		t.Fatalf("maildir holds %d files, want 2", len(files))
	}
	first := c.Expect("UIDL 1", "+OK 1 ")
	for _, f := range files {
		if strings.Contains(first, filepath.Base(f)) {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Expect("RETR 1", "-ERR")
	c.Retr(2)
	c.Expect("NOOP", "+OK")
	c.Expect("QUIT", "+OK")
}
