package smtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"
)

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds arbitrary bytes to a real listener as one client
// session: the server must never panic, must answer every session with a
// greeting and at least one reply once a line was sent, and must only ever
// write well-formed reply lines.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO a\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"HELO a\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<user%far@example.com>\r\nRCPT TO:<far@remote.example>\r\n",
		"EHLO a\r\nMAIL FROM:<x@example.org> SIZE=99999999\r\n",
		"EHLO a\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.com>\r\nBDAT 5\r\nhelloBDAT 2 LAST\r\n\r\n",
		"EHLO a\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\nMAIL FROM:<alice@example.com>\r\n",
		"EHLO a\r\nAUTH LOGIN\r\nYWxpY2U=\r\n*\r\n",
		"EHLO a\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nnul\x00\r\n.\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nEHLO a\r\n",
		"\r\n\r\n\x00\r\nQUIT\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"EHLO a\nMAIL FROM:<x@example.org>\nRCPT TO:<alice@example.com>\nDATA\nbare\n.\n.\r\n",
		"RSET\r\nNOOP\r\nVRFY x\r\nEXPN x\r\nHELP\r\nSTARTTLS\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := startServer(f, func(e *env) {
		e.cfg.ReadTimeout = 2 * time.Second
		e.cfg.MaxMessageBytes = 4096
		e.cfg.MaxLineLength = 512
		e.cfg.MaxConnsPerIP = 1000
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzSession(t, e.mx, in)
		fuzzSession(t, e.sub, in) // AUTH is offered here (loopback)
	})
}

func fuzzSession(t *testing.T, addr string, in []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(in); err != nil {
		return // the server may close early (too many errors)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n"))
	if len(out) == 0 || !bytes.HasPrefix(lines[0], []byte("220 ")) {
		t.Fatalf("no greeting; got %q", out)
	}
	for _, l := range lines {
		if !replyLine.Match(l) {
			t.Fatalf("malformed reply line %q in %q", l, out)
		}
	}
	if bytes.IndexByte(in, '\n') >= 0 && len(lines) < 2 {
		t.Fatalf("no reply to %q", in)
	}
}

// isReset reports a connection reset, which a server closing with unread
// input legitimately causes.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
