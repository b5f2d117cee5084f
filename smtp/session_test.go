package smtp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

func TestLocalDeliveryFromAnyone(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, greet := e.raw(t, "127.0.0.2", e.mx)
	if !strings.HasPrefix(greet, "220 mail.example.com ESMTP") {
		t.Fatalf("greeting %q", greet)
	}
	rc.Run([]step{
		{Send: "EHLO client.example.org", Want: "250 "},
		{Send: "MAIL FROM:<someone@example.org>", Want: "250 2.0.0"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250 2.0.0"},
		{Send: "RCPT TO:<team@EXAMPLE.com.>", Want: "250 2.0.0"}, // alias, case, trailing dot
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250 2.0.0 OK: queued as "},
		{Send: "QUIT", Want: "221"},
	})
	alice := e.deliverer.messages(t, "alice@example.com")
	bob := e.deliverer.messages(t, "bob@example.com")
	if len(alice) != 1 || len(bob) != 1 {
		t.Fatalf("alice got %d, bob got %d messages; want one each (alias deduplicated)", len(alice), len(bob))
	}
	if !strings.HasPrefix(alice[0], "Received: from client.example.org ([127.0.0.2])\r\n\tby mail.example.com (popgate) with ESMTP id ") {
		t.Errorf("Received header:\n%s", alice[0])
	}
	if strings.Contains(alice[0], "\tfor <") {
		t.Errorf("two recipients must not be named in Received:\n%s", alice[0])
	}
	if !strings.HasSuffix(alice[0], "; Wed, 25 Nov 2026 14:00:00 +0000\r\n"+simpleMsg) {
		t.Errorf("message body or date:\n%q", alice[0])
	}
	if n := len(e.spooler.all()); n != 0 {
		t.Errorf("spooler called %d times for local mail", n)
	}
}

func TestTooManyRecipients(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxRecipients = 2 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<bob@example.com>", Want: "250"},
		{Send: "RCPT TO:<team@example.com>", Want: "452 4.5.3"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
	})
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Send("EHLO c\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n")
	for i, want := range []string{"250 ", "250 2.0.0", "250 2.0.0", "550 5.1.1", "354"} {
		if got := smtptest.LastLine(rc.Reply()); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	rc.Send(simpleMsg + ".\r\nQUIT\r\n")
	if got := rc.Reply(); !strings.HasPrefix(got, "250 2.0.0") {
		t.Fatalf("end of data: %q", got)
	}
	if got := rc.Reply(); !strings.HasPrefix(got, "221") {
		t.Fatalf("quit: %q", got)
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxConnsPerIP = 1; e.cfg.MaxConns = 2 })
	_, g1 := e.raw(t, "127.0.0.2", e.mx)
	_, g2 := e.raw(t, "127.0.0.2", e.mx)
	_, g3 := e.raw(t, "127.0.0.3", e.mx)
	_, g4 := e.raw(t, "127.0.0.4", e.sub)
	if !strings.HasPrefix(g1, "220") || !strings.HasPrefix(g2, "421 4.7.0") || !strings.HasPrefix(g3, "220") || !strings.HasPrefix(g4, "421 4.7.0") {
		t.Fatalf("greetings: %q %q %q %q", g1, g2, g3, g4)
	}
}

func TestSlotFreedAfterClose(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxConnsPerIP = 1 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "QUIT", Want: "221"}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, g := e.raw(t, "127.0.0.2", e.mx)
		if strings.HasPrefix(g, "220") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %q", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxErrorsClosesSession(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxErrors = 3 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<a@example.com>", Want: "550 5.1.1"},
		{Send: "RCPT TO:<b@example.com>", Want: "550 5.1.1"},
		{Send: "RCPT TO:<c@example.com>", Want: "421 4.7.0 Too many errors"},
	})
	if got := rc.Reply(); got != "" {
		t.Fatalf("connection still open: %q", got)
	}
}

func TestShutdownStopsAccepting(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	// An idle session keeps Shutdown waiting until its context ends.
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown with idle session: %v", err)
	}
	if got := rc.Reply(); got != "" {
		t.Fatalf("connection should be closed after the shutdown deadline, got %q", got)
	}
	if c, err := net.DialTimeout("tcp", e.mx, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepting")
	}
	if err := e.srv.ServeMX(nil); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve after shutdown: %v", err)
	}
}

func TestPerIPLimitUsesProxySource(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		e.cfg.MaxConnsPerIP = 1
	})
	greet := func(src string) string {
		c := dialFrom(t, "127.0.0.2", e.mx)
		if _, err := c.Write(proxyHeader(t, 2, src)); err != nil {
			t.Fatal(err)
		}
		return smtptest.NewClient(t, c).Reply()
	}
	g1, g2, g3 := greet("198.51.100.1"), greet("198.51.100.2"), greet("198.51.100.1")
	if !strings.HasPrefix(g1, "220") || !strings.HasPrefix(g2, "220") || !strings.HasPrefix(g3, "421 4.7.0") {
		t.Fatalf("greetings through one proxy: %q %q %q", g1, g2, g3)
	}
}

func TestMaxSessionTime(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxSessionTime = 300 * time.Millisecond })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	start := time.Now()
	for i := 0; ; i++ {
		got := rc.Cmd("NOOP") // busy, never idle for ReadTimeout
		if strings.HasPrefix(got, "421 4.4.2") {
			break
		}
		if !strings.HasPrefix(got, "250") || time.Since(start) > 5*time.Second {
			t.Fatalf("after %v: %q", time.Since(start), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("session ended after %v, before its lifetime", d)
	}
}

func TestHTTPRequestGetsOneReplyAndClose(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Send("GET / HTTP/1.1\r\nHost: mail.example.com\r\n\r\n")
	if got := rc.Reply(); !strings.HasPrefix(got, "421 4.4.0") {
		t.Fatalf("reply %q", got)
	}
	if got := rc.Reply(); got != "" {
		t.Fatalf("connection still open: %q", got)
	}
	e.waitLog(t, "smtp http request refused")
}
