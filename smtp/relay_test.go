package smtp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRelayDeniedWithoutPermission(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO client", Want: "250 "},
		{Send: "MAIL FROM:<spammer@example.org>", Want: "250"},
		{Send: "RCPT TO:<victim@remote.example>", Want: "554 5.7.1 Relaying denied"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
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
	rc.Run([]step{
		{Send: "EHLO roaming.example.net", Want: "250 "},
		{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<friend@remote.example>", Want: "250 2.0.0"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250 2.0.0"},
	})
	// ... another IP at the same moment does not.
	rc2, _ := e.raw(t, "127.0.0.2", e.mx)
	rc2.Run([]step{
		{Send: "EHLO other", Want: "250 "},
		{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<friend@remote.example>", Want: "554 5.7.1"},
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
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
		{Send: "RCPT TO:<one@remote.example>", Want: "250"},
	})
	e.clock.Advance(15 * time.Minute) // the grant ends exactly now
	rc.Run([]step{
		{Send: "RCPT TO:<two@remote.example>", Want: "554 5.7.1 Relaying denied"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
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
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}, {Send: "MAIL FROM:<x@example.org>", Want: "250"}})
	for _, tr := range tricks {
		got := rc.Cmd("RCPT TO:" + tr.rcpt)
		if !strings.HasPrefix(got, tr.want) {
			t.Errorf("RCPT TO:%s = %q, want %q", tr.rcpt, got, tr.want)
		}
	}
	got := rc.Cmd("DATA")
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
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<nobody@example.com>", Want: "550 5.1.1"},
		{Send: "RCPT TO:<nobody@Example.Com>", Want: "550 5.1.1"},
	})
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
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<bad@spamford.example>", Want: "550 5.7.1 Sender blocked"},
		{Send: "MAIL FROM:<ok@example.org>", Want: "250"},
		{Send: "RCPT TO:<bob@example.com>", Want: "451 4.7.1 Greylisted"}, // 550 ignored for a tempfail
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},                // discarded silently
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatal("discarded recipient got the message")
	}
}

func TestIDNLocalDomain(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@bücher.example>", Want: "553 5.6.7"}, // UTF-8 needs SMTPUTF8
		{Send: "RCPT TO:<alice@XN--BCHER-KVA.example>", Want: "250"},
		{Send: "RSET", Want: "250"},
		{Send: "MAIL FROM:<x@example.org> SMTPUTF8", Want: "250"},
		{Send: "RCPT TO:<alice@Bücher.example.>", Want: "250"},
		{Send: "RCPT TO:<bob@bücher.example>", Want: "550 5.1.1"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 1 {
		t.Fatalf("got %d", n)
	}
	if !e.policy.saw("rcpt 127.0.0.2 alice@xn--bcher-kva.example") {
		t.Error("policy must see the A-label form")
	}
}

func TestDiscardAtConnect(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.policy.discardIPs[netip.MustParseAddr("127.0.0.5")] = true })
	rc, _ := e.raw(t, "127.0.0.5", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250 2.0.0"},
	})
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 0 {
		t.Fatal("a discarded session's message was delivered")
	}
	e.waitLog(t, "smtp message discarded")
}
