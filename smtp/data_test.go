package smtp

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSizeAdvertisedAndEnforced(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxMessageBytes = 1000 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	ehlo := rc.Cmd("EHLO c")
	for _, ext := range []string{"SIZE 1000", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS"} {
		if !strings.Contains(ehlo, "250-"+ext+"\r\n") && !strings.Contains(ehlo, "250 "+ext+"\r\n") {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("MX must not offer AUTH:\n%s", ehlo)
	}
	big := strings.Repeat("x", 70) + "\r\n"
	rc.Run([]step{
		{Send: "MAIL FROM:<x@example.org> SIZE=1001", Want: "552 5.3.4"},
		{Send: "MAIL FROM:<x@example.org> SIZE=900", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: strings.Repeat(big, 20) + ".\r\n", Raw: true, Want: "552 5.3.4"},
		// The session goes on.
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "BDAT 1200 LAST", Want: "552 5.3.4", Raw: false},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatalf("oversized message delivered %d times", n)
	}
}

func TestBDATChunking(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	part1 := "Subject: chunked\r\n\r\n"
	part2 := ".leading dot kept\r\n"
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "BDAT " + strconv.Itoa(len(part1)) + "\r\n" + part1, Raw: true, Want: "250 2.0.0"},
		{Send: "BDAT " + strconv.Itoa(len(part2)) + " LAST\r\n" + part2, Raw: true, Want: "250 2.0.0 OK: queued as"},
	})
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], part1+part2) {
		t.Fatalf("BDAT message: %q", msgs)
	}
}

func TestInternalErrorsAreNotLeaked(t *testing.T) {
	t.Parallel()
	secret := "disk on fire at /var/lib/secret"
	cases := []struct {
		name  string
		setup func(*env)
		rcpt  string
		at    string // "rcpt" or "data"
	}{
		{"deliverer", func(e *env) { e.deliverer.err = errors.New(secret) }, "alice@example.com", "data"},
		{"spooler", func(e *env) {
			e.spooler.err = errors.New(secret)
			e.policy.relayIPs[netip.MustParseAddr("127.0.0.2")] = true
		}, "x@remote.example", "data"},
		{"resolve", func(e *env) { e.rcpts.err = errors.New(secret) }, "alice@example.com", "rcpt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, tc.setup)
			rc, _ := e.raw(t, "127.0.0.2", e.mx)
			rc.Run([]step{{Send: "EHLO c", Want: "250 "}, {Send: "MAIL FROM:<x@example.org>", Want: "250"}})
			got := rc.Cmd("RCPT TO:<" + tc.rcpt + ">")
			if tc.at == "data" {
				if !strings.HasPrefix(got, "250") {
					t.Fatalf("rcpt: %q", got)
				}
				rc.Run([]step{{Send: "DATA", Want: "354"}})
				rc.Send(simpleMsg + ".\r\n")
				got = rc.Reply()
			}
			if got != "451 4.3.0 Internal error, try again later\r\n" {
				t.Fatalf("reply %q", got)
			}
			if !strings.Contains(e.waitLog(t, "smtp internal error"), secret) {
				t.Error("the cause must be in the log")
			}
		})
	}
}

func TestLocalAndRemoteInOneMessage(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.policy.relayIPs[netip.MustParseAddr("127.0.0.2")] = true
		e.spooler.release = make(chan struct{})
		e.spooler.entered = make(chan struct{}, 1)
		e.deliverer.call = make(chan struct{}, 1)
	})
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<bob@example.com>", Want: "250"},
		{Send: "RCPT TO:<far@remote.example>", Want: "250"},
		{Send: "RCPT TO:<FAR@remote.example.>", Want: "250"}, // different local part: kept
		{Send: "RCPT TO:<far@Remote.Example>", Want: "250"},  // same address: once
		{Send: "DATA", Want: "354"},
	})
	rc.Send(simpleMsg + ".\r\n")
	<-e.deliverer.call
	<-e.spooler.entered
	// Local delivery is done, the spool is still working: no reply yet.
	_ = rc.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := rc.R.ReadByte(); err == nil {
		t.Fatalf("reply byte %q before the spool returned", b)
	}
	close(e.spooler.release)
	if got := rc.Reply(); !strings.HasPrefix(got, "250 2.0.0") {
		t.Fatalf("reply %q", got)
	}
	if n := len(e.deliverer.messages(t, "bob@example.com")); n != 1 {
		t.Fatalf("bob got %d", n)
	}
	q := e.spooler.all()
	if len(q) != 1 || strings.Join(q[0].to, ",") != "far@remote.example,FAR@remote.example" {
		t.Fatalf("spooled %+v", q)
	}
}

func TestLargeMessageSpillsToTempFile(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	e := startServer(t, func(e *env) {
		e.cfg.MemoryBufferBytes = 256
		e.cfg.TempDir = tmp
		e.policy.relayIPs[netip.MustParseAddr("127.0.0.2")] = true
	})
	body := strings.Repeat("spill line of text\r\n", 200)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<far@remote.example>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: "Subject: big\r\n\r\n" + body + ".\r\n", Raw: true, Want: "250"},
	})
	msgs := e.deliverer.messages(t, "alice@example.com")
	q := e.spooler.all()
	if len(msgs) != 1 || len(q) != 1 || !strings.HasSuffix(msgs[0], "Subject: big\r\n\r\n"+body) || !strings.HasSuffix(q[0].data, body) {
		t.Fatalf("spilled message corrupted: %d local, %d queued", len(msgs), len(q))
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestTempDirFailureIsInternal(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.MemoryBufferBytes = 16
		e.cfg.TempDir = "/nonexistent/popgate-test"
	})
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "451 4.3.0 Internal error, try again later"},
	})
	if !strings.Contains(e.waitLog(t, "smtp internal error"), "/nonexistent/popgate-test") {
		t.Error("cause missing from the log")
	}
}

func TestClientVanishingInDataIsNotInternal(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
	})
	rc.Send("Subject: cut\r\n\r\nhalf a mess")
	rc.Conn.Close()
	e.waitLog(t, "smtp message read failed")
	if len(e.logLines("smtp internal error")) != 0 {
		t.Fatal("a vanished client was logged as an internal error")
	}
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatal("partial message delivered")
	}
}

// TestBDATAbortedByRSET: RSET in the middle of a BDAT message aborts it,
// answers, and closes the connection (see session.Reset; run with -race).

func TestBDATAbortedByRSET(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
	})
	rc.Send("BDAT 5\r\nhelloRSET\r\nMAIL FROM:<y@example.org>\r\nRCPT TO:<bob@example.com>\r\nBDAT 3 LAST\r\nabc")
	for i, want := range []string{"250 2.0.0", "250 2.0.0"} {
		if got := rc.Reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	if got := rc.Reply(); got != "" {
		t.Fatalf("connection must close after an aborted BDAT, got %q", got)
	}
	e.waitLog(t, "smtp bdat aborted")
	if n := len(e.deliverer.messages(t, "alice@example.com")) + len(e.deliverer.messages(t, "bob@example.com")); n != 0 {
		t.Fatalf("aborted BDAT messages delivered: %d", n)
	}
}
