package main

import (
	"fmt"
	"strings"
	"testing"
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
		c := dialFrom(t, from, mx)
		c.expect("", "220")
		c.expect("EHLO client.example.net", "250")
		c.expect("MAIL FROM:<x@remote.example>", "250")
		c.expect("RCPT TO:<bob@example.com>", "250")
		c.expect("DATA", "354")
		fmt.Fprint(c.conn, body+".\r\n")
		c.expect("", want)
		c.expect("QUIT", "221")
	}
	send("127.0.0.5", "Subject: long\r\n\r\n"+long+"\r\n", "250 2.0.0")
	send("127.0.0.5", "Subject: bare\r\n\r\nbare\nlf\r\n", "550 5.5.2")
	send("127.0.0.6", "Subject: trusted\r\n\r\nbare\nlf\r\n", "250 2.0.0")

	c := dialFrom(t, "127.0.0.5", pop)
	c.expect("", "+OK")
	c.expect("USER bob@example.com", "+OK")
	c.expect("PASS bob-password", "+OK")
	c.expect("STAT", "+OK 2 ")
	for i, want := range []string{"\r\n" + long + "\r\n", "\r\nbare\r\nlf\r\n"} {
		c.expect(fmt.Sprintf("RETR %d", i+1), "+OK")
		var msg strings.Builder
		for {
			line, err := c.r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == ".\r\n" {
				break
			}
			msg.WriteString(line)
		}
		if !strings.HasSuffix(msg.String(), want) {
			t.Errorf("message %d: not kept whole (len %d)", i+1, msg.Len())
		}
	}
	c.expect("QUIT", "+OK")
}
