package pop3

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fuzzSession feeds prefix+input+"\r\nQUIT\r\n" to one session over
// loopback TCP and checks the invariants every input must keep: no panic, a
// well-formed CRLF reply stream that starts with the greeting and ends
// with a status or challenge line, no internal error, and the mailbox
// closed exactly as often as it was opened.
func fuzzSession(t *testing.T, l net.Listener, prefix string, input []byte) {
	drop := newMemDrop()
	drop.add("alice@example.com", msg1, msg2, msg3)
	auth := &memAuth{users: map[string]string{"alice@example.com": "secret"}, throttled: map[netip.Addr]bool{}}
	srv := NewServer(Config{Hostname: "fuzz.example", Logger: slog.New(slog.DiscardHandler)}, auth, drop, nil)
	cc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sess := newSession(srv, sc, netip.MustParseAddr("127.0.0.1"), srv.cfg.Logger, false)
	done := make(chan struct{})
	go func() {
		sess.serve()
		close(done)
	}()
	var out []byte
	readDone := make(chan struct{})
	go func() {
		var rerr error
		out, rerr = io.ReadAll(cc)
		if rerr != nil {
			t.Logf("read: %v", rerr)
		}
		close(readDone)
	}()
	cc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	cc.Write([]byte(prefix))
	cc.Write(input)
	cc.Write([]byte("\r\nQUIT\r\n"))
	cc.(*net.TCPConn).CloseWrite() // a session waiting for more input sees EOF
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	select { // the server closed its end: the reader sees EOF
	case <-readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("reply stream did not end")
	}
	cc.Close()

	if !bytes.HasPrefix(out, []byte("+OK fuzz.example POP3 server ready\r\n")) {
		t.Fatalf("no greeting: %q", out)
	}
	for i, c := range out {
		if c == '\n' && (i == 0 || out[i-1] != '\r') {
			t.Fatalf("bare LF at %d in %q", i, out)
		}
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Fatalf("reply stream ends mid-line: %q", out)
	}
	lines := bytes.Split(out[:len(out)-2], []byte("\r\n"))
	last := lines[len(lines)-1]
	if !bytes.HasPrefix(last, []byte("+OK")) && !bytes.HasPrefix(last, []byte("-ERR")) && !bytes.HasPrefix(last, []byte("+ ")) && !bytes.Equal(last, []byte(".")) {
		t.Fatalf("last line %q is no status line", last)
	}
	if bytes.Contains(out, []byte("internal server error")) {
		t.Fatalf("internal error for protocol input: %q", out)
	}
	if _, _, closes, locked := drop.state("alice@example.com"); locked || closes > 1 {
		t.Fatalf("mailbox locked=%v closes=%d after the session", locked, closes)
	}
}

var fuzzSeeds = []string{
	"CAPA", "USER alice\r\nPASS secret", "USER alice\r\nPASS wrong", "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
	"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==", "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0", "AUTH PLAIN\r\n*", "AUTH",
	"APOP alice 0123", "STLS", "GET / HTTP/1.1", "NOOP\x00", "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0",
	"DELE 1\r\nRSET\r\nDELE 2", "LIST 99999999999", "TOP 3 -1", "RETR\r\nRETR a\r\nRETR 1 2",
	"\n\n\n", "USER \xff\xfe", "quit", "RETR 1\nRETR 2\nRETR 3\n",
}

// FuzzAuthorizationState feeds arbitrary command lines to a fresh session.
func FuzzAuthorizationState(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	l := fuzzListener(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		fuzzSession(t, l, "", input)
	})
}

// FuzzTransactionState feeds arbitrary command lines after a login.
func FuzzTransactionState(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	l := fuzzListener(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		fuzzSession(t, l, "USER alice\r\nPASS secret\r\n", input)
	})
}

func fuzzListener(f *testing.F) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	return l
}
