//go:build interop

package main

// These tests start the real popgate binary (POPGATE_BIN, built by `task
// interop`) and drive it only with programs no one here wrote: fetchmail
// and mpop log in over POP3, swaks sends, Postfix's smtp-sink receives the
// relayed mail, and db5.3_dump and postmap read the access.db mirrors.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/postmaptest"
	"github.com/popgate/popgate/pop3/pop3test"
)

// need returns the path of a program the interop suite requires; a
// missing one fails the test (CI installs them all).
func need(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("%s is not installed (run .ci/install-peers.sh)", name)
	return ""
}

// binary is the popgate binary under test.
func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("POPGATE_BIN")
	if bin == "" {
		t.Fatal("POPGATE_BIN is not set: run through `go tool task interop`")
	}
	return bin
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until something accepts on addr (a process starting
// up), for at most 10 s.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type binServer struct {
	cmd          *exec.Cmd
	pop, mx, sub string
	stdout       *bytes.Buffer
	stderr       *lockedBuffer // written by the process while the test reads it
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listenLine = regexp.MustCompile(`(?m)^\s+(pop3\.listen|smtp\.listen|smtp\.submission)\s+(\S+)$`)

// startBinary runs `popgate serve --config cfg` and reads the addresses it
// prints.
func startBinary(t *testing.T, cfg string) *binServer {
	t.Helper()
	s := &binServer{stdout: &bytes.Buffer{}, stderr: &lockedBuffer{}}
	s.cmd = exec.Command(binary(t), "serve", "--config", cfg)
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("popgate log:\n%s", s.stderr)
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		s.stdout.WriteString(line + "\n")
		if m := listenLine.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "pop3.listen":
				s.pop = m[2]
			case "smtp.listen":
				s.mx = m[2]
			case "smtp.submission":
				s.sub = m[2]
			}
		}
		if strings.Contains(line, "control socket") {
			break
		}
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(new(bytes.Buffer)) }()
	if s.pop == "" || s.mx == "" {
		t.Fatalf("popgate did not print its listeners:\n%s\n%s", s.stdout, s.stderr)
	}
	return s
}

func runCmd(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// swaksSend sends one message with swaks from the given local address and
// returns swaks's transcript. Success shows as "queued as" in the reply to
// the final dot; "250 2.0.0" alone would also match MAIL FROM's reply.
func swaksSend(t *testing.T, server, from, sender, rcpt string) string {
	t.Helper()
	out, _ := runCmd(t, "", need(t, "swaks"), "--server", server, "--local-interface", from,
		"--from", sender, "--to", rcpt, "--body", "hello from swaks", "--timeout", "20")
	return out
}

// postfixSink starts Postfix's smtp-sink on a free loopback port, writing
// every message it receives to a file msg.* in the returned directory,
// and stops it by pid when the test ends.
func postfixSink(t *testing.T) (addr, dir string) {
	t.Helper()
	addr, dir = freeAddr(t), t.TempDir()
	sink := exec.Command(need(t, "smtp-sink"), "-u", "root", "-d", filepath.Join(dir, "msg."), addr, "100")
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Process.Kill(); _ = sink.Wait() })
	waitListening(t, addr)
	return addr, dir
}

