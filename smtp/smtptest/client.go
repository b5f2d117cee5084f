// Package smtptest holds SMTP helpers for tests: a raw dialog client
// that speaks line by line to a real listener (so tests can send what a
// well-behaved library never would) and a sink server that records what
// it accepts and can be told to refuse. Like net/http/httptest it is for
// _test.go files only; every failure fails the test.
package smtptest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// ReplyTimeout bounds the wait for each reply, so a server that stops
// answering fails the test instead of hanging it.
const ReplyTimeout = 10 * time.Second

// Client is one SMTP connection driven line by line. Conn and R are
// exposed for tests that write raw bytes or read past the reply
// discipline; after such use the dialog must be back in step.
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
// "127.0.0.5"), which is how tests stand for different clients; ""
// lets the system choose. It does not read the greeting.
func DialFrom(t testing.TB, src, addr string) *Client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("smtptest: dial %s from %q: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return NewClient(t, c)
}

// NewClient drives an open connection (plain or TLS).
func NewClient(t testing.TB, c net.Conn) *Client {
	return &Client{t: t, Conn: c, R: bufio.NewReader(c)}
}

// Reply reads one complete reply, every line of a multi-line reply with
// its CRLF, or what arrived before the connection closed ("" if
// nothing), so a test can assert that the server hung up.
func (c *Client) Reply() string {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(ReplyTimeout))
	var lines []string
	for {
		line, err := c.R.ReadString('\n')
		if err != nil {
			if line != "" {
				lines = append(lines, line)
			}
			return strings.Join(lines, "")
		}
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "")
		}
	}
}

// Send writes s exactly as given (no CRLF is added).
func (c *Client) Send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("smtptest: send %q: %v", Trunc(s), err)
	}
}

// Cmd sends line with CRLF and returns the reply.
func (c *Client) Cmd(line string) string {
	c.t.Helper()
	c.Send(line + "\r\n")
	return c.Reply()
}

// Expect sends cmd with CRLF (nothing when cmd is "", to read the
// greeting) and checks that the last line of the reply, the one that
// carries the final code, starts with want. It returns the reply.
func (c *Client) Expect(cmd, want string) string {
	c.t.Helper()
	var got string
	if cmd == "" {
		got = c.Reply()
	} else {
		got = c.Cmd(cmd)
	}
	if !strings.HasPrefix(LastLine(got), want) {
		c.t.Fatalf("smtptest: %q: got %q, want prefix %q", Trunc(cmd), got, want)
	}
	return got
}

// Step is one exchange of a dialog: Send (a line without CRLF, or raw
// bytes when Raw is set) and the prefix Want the reply's last line must
// have.
type Step struct {
	Send string
	Want string
	Raw  bool
}

// Run plays steps in order and fails at the first mismatch.
func (c *Client) Run(steps []Step) {
	c.t.Helper()
	for i, s := range steps {
		var got string
		if s.Raw {
			c.Send(s.Send)
			got = c.Reply()
		} else {
			got = c.Cmd(s.Send)
		}
		if !strings.HasPrefix(LastLine(got), s.Want) {
			c.t.Fatalf("smtptest: step %d %q: got %q, want prefix %q", i, Trunc(s.Send), got, s.Want)
		}
	}
}

// Hello reads the greeting and sends EHLO name, expecting 220 and 250.
func (c *Client) Hello(name string) {
	c.t.Helper()
	c.Expect("", "220")
	c.Expect("EHLO "+name, "250")
}

// AuthPlain authenticates with AUTH PLAIN and an initial response
// (RFC 4954 §4), expecting 235.
func (c *Client) AuthPlain(user, pass string) {
	c.t.Helper()
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	c.Expect("AUTH PLAIN "+ir, "235")
}

// Transact runs MAIL, RCPT and DATA (each expected to succeed) and sends
// msg, which must be CRLF-terminated and dot-stuffed, and the final dot.
// It returns the reply to the final dot.
func (c *Client) Transact(from, rcpt, msg string) string {
	c.t.Helper()
	c.Expect("MAIL FROM:<"+from+">", "250")
	c.Expect("RCPT TO:<"+rcpt+">", "250")
	c.Expect("DATA", "354")
	c.Send(msg + ".\r\n")
	return c.Reply()
}

// StartTLS runs a TLS handshake on the connection (after 220 to
// STARTTLS) and reads from the TLS layer from then on.
func (c *Client) StartTLS(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("smtptest: TLS handshake: %v", err)
	}
	c.Conn = tc
	c.R = bufio.NewReader(tc)
}

// LastLine returns the last line of a reply without its CRLF.
func LastLine(reply string) string {
	lines := strings.Split(strings.TrimRight(reply, "\r\n"), "\r\n")
	return lines[len(lines)-1]
}

// Trunc shortens s to 60 bytes for messages about long inputs.
func Trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
