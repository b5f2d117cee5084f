package pop3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/pop3/pop3test"
)

// TestDroppedConnectionDeletesNothing: DELE then hang up; Commit is never
// called and the lock is released.
func TestDroppedConnectionDeletesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{{"DELE 1", "+OK", nil}, {"DELE 2", "+OK", nil}})
	c.Conn.Close()
	e.waitClosed(t, "alice@example.com")
	n, commits, closes, locked := e.drop.state("alice@example.com")
	if n != 3 || len(commits) != 0 || closes != 1 || locked {
		t.Fatalf("after drop: %d messages, commits %v, closes %d, locked %v", n, commits, closes, locked)
	}
}

// TestIdleTimeout: the autologout timer closes the session without
// applying deletions (RFC 1939 §3).
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{
		{"DELE 1", "+OK", nil},
		{"", "-ERR autologout: idle for too long", nil},
		{"", "<closed>", nil},
	})
	e.waitClosed(t, "alice@example.com")
	if n, commits, _, _ := e.drop.state("alice@example.com"); n != 3 || len(commits) != 0 {
		t.Fatalf("after idle timeout: %d messages, commits %v", n, commits)
	}
}

// TestMaxLifetime: a busy connection still ends at its lifetime.
func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxLifetime = 300 * time.Millisecond })
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{{"DELE 1", "+OK", nil}})
	for {
		c.Send("NOOP")
		l := c.Line()
		if l == "+OK" {
			continue
		}
		if l != "-ERR [SYS/TEMP] connection lifetime exceeded" {
			t.Fatalf("got %q", l)
		}
		break
	}
	e.waitClosed(t, "alice@example.com")
	if _, commits, _, _ := e.drop.state("alice@example.com"); len(commits) != 0 {
		t.Fatalf("commits %v", commits)
	}
}

// TestLongLineResync: a line over 255 octets gets -ERR and the next line
// is read normally; exactly 255 octets with CRLF is accepted.
func TestLongLineResync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	long := "USER " + strings.Repeat("a", 248) // 253 + CRLF = 255
	run(c, []step{
		{"", "+OK", nil},
		{long, "+OK send PASS", nil},
		{long + "b", "-ERR line too long", nil},
		{"USER " + strings.Repeat("x", 10000), "-ERR line too long", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "+OK maildrop locked", nil},
	})
}

// TestNUL: a NUL byte is refused; as the first command it closes.
func TestNUL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	run(c, []step{{"", "+OK", nil}, {"CAPA", "+OK", capaAuthPlain}, {"USER al\x00ice", "-ERR NUL byte", nil}, {"USER alice", "+OK", nil}})
	c2 := e.dial(t)
	run(c2, []step{{"", "+OK", nil}, {"\x00\x00", "-ERR not a POP3 command", nil}, {"", "<closed>", nil}})
}

// TestProtocolErrorsClose: client mistakes get -ERR and the session goes
// on; only the maxProtocolErrors-th gets one reply and a close, and nothing
// is deleted.
func TestProtocolErrorsClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{
		{"FOO", "-ERR unknown command", nil},
		{"RETR x", "-ERR invalid message number", nil},
		{"DELE 1", "+OK", nil},
		{"USER x", "-ERR USER not valid in this state", nil},
	})
	for i := 3; i < maxProtocolErrors-1; i++ {
		run(c, []step{{"XYZZY", "-ERR unknown command", nil}})
	}
	run(c, []step{
		{"STAT", "+OK", nil},
		{"XYZZY", "-ERR too many errors, closing connection", nil},
		{"", "<closed>", nil},
	})
	e.waitClosed(t, "alice@example.com")
	if _, commits, _, _ := e.drop.state("alice@example.com"); len(commits) != 0 {
		t.Fatalf("commits %v", commits)
	}
}

// TestProbingClientKeepsSession: what real clients send to find out what a
// server supports (LAST from RFC 1460, XTND from Eudora, AUTH without a
// mechanism, odd TOP arguments, commands in the wrong state) is answered
// and the session stays usable: more than three of them do not hang up.
func TestProbingClientKeepsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	run(c, []step{
		{"", "+OK", nil},
		{"STAT", "-ERR STAT not valid in this state", nil},
		{"LAST", "-ERR unknown command", nil},
		{"XTND XMIT", "-ERR unknown command", nil},
		{"AUTH", "+OK", []string{"PLAIN", "LOGIN"}},
		{"AUTH CRAM-MD5", "-ERR unsupported authentication mechanism", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "+OK", nil},
		{"LAST", "-ERR unknown command", nil},
		{"TOP 1 -1", "-ERR invalid line count", nil},
		{"TOP 1", "-ERR wrong number of arguments for TOP", nil},
		{"LIST 99", "-ERR no such message", nil},
		{"STAT", "+OK", nil},
		{"QUIT", "+OK", nil},
	})
}