// relayConfig is the start of a configuration for the binary under test:
// example.com with its data in dataDir, POP3, MX and submission on
// 127.0.0.1:0, no trusted networks (a loopback client needs a POP3 login
// to relay) and grants that live ttl. It ends inside [relay], so a test
// appends relay keys first and then its own sections.
func relayConfig(dataDir string, ttl time.Duration) string {
	return fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com"]
data_dir = %q
[pop3]
listen = ["127.0.0.1:0"]
[smtp]
listen = ["127.0.0.1:0"]
submission = ["127.0.0.1:0"]
[relay]
pop_ttl = "%s"
trusted_networks = []
`, dataDir, ttl)
}

// setupBinary writes conf to dir/popgate.toml, adds alice@example.com
// (password "correct horse battery") with the binary and has `popgate
// check` accept the result. It returns the configuration's path.
func setupBinary(t *testing.T, dir, conf string) string {
	t.Helper()
	cfg := filepath.Join(dir, "popgate.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "correct horse battery\n", binary(t), "user", "add", "--stdin", "--config", cfg, "alice@example.com"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "", binary(t), "check", "--config", cfg); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	return cfg
}

func TestInteropBinaryPOPBeforeSMTP(t *testing.T) {
	for _, p := range []string{"swaks", "fetchmail", "mpop", "db5.3_dump", "postmap", "smtp-sink"} {
		need(t, p)
	}
	dir := t.TempDir()
	sinkAddr, sinkDir := postfixSink(t)

	// Long enough that, on a loaded machine, the checks made while the
	// grant lives all finish before it ends (3 s once lost that race).
	const ttl = 15 * time.Second
	conf := relayConfig(dir, ttl) + fmt.Sprintf(`[[relay.mirror]]
path = %q
flavor = "sendmail"
format = "hash"
[[relay.mirror]]
path = %q
flavor = "postfix"
format = "hash"
[queue]
smarthost = %q
min_retry = "1s"
`, filepath.Join(dir, "access.db"), filepath.Join(dir, "postfix-access.db"), sinkAddr)
	cfg := setupBinary(t, dir, conf)
	s := startBinary(t, cfg)

	// Before any login: relaying from 127.0.0.1 is refused (loopback is
	// not trusted here), local delivery is accepted.
	if out := swaksSend(t, s.mx, "127.0.0.1", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay before login was not refused:\n%s", out)
	}
	if out := swaksSend(t, s.mx, "127.0.0.3", "someone@remote.example", "alice@example.com"); !strings.Contains(out, "queued as") {
		t.Fatalf("local delivery refused:\n%s", out)
	}

	// fetchmail logs in and fetches (POP3 from 127.0.0.1).
	host, port, _ := net.SplitHostPort(s.pop)
	home, got := t.TempDir(), t.TempDir()
	rc := fmt.Sprintf("set no bouncemail\npoll %s protocol pop3 port %s auth password timeout 20\n"+
		"  user \"alice@example.com\" there with password \"correct horse battery\" is \"alice\" here\n"+
		"  sslproto '' nokeep fetchall\n  mda \"/bin/sh -c 'cat > %s/msg.$$'\"\n", host, port, got)
	rcfile := filepath.Join(home, "fetchmailrc")
	if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "", need(t, "fetchmail"), "-f", rcfile, "--nosyslog"); err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, out)
	}
	fetched, _ := filepath.Glob(filepath.Join(got, "msg.*"))
	if len(fetched) != 1 {
		t.Fatalf("fetchmail retrieved %d messages, want 1", len(fetched))
	}
	if b, _ := os.ReadFile(fetched[0]); !bytes.Contains(b, []byte("hello from swaks")) {
		t.Errorf("fetched message lacks the body:\n%s", b)
	}

	// Now 127.0.0.1 may relay; 127.0.0.2 still may not.
	if out := swaksSend(t, s.mx, "127.0.0.1", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "queued as") {
		t.Fatalf("relay after fetchmail's login refused:\n%s", out)
	}
	if out := swaksSend(t, s.mx, "127.0.0.2", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay from an address that never logged in:\n%s", out)
	}

	// The grant is in both mirrors, read through libdb and Postfix.
	waitUntil(t, "grant in the sendmail mirror (db5.3_dump)", 5*time.Second, func() bool {
		out, err := runCmd(t, "", need(t, "db5.3_dump"), "-p", filepath.Join(dir, "access.db"))
		return err == nil && strings.Contains(out, "connect:127.0.0.1\n RELAY")
	})
	_, pfconf := postmaptest.New(t)
	postmapQ := func(key string) (string, error) {
		return runCmd(t, "", need(t, "postmap"), "-c", pfconf, "-q", key, "hash:"+filepath.Join(dir, "postfix-access"))
	}
	// The mirror writes its maps one after the other: wait for this one too.
	waitUntil(t, "grant in the postfix mirror (postmap -q)", 5*time.Second, func() bool {
		out, err := postmapQ("127.0.0.1")
		return err == nil && strings.TrimSpace(out) == "OK"
	})

	// The relayed message reaches smtp-sink through the queue.
	waitUntil(t, "relayed message at smtp-sink", 15*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(sinkDir, "msg.*"))
		return len(files) == 1
	})

	// At pop_ttl the grant ends everywhere.
	waitUntil(t, "grant expiry in the sendmail mirror", ttl+5*time.Second, func() bool {
		out, err := runCmd(t, "", need(t, "db5.3_dump"), "-p", filepath.Join(dir, "access.db"))
		return err == nil && !strings.Contains(out, "127.0.0.1")
	})
	if out := swaksSend(t, s.mx, "127.0.0.1", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay after pop_ttl was not refused:\n%s", out)
	}
	waitUntil(t, "expired grant gone from the postfix mirror", 5*time.Second, func() bool {
		out, err := postmapQ("127.0.0.1")
		return err != nil && strings.TrimSpace(out) == ""
	})

	// mpop logs in too and opens relay again.
	mpopArgs := []string{"--host=" + host, "--port=" + port, "--auth=user", "--user=alice@example.com",
		"--passwordeval=echo correct horse battery", "--delivery=maildir," + maildirFor(t), "--tls=off",
		"--uidls-file=" + filepath.Join(t.TempDir(), "uidls"), "--keep=on", "--timeout=20"}
	if out, err := runCmd(t, "", need(t, "mpop"), mpopArgs...); err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	if out := swaksSend(t, s.mx, "127.0.0.1", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "queued as") {
		t.Fatalf("relay after mpop's login refused:\n%s", out)
	}
}

