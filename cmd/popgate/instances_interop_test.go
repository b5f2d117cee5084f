//go:build interop

package main

// The shared mode of issue 14 with real peers: two popgate binaries with
// their own data_dir and one mail_dir, HAProxy in front sending PROXY v2
// headers, and clients on distinct loopback addresses.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/popgate/popgate/acl/redistest"
	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// sharedLease is pop3.lock_lease in this test: the shortest allowed, so
// that a killed holder's lease runs out quickly.
const sharedLease = 3 * time.Second

// sharedInstance writes the configuration of one instance (name "a" or
// "b") sharing mailDir and usersFile, with popTTL and extra [relay] keys,
// and returns its path.
func sharedInstance(t *testing.T, name, mailDir, usersFile string, popTTL time.Duration, extra string) string {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), name)
	cfg := filepath.Join(t.TempDir(), name+".toml")
	// trusted_networks holds the balancer's own address on purpose: were
	// popgate to take the balancer's address for the client's, every
	// client would relay. Only the PROXY header's source may count.
	conf := fmt.Sprintf(`hostname = "%s.example.com"
domains = ["example.com"]
log = { level = "debug" }
data_dir = %q
mail_dir = %q
[users]
file = %q
[pop3]
listen = ["127.0.0.1:0"]
lock_lease = "%s"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
[relay]
pop_ttl = "%s"
trusted_networks = ["127.0.0.1/32"]
proxy_protocol = ["127.0.0.1/32"]
%s
[queue]
smarthost = "127.0.0.1:1"
`, name, dataDir, mailDir, usersFile, sharedLease, popTTL, extra)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// haproxy runs HAProxy in the foreground with one frontend per backend
// address, each forwarding with send-proxy-v2 and health-checked (which
// sends PROXY v2 LOCAL headers), and returns the frontend addresses in the
// same order and HAProxy's log. It is stopped by pid at cleanup.
func haproxy(t *testing.T, backends ...string) ([]string, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	var conf strings.Builder
	conf.WriteString("global\n  maxconn 200\n" +
		"defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n")
	fronts := make([]string, len(backends))
	for i, b := range backends {
		fronts[i] = freeAddr(t)
		fmt.Fprintf(&conf, "listen l%d\n  bind %s\n  server s%d %s send-proxy-v2 check inter 200ms\n", i, fronts[i], i, b)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := need(t, "haproxy")
	if out, err := runCmd(t, "", bin, "-c", "-f", cfg); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", log)
		}
	})
	for _, f := range fronts {
		waitListening(t, f)
	}
	return fronts, log
}

// popOpen logs user in over POP3 from the given local address.
func popOpen(t *testing.T, from, addr, user, pass string) *pop3test.Client {
	t.Helper()
	c := pop3test.DialFrom(t, from, addr)
	c.Login(user, pass)
	return c
}

// popTry attempts a login and returns the reply to PASS.
func popTry(t *testing.T, from, addr, user, pass string) string {
	t.Helper()
	c := pop3test.DialFrom(t, from, addr)
	c.Expect("", "+OK")
	c.Expect("USER "+user, "+OK")
	c.Send("PASS " + pass)
	got := c.Line()
	if strings.HasPrefix(got, "+OK") {
		c.Expect("QUIT", "+OK")
	}
	return got
}