// TestFailedLoginsClose: refused logins have their own, smaller limit;
// protocol mistakes in between neither reset nor add to it.
func TestFailedLoginsClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	run(c, []step{
		{"", "+OK", nil},
		{"USER alice", "+OK", nil},
		{"PASS wrong1", "-ERR [AUTH] authentication failed", nil},
		{"LAST", "-ERR unknown command", nil},
		{"USER alice", "+OK", nil},
		{"PASS wrong2", "-ERR [AUTH] authentication failed", nil},
		{"XTND", "-ERR unknown command", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "+OK", nil},
		{"QUIT", "+OK", nil},
	})
	c2 := e.dial(t)
	run(c2, []step{{"", "+OK", nil}})
	for i := 1; i < maxFailedLogins; i++ {
		run(c2, []step{{"USER alice", "+OK", nil}, {"PASS wrong", "-ERR [AUTH] authentication failed", nil}})
	}
	run(c2, []step{
		{"USER alice", "+OK", nil},
		{"PASS wrong", "-ERR [AUTH] authentication failed, too many failed logins, closing connection", nil},
		{"", "<closed>", nil},
	})
}

// TestHTTPVerbCloses: an HTTP request as first command gets one reply and
// a close; later it is just an unknown command.
func TestHTTPVerbCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, verb := range []string{"GET / HTTP/1.1", "POST /x HTTP/1.0", "HEAD / HTTP/1.1", "CONNECT example.com:443 HTTP/1.1", "get /"} {
		c := e.dial(t)
		run(c, []step{{"", "+OK", nil}, {verb, "-ERR this is a POP3 server", nil}, {"", "<closed>", nil}})
	}
	c := e.dial(t)
	run(c, []step{{"", "+OK", nil}, {"NOOP", "-ERR NOOP not valid", nil}, {"GET /", "-ERR unknown command", nil}, {"QUIT", "+OK", nil}})
}

// TestConnectionCaps: over the total or per-IP cap the client gets
// "-ERR [SYS/TEMP] too many connections" and is closed.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	t.Run("per IP", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxConnsPerIP = 2 })
		a, b := e.dial(t), e.dial(t)
		run(a, []step{{"", "+OK", nil}})
		run(b, []step{{"", "+OK", nil}})
		over := e.dial(t)
		run(over, []step{{"", "-ERR [SYS/TEMP] too many connections", nil}, {"", "<closed>", nil}})
		other := e.dialFrom(t, "127.0.0.2")
		run(other, []step{{"", "+OK", nil}})
		run(a, []step{{"QUIT", "+OK", nil}, {"", "<closed>", nil}})
		waitFor(t, func() bool {
			c := e.dial(t)
			return c.Line() == "+OK pop.example.com POP3 server ready"
		})
	})
	t.Run("slot freed before the lingering close", func(t *testing.T) {
		// The first client reads QUIT's +OK but keeps its socket open, so
		// the server lingers (draining input) for a while: that must not
		// hold the per-IP slot, or busy clients reconnecting are refused.
		e := newEnv(t, func(c *Config) { c.MaxConnsPerIP = 1 })
		a := e.dial(t)
		run(a, []step{{"", "+OK", nil}, {"QUIT", "+OK", nil}})
		b := e.dial(t)
		run(b, []step{{"", "+OK pop.example.com POP3 server ready", nil}})
	})
	t.Run("total", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxConns = 1 })
		a := e.dial(t)
		run(a, []step{{"", "+OK", nil}})
		over := e.dialFrom(t, "127.0.0.3")
		run(over, []step{{"", "-ERR [SYS/TEMP] too many connections", nil}, {"", "<closed>", nil}})
	})
}

// waitFor polls cond until it holds, for state the server updates
// asynchronously after a close (no fixed sleeps).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInUse: a second login to a locked mailbox gets [IN-USE] and may
// retry after the first session ends.
func TestInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.dial(t)
	login(a, "alice", "secret")
	b := e.dial(t)
	run(b, []step{
		{"", "+OK", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "-ERR [IN-USE] mailbox locked by another session", nil},
	})
	// The lock is released before QUIT's +OK is sent: a client that
	// reconnects at once must not meet its own finished session.
	run(a, []step{{"QUIT", "+OK", nil}})
	run(b, []step{{"USER alice", "+OK", nil}, {"PASS secret", "+OK maildrop locked", nil}})
}

// TestPipelining: many commands in one write get their replies in order.
func TestPipelining(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.Line()
	var b strings.Builder
	b.WriteString("USER alice\r\nPASS secret\r\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "LIST %d\r\nNOOP\r\n", i%3+1)
	}
	b.WriteString("RETR 1\r\nQUIT\r\n")
	if _, err := c.Conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	run(c, []step{{"", "+OK send PASS", nil}, {"", "+OK maildrop", nil}})
	for i := 0; i < 50; i++ {
		run(c, []step{{"", fmt.Sprintf("+OK %d ", i%3+1), nil}, {"", "+OK", nil}})
	}
	run(c, []step{{"", "+OK", msg1Lines}, {"", "+OK", nil}, {"", "<closed>", nil}})
}

