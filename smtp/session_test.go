package smtp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLocalDeliveryFromAnyone(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, greet := e.raw(t, "127.0.0.2", e.mx)
	if !strings.HasPrefix(greet, "220 mail.example.com ESMTP") {
		t.Fatalf("greeting %q", greet)
	}
	rc.run([]step{
		{send: "EHLO client.example.org", want: "250 "},
		{send: "MAIL FROM:<someone@example.org>", want: "250 2.0.0"},
		{send: "RCPT TO:<alice@example.com>", want: "250 2.0.0"},
		{send: "RCPT TO:<team@EXAMPLE.com.>", want: "250 2.0.0"}, // alias, case, trailing dot
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250 2.0.0 OK: queued as "},
		{send: "QUIT", want: "221"},
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

func TestRelayDeniedWithoutPermission(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO client", want: "250 "},
		{send: "MAIL FROM:<spammer@example.org>", want: "250"},
		{send: "RCPT TO:<victim@remote.example>", want: "554 5.7.1 Relaying denied"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
	if n := len(e.spooler.all()); n != 0 {
		t.Fatalf("spooled %d messages; relay must be denied", n)
	}
	e.waitLog(t, "smtp relay denied")
	l := e.logLines("smtp relay denied")
	if len(l) != 1 || !strings.Contains(l[0], "ip=127.0.0.2") || !strings.Contains(l[0], "from=spammer@example.org") ||
		!strings.Contains(l[0], "rcpt=victim@remote.example") || !strings.Contains(l[0], `reason="no relay permission"`) {
		t.Errorf("relay denied log: %q", l)
	}
}

func TestRelayAllowedByPolicyWithGrantComment(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	grantAt := testNow.Add(-2 * time.Minute)
	e.policy.grants[netip.MustParseAddr("127.0.0.3")] = grant{user: "alice@example.com", at: grantAt, expires: testNow.Add(13 * time.Minute)}

	// The granted IP relays ...
	rc, _ := e.raw(t, "127.0.0.3", e.mx)
	rc.run([]step{
		{send: "EHLO roaming.example.net", want: "250 "},
		{send: "MAIL FROM:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<friend@remote.example>", want: "250 2.0.0"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250 2.0.0"},
	})
	// ... another IP at the same moment does not.
	rc2, _ := e.raw(t, "127.0.0.2", e.mx)
	rc2.run([]step{
		{send: "EHLO other", want: "250 "},
		{send: "MAIL FROM:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<friend@remote.example>", want: "554 5.7.1"},
	})
	q := e.spooler.all()
	if len(q) != 1 {
		t.Fatalf("spooled %d, want 1", len(q))
	}
	if q[0].from != "alice@example.com" || len(q[0].to) != 1 || q[0].to[0] != "friend@remote.example" {
		t.Errorf("envelope %+v", q[0])
	}
	wantHdr := "Received: from roaming.example.net ([127.0.0.3])\r\n" +
		"\t(relay granted by POP3 login of alice@example.com at 2026-11-25T13:58:00Z)\r\n" +
		"\tby mail.example.com (popgate) with ESMTP id "
	if !strings.HasPrefix(q[0].data, wantHdr) {
		t.Fatalf("Received header:\n%s\nwant prefix:\n%s", q[0].data, wantHdr)
	}
	if !strings.Contains(q[0].data, "\r\n\tfor <friend@remote.example>; Wed, 25 Nov 2026 14:00:00 +0000\r\n") {
		t.Errorf("for clause/date missing:\n%s", q[0].data)
	}
}

func TestGrantExpiringMidSessionDeniesNextRcpt(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	e.policy.grants[netip.MustParseAddr("127.0.0.3")] = grant{user: "alice@example.com", at: testNow, expires: testNow.Add(15 * time.Minute)}
	rc, _ := e.raw(t, "127.0.0.3", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<one@remote.example>", want: "250"},
	})
	e.clock.Advance(15 * time.Minute) // the grant ends exactly now
	rc.run([]step{
		{send: "RCPT TO:<two@remote.example>", want: "554 5.7.1 Relaying denied"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
	q := e.spooler.all()
	if len(q) != 1 || strings.Join(q[0].to, ",") != "one@remote.example" {
		t.Fatalf("spooled %+v; only the recipient accepted before expiry may be queued", q)
	}
}

// TestRoutingTricksNeverRelay tries every routing trick from a client
// without relay permission: none may be accepted for relay.
func TestRoutingTricksNeverRelay(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	tricks := []struct {
		rcpt string
		want string
	}{
		{"<user%remote.example@example.com>", "553 5.7.1"},
		{"<alice%remote.example@example.com>", "553 5.7.1"},
		{"<remote.example!user@example.com>", "553 5.7.1"},
		{`<"user@remote.example"@example.com>`, "553 5.7.1"},
		{`<"user%remote.example"@example.com>`, "553 5.7.1"},
		{"<user@remote.example@example.com>", "553 5.7.1"},
		{"<@example.com:user@remote.example>", "554 5.7.1 Relaying denied"},              // route stripped, final address is remote
		{"<@example.com,@example.com:user@remote.example>", "554 5.7.1 Relaying denied"}, // multi-hop route
		{"<user@[127.0.0.1]>", "553 5.7.1"},
		{"<user@[IPv6:::1]>", "553 5.7.1"},
		{"<user@127.0.0.1>", "553 5.1.3"},
		{"<user@remote.example.>", "554 5.7.1 Relaying denied"},
		{"<user@REMOTE.Example>", "554 5.7.1 Relaying denied"},
		{"<user@example.com.remote.example>", "554 5.7.1 Relaying denied"},
		{"<user@xn--zz.example>", "553 5.1.3"},
		{`<"a b"@example.com>`, "553 5.1.3"},
		{"<user@exa_mple.com>", "553 5.1.3"},
		{"<user@>", "501"},
	}
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{{send: "EHLO c", want: "250 "}, {send: "MAIL FROM:<x@example.org>", want: "250"}})
	for _, tr := range tricks {
		got := rc.cmd("RCPT TO:" + tr.rcpt)
		if !strings.HasPrefix(got, tr.want) {
			t.Errorf("RCPT TO:%s = %q, want %q", tr.rcpt, got, tr.want)
		}
	}
	got := rc.cmd("DATA")
	if !strings.HasPrefix(got, "502") && !strings.HasPrefix(got, "554") {
		t.Fatalf("DATA after only refused recipients: %q", got)
	}
	if n := len(e.spooler.all()); n != 0 {
		t.Fatalf("spooled %d messages", n)
	}
	if e.policy.saw("rcpt 127.0.0.2 user@remote.example@example.com") {
		t.Error("policy saw a routing trick; it must be refused before the policy")
	}
	if !e.policy.saw("rcpt 127.0.0.2 user@remote.example") {
		t.Error("policy did not see the final address of a source route")
	}
}

func TestUnknownLocalUser(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<nobody@example.com>", want: "550 5.1.1"},
		{send: "RCPT TO:<nobody@Example.Com>", want: "550 5.1.1"},
	})
}

func TestSizeAdvertisedAndEnforced(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxMessageBytes = 1000 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	ehlo := rc.cmd("EHLO c")
	for _, ext := range []string{"SIZE 1000", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS"} {
		if !strings.Contains(ehlo, "250-"+ext+"\r\n") && !strings.Contains(ehlo, "250 "+ext+"\r\n") {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("MX must not offer AUTH:\n%s", ehlo)
	}
	big := strings.Repeat("x", 70) + "\r\n"
	rc.run([]step{
		{send: "MAIL FROM:<x@example.org> SIZE=1001", want: "552 5.3.4"},
		{send: "MAIL FROM:<x@example.org> SIZE=900", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		{send: strings.Repeat(big, 20) + ".\r\n", raw: true, want: "552 5.3.4"},
		// The session goes on.
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "BDAT 1200 LAST", want: "552 5.3.4", raw: false},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatalf("oversized message delivered %d times", n)
	}
}

func TestTooManyRecipients(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxRecipients = 2 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<bob@example.com>", want: "250"},
		{send: "RCPT TO:<team@example.com>", want: "452 4.5.3"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
}

func TestOverlongCommandLine(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxLineLength = 200 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{{send: "EHLO c", want: "250 "}})
	got := rc.cmd("MAIL FROM:<" + strings.Repeat("a", 300) + "@example.org>")
	if !strings.HasPrefix(got, "500 5.4.0") {
		t.Fatalf("over-long command: %q", got)
	}
	if got := rc.read(); got != "" {
		t.Fatalf("connection should be closed, got %q", got)
	}
}

func TestOverlongDataLine(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxLineLength = 200 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
	})
	rc.send("Subject: long\r\n\r\n" + strings.Repeat("y", 500) + "\r\n.\r\n")
	if got := rc.read(); !strings.HasPrefix(got, "500 5.4.0") {
		t.Fatalf("over-long data line: %q", got)
	}
	if got := rc.read(); got != "" {
		t.Fatalf("connection must close after an over-long data line, got %q", got)
	}
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatal("message with over-long line delivered")
	}
}

func TestBareLFIsNormalisedAndNULRefused(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		// bare LF, bare CR, and a bare-LF "end of data" lookalike that must
		// not end the message (SMTP smuggling).
		{send: "Subject: a\n\nline1\nline2\rline3\r\n\n.\nMAIL FROM:<smuggled@example.org>\r\n.\r\n", raw: true, want: "250 2.0.0"},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		{send: "Subject: b\r\n\r\nnul\x00here\r\n.\r\n", raw: true, want: "554 5.6.0"},
		// the session stays usable
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 2 {
		t.Fatalf("delivered %d messages, want 2", len(msgs))
	}
	_, body, _ := strings.Cut(msgs[0], "Subject: a")
	want := "\r\n\r\nline1\r\nline2\r\nline3\r\n\r\n.\r\nMAIL FROM:<smuggled@example.org>\r\n"
	if body != want {
		t.Fatalf("normalised body %q, want %q", body, want)
	}
}

func TestBDATChunking(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	part1 := "Subject: chunked\r\n\r\n"
	part2 := ".leading dot kept\r\n"
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "BDAT " + strconv.Itoa(len(part1)) + "\r\n" + part1, raw: true, want: "250 2.0.0"},
		{send: "BDAT " + strconv.Itoa(len(part2)) + " LAST\r\n" + part2, raw: true, want: "250 2.0.0 OK: queued as"},
	})
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], part1+part2) {
		t.Fatalf("BDAT message: %q", msgs)
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.send("EHLO c\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n")
	for i, want := range []string{"250 ", "250 2.0.0", "250 2.0.0", "550 5.1.1", "354"} {
		if got := lastLine(rc.read()); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	rc.send(simpleMsg + ".\r\nQUIT\r\n")
	if got := rc.read(); !strings.HasPrefix(got, "250 2.0.0") {
		t.Fatalf("end of data: %q", got)
	}
	if got := rc.read(); !strings.HasPrefix(got, "221") {
		t.Fatalf("quit: %q", got)
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
			rc.run([]step{{send: "EHLO c", want: "250 "}, {send: "MAIL FROM:<x@example.org>", want: "250"}})
			got := rc.cmd("RCPT TO:<" + tc.rcpt + ">")
			if tc.at == "data" {
				if !strings.HasPrefix(got, "250") {
					t.Fatalf("rcpt: %q", got)
				}
				rc.run([]step{{send: "DATA", want: "354"}})
				rc.send(simpleMsg + ".\r\n")
				got = rc.read()
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
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<bob@example.com>", want: "250"},
		{send: "RCPT TO:<far@remote.example>", want: "250"},
		{send: "RCPT TO:<FAR@remote.example.>", want: "250"}, // different local part: kept
		{send: "RCPT TO:<far@Remote.Example>", want: "250"},  // same address: once
		{send: "DATA", want: "354"},
	})
	rc.send(simpleMsg + ".\r\n")
	<-e.deliverer.call
	<-e.spooler.entered
	// Local delivery is done, the spool is still working: no reply yet.
	_ = rc.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := rc.r.ReadByte(); err == nil {
		t.Fatalf("reply byte %q before the spool returned", b)
	}
	close(e.spooler.release)
	if got := rc.read(); !strings.HasPrefix(got, "250 2.0.0") {
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
	rc.run([]step{{send: "QUIT", want: "221"}})
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
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<a@example.com>", want: "550 5.1.1"},
		{send: "RCPT TO:<b@example.com>", want: "550 5.1.1"},
		{send: "RCPT TO:<c@example.com>", want: "421 4.7.0 Too many errors"},
	})
	if got := rc.read(); got != "" {
		t.Fatalf("connection still open: %q", got)
	}
}