func TestInteropSharedInstancesBehindHAProxy(t *testing.T) {
	need(t, "swaks")
	need(t, "haproxy")
	const user, pass = "alice@example.com", "correct horse battery"
	mailDir := filepath.Join(t.TempDir(), "shared-mail")
	usersFile := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgA := sharedInstance(t, "a", mailDir, usersFile, time.Hour, "")
	cfgB := sharedInstance(t, "b", mailDir, usersFile, time.Hour, "")
	if out, err := runCmd(t, pass+"\n", binary(t), "user", "add", "--stdin", "--config", cfgA, user); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	for _, cfg := range []string{cfgA, cfgB} {
		if out, err := runCmd(t, "", binary(t), "check", "--config", cfg); err != nil || !strings.Contains(out, "mail_dir  "+mailDir) {
			t.Fatalf("check: %v\n%s", err, out)
		}
	}
	// The balancer configuration shown in docs/operations.md is valid.
	docCfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(docCfg, []byte(docBlock(t, "`/etc/haproxy/haproxy.cfg`")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "", need(t, "haproxy"), "-c", "-f", docCfg); err != nil {
		t.Fatalf("haproxy -c on the documented configuration: %v\n%s", err, out)
	}
	a, b := startBinary(t, cfgA), startBinary(t, cfgB)
	fronts, hlog := haproxy(t, a.pop, a.mx, b.pop, b.mx)
	popA, mxA, popB, mxB := fronts[0], fronts[1], fronts[2], fronts[3]

	// Mail taken in by B (through the balancer) lands in the shared tree.
	if out := swaksSend(t, mxB, "127.0.0.3", "someone@remote.example", user); !strings.Contains(out, "queued as") {
		t.Fatalf("delivery through B refused:\n%s", out)
	}
	// The balancer's address (127.0.0.1) is trusted, the client's is not:
	// relaying is refused, so popgate decided on the client's address.
	if out := swaksSend(t, mxA, "127.0.0.2", user, "friend@remote.example"); !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay through the balancer before any login was not refused:\n%s", out)
	}

	// Read through A: the message B took in.
	c := popOpen(t, "127.0.0.2", popA, user, pass)
	c.Expect("STAT", "+OK 1 ")
	c.Expect("RETR 1", "+OK")
	var body strings.Builder
	for {
		line, err := c.R.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ".\r\n" {
			break
		}
		body.WriteString(line)
	}
	if !strings.Contains(body.String(), "hello from swaks") {
		t.Fatalf("message read through A:\n%s", body.String())
	}

	// [IN-USE] across instances while A's session lives.
	if got := popTry(t, "127.0.0.5", popB, user, pass); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Fatalf("login on B while A holds the mailbox: %q, want -ERR [IN-USE]", got)
	}

	// The login on A granted 127.0.0.2, the client, not 127.0.0.1.
	out, err := runCmd(t, "", binary(t), "grants", "list", "--config", cfgA)
	if err != nil || !strings.Contains(out, "127.0.0.2") || strings.Contains(out, "127.0.0.1") {
		t.Fatalf("grants on A: %v\n%s", err, out)
	}
	if out := swaksSend(t, mxA, "127.0.0.2", user, "friend@remote.example"); !strings.Contains(out, "queued as") {
		t.Fatalf("relay from the granted client through A refused:\n%s", out)
	}
	if out := swaksSend(t, mxA, "127.0.0.4", user, "friend@remote.example"); !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("relay from another client through the same balancer allowed:\n%s", out)
	}
	if !strings.Contains(a.stderr.String(), "remote=127.0.0.2") {
		t.Errorf("A's log does not name the client address")
	}

	// A direct client may not claim an address with a PROXY header.
	liar := pop3test.DialFrom(t, "127.0.0.6", b.pop)
	liar.Expect("", "+OK")
	liar.Expect("PROXY TCP4 127.0.0.2 127.0.0.1 40000 110", "-ERR")
	direct, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)}}).Dial("tcp", b.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
	if _, err := proxyproto.HeaderProxyFromAddrs(2, src, direct.RemoteAddr()).WriteTo(direct); err != nil {
		t.Fatal(err)
	}
	smtp := smtptest.NewClient(t, direct)
	smtp.Expect("", "220")
	smtp.Expect("", "421")

	// HAProxy's health checks (PROXY v2 LOCAL) found every server up.
	if strings.Contains(hlog.String(), "is DOWN") {
		t.Errorf("HAProxy marked a server down:\n%s", hlog)
	}
	if !strings.Contains(a.stderr.String(), "pop3 proxy health check") {
		t.Errorf("A logged no health check")
	}

	// kill -9 of the session holder (with a deletion pending): its lease
	// stays behind, then expires, and B serves the mailbox, untouched.
	c.Expect("DELE 1", "+OK")
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	lease := filepath.Join(mailDir, "example.com", "alice", "popgate.lease")
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("lease of the killed instance: %v, want it left behind", err)
	}
	waitUntil(t, "B to take over the killed instance's lease", 4*sharedLease, func() bool {
		got := popTry(t, "127.0.0.5", popB, user, pass)
		if strings.HasPrefix(got, "-ERR [IN-USE]") {
			return false
		}
		if !strings.HasPrefix(got, "+OK") {
			t.Fatalf("login on B after the kill: %q", got)
		}
		return true
	})
	served := popOpen(t, "127.0.0.5", popB, user, pass)
	served.Expect("STAT", "+OK 1 ")
	served.Expect("QUIT", "+OK")
	if !strings.Contains(b.stderr.String(), "taking over a lease") {
		t.Errorf("B did not log the takeover:\n%s", b.stderr)
	}
}

