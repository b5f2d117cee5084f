package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLookupServersFollowGrants runs popgate with the policy server on
// TCP and the socket map on a unix socket, and walks a POP3 login through
// both: before it the client is DUNNO / NOTFOUND, after it OK / RELAY,
// at pop_ttl back again. The static rules answer throughout, and a
// reload that changes them changes the answers.
func TestLookupServersFollowGrants(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Relay.Mirror = nil
	cfg.Relay.AccessFile = writeFile(t, dir, "access", "Connect:10.9 REJECT\n192.168.7 RELAY\n")
	sock := filepath.Join(dir, "socketmap.sock")
	cfg.Policy.Listen = []string{"127.0.0.1:0"}
	cfg.Socketmap.Listen = []string{"unix:" + sock}
	clock := &fakeClock{}
	s := startServer(t, cfg, clock)

	pol := dialLookup(t, "tcp", s.addr("policy.listen"))
	sm := dialLookup(t, "unix", sock)
	if got := pol.policy("127.0.0.2", "friend@remote.example"); got != "DUNNO" {
		t.Fatalf("policy before login: %q", got)
	}
	if got := sm.socketmap("access connect:127.0.0.2"); got != "NOTFOUND " {
		t.Fatalf("socketmap before login: %q", got)
	}
	popLogin(t, "127.0.0.2", s.addr("pop3.listen"), "alice@example.com", "alice's secret")
	if got := pol.policy("127.0.0.2", "friend@remote.example"); got != "OK" {
		t.Fatalf("policy after login: %q", got)
	}
	if got := sm.socketmap("access connect:127.0.0.2"); got != "OK RELAY" {
		t.Fatalf("socketmap after login: %q", got)
	}
	if got := pol.policy("127.0.0.3", "friend@remote.example"); got != "DUNNO" {
		t.Fatalf("policy for another client: %q", got)
	}
	if got := pol.policy("10.9.1.1", "friend@remote.example"); got != "554 5.7.1 Access denied" {
		t.Fatalf("policy for a REJECT network: %q", got)
	}
	if got := sm.socketmap("access 192.168.7"); got != "OK RELAY" {
		t.Fatalf("socketmap static rule: %q", got)
	}
	clock.advance(15 * time.Minute)
	if got := pol.policy("127.0.0.2", "friend@remote.example"); got != "DUNNO" {
		t.Fatalf("policy at pop_ttl: %q", got)
	}
	if got := sm.socketmap("access connect:127.0.0.2"); got != "NOTFOUND " {
		t.Fatalf("socketmap at pop_ttl: %q", got)
	}
	// A reload swaps the rules under the running servers (what reload
	// stores after re-reading the files).
	writeFile(t, dir, "access", "Connect:10.9 RELAY\n")
	rs, err := s.buildRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.relay.Store(rs)
	if got := pol.policy("10.9.1.1", "friend@remote.example"); got != "OK" {
		t.Fatalf("policy after reload: %q", got)
	}
	if got := sm.socketmap("access 192.168.7"); got != "NOTFOUND " {
		t.Fatalf("socketmap after reload: %q", got)
	}
}

type lookupConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLookup(t *testing.T, network, addr string) *lookupConn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &lookupConn{t: t, c: c, r: bufio.NewReader(c)}
}

// policy asks as a Postfix smtpd does at RCPT and returns the action.
func (l *lookupConn) policy(client, rcpt string) string {
	l.t.Helper()
	fmt.Fprintf(l.c, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=%s\nclient_name=unknown\nsender=alice@example.com\nrecipient=%s\n\n", client, rcpt)
	line, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatal(err)
	}
	if blank, err := l.r.ReadString('\n'); err != nil || blank != "\n" {
		l.t.Fatalf("answer not ended by an empty line: %q %v", blank, err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "action=")
}

// socketmap sends one netstring request and returns the reply's data.
func (l *lookupConn) socketmap(req string) string {
	l.t.Helper()
	fmt.Fprintf(l.c, "%d:%s,", len(req), req)
	n, err := l.r.ReadString(':')
	if err != nil {
		l.t.Fatal(err)
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil {
		l.t.Fatalf("bad netstring length %q", n)
	}
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(l.r, buf); err != nil || buf[size] != ',' {
		l.t.Fatalf("bad netstring: %q %v", buf, err)
	}
	return string(buf[:size])
}
