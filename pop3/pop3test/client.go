// Package pop3test is a POP3 dialog client for tests: it dials a real
// listener (optionally from a chosen loopback address), sends command
// lines, checks replies and reads multi-line responses, and has shortcuts
// for the exchanges tests repeat (login, RETR, UIDL). Like
// net/http/httptest it is for _test.go files only; every failure fails
// the test.
package pop3test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Timeout bounds a whole test connection, so a server that stops
// answering fails the test instead of hanging it.
const Timeout = 30 * time.Second

// Client is one POP3 connection driven line by line. Conn and R are
// exposed for tests that need to write raw bytes or read past the
// line discipline; after such use the dialog must be back in step.
type Client struct {
	t    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// Dial connects to addr.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	return DialFrom(t, "", addr)
}

// DialFrom connects to addr from the loopback address src (such as
// "127.0.0.5"), which is how tests stand for different clients; "" lets
// the system choose.
func DialFrom(t testing.TB, src, addr string) *Client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("pop3test: dial %s from %q: %v", addr, src, err)
	}
	return NewClient(t, c)
}

// NewClient drives an open connection, closed when the test ends.
func NewClient(t testing.TB, c net.Conn) *Client {
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(Timeout))
	return &Client{t: t, Conn: c, R: bufio.NewReader(c)}
}

// Send writes line followed by CRLF.
func (c *Client) Send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, line+"\r\n"); err != nil {
		c.t.Fatalf("pop3test: send %q: %v", line, err)
	}
}

// Line reads one response line, checks its CRLF and strips it.
func (c *Client) Line() string {
	c.t.Helper()
	s, err := c.R.ReadString('\n')
	if err != nil {
		c.t.Fatalf("pop3test: read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("pop3test: line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// Lines reads the body of a multi-line response up to the terminating
// ".", un-stuffing leading dots (RFC 1939 §3).
func (c *Client) Lines() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.Line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// Closed asserts that the server has closed the connection.
func (c *Client) Closed() {
	c.t.Helper()
	if s, err := c.R.ReadString('\n'); err == nil || s != "" {
		c.t.Fatalf("pop3test: connection still open: read %q, %v", s, err)
	}
}

// Expect sends cmd (nothing when cmd is "", to read the greeting) and
// checks that the reply line starts with want. It returns the reply.
func (c *Client) Expect(cmd, want string) string {
	c.t.Helper()
	if cmd != "" {
		c.Send(cmd)
	}
	got := c.Line()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("pop3test: %q: got %q, want prefix %q", cmd, got, want)
	}
	return got
}

// ClosedReply is the Step.Want that expects the server to have closed
// the connection instead of replying.
const ClosedReply = "<closed>"

// Step is one exchange of a dialog: Send a line ("" sends nothing) and
// expect a reply starting with Want. Body, if not nil, is the expected
// multi-line body, dots un-stuffed.
type Step struct {
	Send string
	Want string
	Body []string
}

// Run plays steps in order and fails at the first mismatch.
func (c *Client) Run(steps []Step) {
	c.t.Helper()
	for i, s := range steps {
		if s.Send != "" {
			c.Send(s.Send)
		}
		if s.Want == ClosedReply {
			c.Closed()
			continue
		}
		got := c.Line()
		if !strings.HasPrefix(got, s.Want) {
			c.t.Fatalf("pop3test: step %d %q: got %q, want prefix %q", i, s.Send, got, s.Want)
		}
		if s.Body != nil {
			body := c.Lines()
			if strings.Join(body, "\n") != strings.Join(s.Body, "\n") {
				c.t.Fatalf("pop3test: step %d %q: body\n%q\nwant\n%q", i, s.Send, body, s.Body)
			}
		}
	}
}

// Login reads the greeting and logs in with USER and PASS.
func (c *Client) Login(user, pass string) {
	c.t.Helper()
	c.Expect("", "+OK")
	c.Expect("USER "+user, "+OK")
	c.Expect("PASS "+pass, "+OK")
}

// Retr fetches message n and returns its text with CRLF line endings
// and dots un-stuffed.
func (c *Client) Retr(n int) string {
	c.t.Helper()
	c.Expect(fmt.Sprintf("RETR %d", n), "+OK")
	var b strings.Builder
	for _, l := range c.Lines() {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// UIDL lists the unique-id of every message, in message-number order.
func (c *Client) UIDL() []string {
	c.t.Helper()
	c.Expect("UIDL", "+OK")
	var uids []string
	for _, l := range c.Lines() {
		f := strings.Fields(l)
		if len(f) != 2 {
			c.t.Fatalf("pop3test: UIDL line %q is not \"n uid\"", l)
		}
		uids = append(uids, f[1])
	}
	return uids
}

// StartTLS runs a TLS handshake on the connection (after "+OK" to STLS)
// and reads from the TLS layer from then on; anything the server sent in
// clear text after its reply is dropped.
func (c *Client) StartTLS(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("pop3test: TLS handshake: %v", err)
	}
	c.Conn = tc
	c.R = bufio.NewReader(tc)
}