// TestInteropSharedGrantsThroughRedis: two binaries share grants through
// a real redis-server, behind HAProxy with send-proxy-v2: a login on A
// relays on B; the grant ends at pop_ttl on both; with Redis stopped the
// relay stays closed and local logins still work; with Redis back the
// local grants are shared again.
func TestInteropSharedGrantsThroughRedis(t *testing.T) {
	need(t, "swaks")
	need(t, "haproxy")
	const user, pass = "alice@example.com", "correct horse battery"
	const ttl = 8 * time.Second
	redis := redistest.Start(t)
	cli := func(args ...string) string {
		_, port, _ := strings.Cut(redis.Addr(), ":")
		out, err := runCmd(t, "", need(t, "redis-cli"), append([]string{"-h", "127.0.0.1", "-p", port, "--raw"}, args...)...)
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	mailDir := filepath.Join(t.TempDir(), "shared-mail")
	usersFile := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("grants_url = %q", redis.URL(0))
	cfgA := sharedInstance(t, "a", mailDir, usersFile, ttl, extra)
	cfgB := sharedInstance(t, "b", mailDir, usersFile, ttl, extra)
	if out, err := runCmd(t, pass+"\n", binary(t), "user", "add", "--stdin", "--config", cfgA, user); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	a, b := startBinary(t, cfgA), startBinary(t, cfgB)
	fronts, _ := haproxy(t, a.pop, a.mx, b.pop, b.mx)
	popA, mxA, popB, mxB := fronts[0], fronts[1], fronts[2], fronts[3]
	relays := func(mx, from string) bool {
		out := swaksSend(t, mx, from, user, "friend@remote.example")
		if !strings.Contains(out, "queued as") && !strings.Contains(out, "554 5.7.1") {
			t.Fatalf("relay attempt from %s via %s: neither accepted nor refused:\n%s", from, mx, out)
		}
		return strings.Contains(out, "queued as")
	}

	// A grant on A relays on B; the Redis key is the client's address,
	// with the grant's expiry.
	if relays(mxB, "127.0.0.2") {
		t.Fatal("relay from 127.0.0.2 before any login")
	}
	popLogin(t, "127.0.0.2", popA, user, pass)
	loggedIn := time.Now()
	waitUntil(t, "the grant made on A to relay on B", 5*time.Second, func() bool { return relays(mxB, "127.0.0.2") })
	if relays(mxB, "127.0.0.4") || relays(mxA, "127.0.0.4") {
		t.Fatal("another client behind the same balancer relays")
	}
	out := cli("PTTL", "popgate:grant:127.0.0.2")
	if pttl, err := strconv.Atoi(out); err != nil || pttl <= 0 || time.Duration(pttl)*time.Millisecond > ttl {
		t.Fatalf("Redis key popgate:grant:127.0.0.2 PTTL = %q: want 0 < ms <= %v", out, ttl)
	}
	if cli("EXISTS", "popgate:grant:127.0.0.1") != "0" {
		t.Fatal("the balancer's address was granted")
	}

	// At pop_ttl the grant ends on both instances (and in Redis).
	waitUntil(t, "the grant to end on A and B", ttl+10*time.Second, func() bool {
		return !relays(mxA, "127.0.0.2") && !relays(mxB, "127.0.0.2")
	})
	if since := time.Since(loggedIn); since < ttl {
		t.Fatalf("the grant ended %v after the login, before pop_ttl %v", since, ttl)
	}
	if cli("EXISTS", "popgate:grant:127.0.0.2") != "0" {
		t.Error("the expired grant's key is still in Redis")
	}

	// Redis stopped: no open relay; a login on B relays through B.
	redis.Kill()
	popLogin(t, "127.0.0.7", popB, user, pass)
	if !relays(mxB, "127.0.0.7") {
		t.Fatal("with Redis down, a login on B does not relay through B")
	}
	if relays(mxA, "127.0.0.7") || relays(mxA, "127.0.0.9") || relays(mxB, "127.0.0.9") {
		t.Fatal("with Redis down, an address relays where it never logged in")
	}
	if out, _ := runCmd(t, "", binary(t), "health", "--config", cfgB); !strings.Contains(out, "DEGRADED") {
		t.Errorf("health on B with Redis down says:\n%s", out)
	}

	// Redis back: B writes its local grant back, A relays it too.
	redis.Restart()
	waitUntil(t, "B's local grant to be shared after Redis returned", 15*time.Second, func() bool {
		return relays(mxA, "127.0.0.7")
	})
	if relays(mxA, "127.0.0.9") {
		t.Fatal("after Redis returned, an address that never logged in relays")
	}
}