// waitUntil polls cond until it holds, failing after limit. It waits for
// other processes (the mirror's coalesced write, a real TTL), and asserts
// no timing.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func maildirFor(t *testing.T) string {
	t.Helper()
	md := t.TempDir()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(md, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return md
}

// TestInteropKill9DuringPOP3Session kills the server with SIGKILL while a
// session has messages marked deleted: after a restart every message is
// still there, since deletion happens only at QUIT.
func TestInteropKill9DuringPOP3Session(t *testing.T) {
	dir := t.TempDir()
	conf := fmt.Sprintf("domains = [\"example.com\"]\ndata_dir = %q\n[pop3]\nlisten = [\"127.0.0.1:0\"]\n"+
		"[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n", dir)
	cfg := setupBinary(t, dir, conf)
	s := startBinary(t, cfg)
	for range 2 {
		if out := swaksSend(t, s.mx, "127.0.0.1", "someone@remote.example", "alice@example.com"); !strings.Contains(out, "queued as") {
			t.Fatalf("delivery refused:\n%s", out)
		}
	}
	c := pop3test.DialFrom(t, "127.0.0.1", s.pop)
	c.Login("alice@example.com", "correct horse battery")
	c.Expect("DELE 1", "+OK")
	c.Expect("DELE 2", "+OK")
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()

	s = startBinary(t, cfg)
	c = pop3test.DialFrom(t, "127.0.0.1", s.pop)
	c.Login("alice@example.com", "correct horse battery")
	c.Expect("STAT", "+OK 2 ")
	c.Expect("QUIT", "+OK")
}

// TestInteropBinarySignals drives the real binary's signal handling:
// SIGHUP applies a changed access file without dropping a live grant, a
// broken one is refused while the old rules stay, and SIGTERM drains,
// saves the grants and exits 0.
func TestInteropBinarySignals(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "access")
	if err := os.WriteFile(access, []byte("Connect:127.0.0.6 RELAY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("domains = [\"example.com\"]\ndata_dir = %q\n[pop3]\nlisten = [\"127.0.0.1:0\"]\n"+
		"[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n[relay]\ntrusted_networks = []\naccess_file = %q\n"+
		"[queue]\nsmarthost = \"127.0.0.1:1\"\n", dir, access)
	cfg := setupBinary(t, dir, conf)
	s := startBinary(t, cfg)
	popLogin(t, "127.0.0.2", s.pop, "alice@example.com", "correct horse battery")
	relays := func(from string) bool {
		return strings.Contains(swaksSend(t, s.mx, from, "alice@example.com", "friend@remote.example"), "queued as")
	}
	if !relays("127.0.0.6") || relays("127.0.0.7") || !relays("127.0.0.2") {
		t.Fatal("before reload: want 127.0.0.6 (rule) and 127.0.0.2 (grant) to relay, 127.0.0.7 not")
	}

	if err := os.WriteFile(access, []byte("Connect:127.0.0.7 RELAY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reload", 10*time.Second, func() bool { return strings.Contains(s.stderr.String(), "reload done") })
	if relays("127.0.0.6") || !relays("127.0.0.7") || !relays("127.0.0.2") {
		t.Fatal("after reload: want 127.0.0.7 and the grant to relay, 127.0.0.6 not")
	}

	if err := os.WriteFile(access, []byte("Connect:127.0.0.7 SOMETIMES\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the rejected reload", 10*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "reload rejected")
	})
	if !relays("127.0.0.7") {
		t.Fatal("a rejected reload dropped the running rules")
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0", err)
	}
	state, err := os.ReadFile(filepath.Join(dir, "state", "grants"))
	if err != nil || !strings.Contains(string(state), "127.0.0.2") {
		t.Fatalf("grants state after SIGTERM: %v\n%s", err, state)
	}
}