func TestPolicyRejects(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.policy.rejectConnect[netip.MustParseAddr("127.0.0.4")] = true
		e.policy.rejectFrom["bad@spamford.example"] = true
		e.policy.rejectRcpt["bob@example.com"] = Verdict{Action: ActionTempFail, Code: 550, Text: "Greylisted"}
		e.policy.rejectRcpt["alice@example.com"] = Verdict{Action: ActionDiscard}
	})
	_, g := e.raw(t, "127.0.0.4", e.mx)
	if g != "554 5.7.1 Go away\r\n" {
		t.Fatalf("connect reject %q", g)
	}
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<bad@spamford.example>", want: "550 5.7.1 Sender blocked"},
		{send: "MAIL FROM:<ok@example.org>", want: "250"},
		{send: "RCPT TO:<bob@example.com>", want: "451 4.7.1 Greylisted"}, // 550 ignored for a tempfail
		{send: "RCPT TO:<alice@example.com>", want: "250"},                // discarded silently
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatal("discarded recipient got the message")
	}
}

func TestIDNLocalDomain(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@bücher.example>", want: "553 5.6.7"}, // UTF-8 needs SMTPUTF8
		{send: "RCPT TO:<alice@XN--BCHER-KVA.example>", want: "250"},
		{send: "MAIL FROM:<x@example.org> SMTPUTF8", want: "250"},
		{send: "RCPT TO:<alice@Bücher.example.>", want: "250"},
		{send: "RCPT TO:<bob@bücher.example>", want: "550 5.1.1"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "250"},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 1 {
		t.Fatalf("got %d", n)
	}
	if !e.policy.saw("rcpt 127.0.0.2 alice@xn--bcher-kva.example") {
		t.Error("policy must see the A-label form")
	}
}