// TestObserverAndLogs: the observer sees the canonical user and the
// client's address (dialled from 127.0.0.2), the log has the fixed
// events and never the password.
func TestObserverAndLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dialFrom(t, "127.0.0.2")
	run(c, []step{{"", "+OK", nil}, {"USER alice", "+OK", nil}, {"PASS wrongpw", "-ERR [AUTH]", nil}})
	run(c, []step{{"USER Alice", "+OK", nil}, {"PASS secret", "+OK", nil}})
	select {
	case got := <-e.obs.ch:
		if got != "alice@example.com 127.0.0.2" {
			t.Fatalf("observer got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("observer not called")
	}
	run(c, []step{{"QUIT", "+OK", nil}})
	e.waitClosed(t, "alice@example.com")
	logs := e.logs.String()
	for _, want := range []string{
		`msg="pop3 login failed" proto=pop3 remote=127.0.0.2`, `user=alice ip=127.0.0.2 reason="bad credentials"`,
		`msg="pop3 login ok" proto=pop3 remote=127.0.0.2`, `user=alice@example.com ip=127.0.0.2`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "secret") || strings.Contains(logs, "wrongpw") {
		t.Errorf("log contains a password:\n%s", logs)
	}
}

// proxiedConn reports a client address other than its RemoteAddr, as a
// PROXY-protocol listener would.
type proxiedConn struct {
	net.Conn
	addr string
}

func (p proxiedConn) ClientAddr() netipAddr { return mustAddr(p.addr) }

type proxiedListener struct{ net.Listener }

func (l proxiedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return proxiedConn{c, "203.0.113.7"}, nil
}

// TestClientAddr: a connection's ClientAddr wins over RemoteAddr, and a
// non-loopback client may not log in without TLS.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.AllowPlaintextAuth = true })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(proxiedListener{l})
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := pop3test.NewClient(t, conn)
	login(c, "alice", "secret")
	if got := <-e.obs.ch; got != "alice@example.com 203.0.113.7" {
		t.Fatalf("observer got %q", got)
	}
}

// TestThrottledAndInternal: a throttled login gets the same reply as a
// bad password; an internal error gets [SYS/TEMP] and never its text.
func TestThrottledAndInternal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.auth.mu.Lock()
	e.auth.throttled[mustAddr("127.0.0.4")] = true
	e.auth.mu.Unlock()
	c := e.dialFrom(t, "127.0.0.4")
	run(c, []step{{"", "+OK", nil}, {"USER alice", "+OK", nil}, {"PASS secret", "-ERR [AUTH] authentication failed", nil}})
	run(c, []step{{"USER nobody", "+OK", nil}, {"PASS secret", "-ERR [AUTH] authentication failed", nil}})
	if !strings.Contains(e.logs.String(), `reason=throttled`) {
		t.Errorf("log lacks throttled reason")
	}

	f := newEnv(t, nil)
	f.auth.err = fmt.Errorf("users file unreadable: /etc/secret-path")
	d := f.dial(t)
	run(d, []step{{"", "+OK", nil}, {"USER alice", "+OK", nil}, {"PASS secret", "-ERR [SYS/TEMP] internal server error, try again later", nil}})
	if !strings.Contains(f.logs.String(), "secret-path") {
		t.Errorf("internal error cause not logged")
	}
}

// TestBackendFailures: Open failing, a vanished message and a failing
// Commit each get a clean reply.
func TestBackendFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	st := e.drop.store("alice@example.com")
	e.drop.mu.Lock()
	st.gone[st.msgs[1].uid] = true
	e.drop.commitErr = fmt.Errorf("disk full")
	e.drop.mu.Unlock()
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{
		{"RETR 2", "-ERR message 2 is no longer available", nil},
		{"TOP 2 0", "-ERR message 2 is no longer available", nil},
		{"RETR 1", "+OK", msg1Lines},
		{"DELE 1", "+OK", nil},
		{"QUIT", "-ERR [SYS/TEMP] some deleted messages not removed", nil},
		{"", "<closed>", nil},
	})
	e.waitClosed(t, "alice@example.com")

	f := newEnv(t, nil)
	f.drop.openErr = fmt.Errorf("permission denied")
	d := f.dial(t)
	run(d, []step{{"", "+OK", nil}, {"USER alice", "+OK", nil}, {"PASS secret", "-ERR [SYS/TEMP]", nil}, {"QUIT", "+OK", nil}})
}

// TestShutdown: an idle session is told and closed without applying its
// deletions; Serve returns ErrServerClosed (checked in newEnv's cleanup).
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	login(c, "alice", "secret")
	run(c, []step{{"DELE 1", "+OK", nil}})
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(t.Context()) }()
	run(c, []step{{"", "-ERR [SYS/TEMP] server shutting down", nil}, {"", "<closed>", nil}})
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	n, commits, closes, _ := e.drop.state("alice@example.com")
	if n != 3 || len(commits) != 0 || closes != 1 {
		t.Fatalf("after shutdown: %d messages, commits %v, closes %d", n, commits, closes)
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}
}

// TestShutdownDeadline: a session busy in a SASL exchange is not idle;
// when Shutdown's context ends, its connection is closed and Shutdown
// reports the context's error.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	run(c, []step{{"", "+OK", nil}, {"AUTH PLAIN", "+ ", nil}})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	c.Closed()
}
