package main

import (
	"strings"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// TestLongLinesAndBareNewlinesEndToEnd drives the assembled server over
// raw sockets: a 200,000-octet text line goes into the maildir and comes
// back out of POP3 whole; a bare LF is refused by default and normalised
// for a trusted network with smtp.bare_newline = "normalize".
func TestLongLinesAndBareNewlinesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SMTP.BareNewline = "normalize"
	cfg.Relay.TrustedNetworks = []Prefix{mustPrefix("127.0.0.6/32")}
	s := startServer(t, cfg, &fakeClock{})
	mx, pop := s.addr("smtp.listen"), s.addr("pop3.listen")
	long := strings.Repeat("0123456789", 20000)

	send := func(from, body, want string) {
		t.Helper()
		c := smtptest.DialFrom(t, from, mx)
		c.Hello("client.example.net")
		if got := c.Transact("x@remote.example", "bob@example.com", body); !strings.HasPrefix(got, want) {
			t.Fatalf("message from %s: %q, want %q", from, got, want)
		}
		c.Expect("QUIT", "221")
	}
	send("127.0.0.5", "Subject: long\r\n\r\n"+long+"\r\n", "250 2.0.0")
	send("127.0.0.5", "Subject: bare\r\n\r\nbare\nlf\r\n", "550 5.5.2")
	send("127.0.0.6", "Subject: trusted\r\n\r\nbare\nlf\r\n", "250 2.0.0")

	c := pop3test.DialFrom(t, "127.0.0.5", pop)
	c.Login("bob@example.com", "bob-password")
	c.Expect("STAT", "+OK 2 ")
	for i, want := range []string{"\r\n" + long + "\r\n", "\r\nbare\r\nlf\r\n"} {
		if msg := c.Retr(i + 1); !strings.HasSuffix(msg, want) {
			t.Errorf("message %d: not kept whole (len %d)", i+1, len(msg))
		}
	}
	c.Expect("QUIT", "+OK")
}