func TestShutdownStopsAccepting(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{{send: "EHLO c", want: "250 "}})
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
	if got := rc.read(); got != "" {
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
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "RCPT TO:<far@remote.example>", want: "250"},
		{send: "DATA", want: "354"},
		{send: "Subject: big\r\n\r\n" + body + ".\r\n", raw: true, want: "250"},
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
		return newRaw(t, c).read()
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
		got := rc.cmd("NOOP") // busy, never idle for ReadTimeout
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

func TestTempDirFailureIsInternal(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.MemoryBufferBytes = 16
		e.cfg.TempDir = "/nonexistent/popgate-test"
	})
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
		{send: simpleMsg + ".\r\n", raw: true, want: "451 4.3.0 Internal error, try again later"},
	})
	if !strings.Contains(e.waitLog(t, "smtp internal error"), "/nonexistent/popgate-test") {
		t.Error("cause missing from the log")
	}
}

func TestClientVanishingInDataIsNotInternal(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
		{send: "DATA", want: "354"},
	})
	rc.send("Subject: cut\r\n\r\nhalf a mess")
	rc.c.Close()
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
	rc.run([]step{
		{send: "EHLO c", want: "250 "},
		{send: "MAIL FROM:<x@example.org>", want: "250"},
		{send: "RCPT TO:<alice@example.com>", want: "250"},
	})
	rc.send("BDAT 5\r\nhelloRSET\r\nMAIL FROM:<y@example.org>\r\nRCPT TO:<bob@example.com>\r\nBDAT 3 LAST\r\nabc")
	for i, want := range []string{"250 2.0.0", "250 2.0.0"} {
		if got := rc.read(); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	if got := rc.read(); got != "" {
		t.Fatalf("connection must close after an aborted BDAT, got %q", got)
	}
	e.waitLog(t, "smtp bdat aborted")
	if n := len(e.deliverer.messages(t, "alice@example.com")) + len(e.deliverer.messages(t, "bob@example.com")); n != 0 {
		t.Fatalf("aborted BDAT messages delivered: %d", n)
	}
}
