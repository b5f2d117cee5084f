package smtp

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/popgate/popgate/smtp/smtptest"
)

// Wire-level tests for issue 12: raw sockets, since smtplib-like clients
// normalise line endings and would hide what is tested here.

// toAlice opens a transaction for alice@example.com on rc (EHLO done).
func toAlice(rc *rawClient) {
	rc.Run([]step{
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
	})
}

func TestLongTextLinesKeptWhole(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxMessageBytes = 4 << 20 })
	cases := []struct {
		name string
		line int
		bdat bool
	}{
		{"short line (good case)", 78, false},
		{"line at the RFC limit", 998, false},
		{"3000-octet line", 3000, false},
		{"200000-octet line", 200000, false},
		{"3000-octet line by BDAT", 3000, true},
		{"2 MB line (spills to a file)", 2 << 20, false},
	}
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
	var want []string
	for i, tc := range cases {
		// Every octet value but NUL, CR and LF, so byte-exactness shows.
		var b strings.Builder
		for j := 0; j < tc.line; j++ {
			c := byte(j%253) + 1
			if c == '\r' || c == '\n' {
				c = 'x'
			}
			b.WriteByte(c)
		}
		msg := "Subject: long " + strconv.Itoa(i) + "\r\n\r\n" + b.String() + "\r\nend\r\n"
		want = append(want, msg)
		toAlice(rc)
		if tc.bdat {
			rc.Send("BDAT " + strconv.Itoa(len(msg)) + " LAST\r\n" + msg)
		} else {
			rc.Run([]step{{Send: "DATA", Want: "354"}})
			rc.Send(dotStuff(msg) + ".\r\n")
		}
		if got := rc.Reply(); !strings.HasPrefix(got, "250 2.0.0") {
			t.Fatalf("%s: %q", tc.name, smtptest.Trunc(got))
		}
	}
	rc.Run([]step{{Send: "NOOP", Want: "250"}}) // the session goes on
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != len(cases) {
		t.Fatalf("delivered %d messages, want %d", len(msgs), len(cases))
	}
	for i, m := range msgs {
		if !strings.HasSuffix(m, want[i]) {
			t.Errorf("%s: stored message is not byte-exact (len %d, want suffix of len %d)", cases[i].name, len(m), len(want[i]))
		}
	}
}

// dotStuff doubles a leading dot on every line (RFC 5321 §4.5.2).
func dotStuff(s string) string {
	s = strings.ReplaceAll(s, "\r\n.", "\r\n..")
	if strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return s
}

func TestLongTextLineOverSTARTTLS(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}, {Send: "STARTTLS", Want: "220"}})
	rc.StartTLS(e.tlsClient)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
	toAlice(rc)
	line := strings.Repeat("z", 50000)
	rc.Run([]step{
		{Send: "DATA", Want: "354"},
		{Send: "Subject: tls\r\n\r\n" + line + "\r\n.\r\n", Raw: true, Want: "250 2.0.0"},
		// The wire polices commands inside TLS too.
		{Send: "MAIL FROM:<" + strings.Repeat("a", 3000) + "@example.org>", Want: "500 5.5.6"},
		{Send: "MAIL FROM:<x@example.org>\n", Raw: true, Want: "500 5.5.2"},
		{Send: "NOOP", Want: "250"},
	})
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\r\n\r\n"+line+"\r\n") {
		t.Fatalf("message over TLS not kept whole")
	}
}

func TestOverlongCommandLine(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxLineLength = 200 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "NOOP " + strings.Repeat("a", 193), Want: "250"}, // good case: 200 octets with CRLF
		{Send: "NOOP " + strings.Repeat("a", 194), Want: "500 5.5.6"},
		{Send: "MAIL FROM:<" + strings.Repeat("a", 300) + "@example.org>", Want: "500 5.5.6"},
		// Far beyond any buffer: drained, not kept.
		{Send: "MAIL FROM:<" + strings.Repeat("b", 300000) + "@example.org>", Want: "500 5.5.6"},
		// The rest of the line is dropped and the session goes on.
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250 2.0.0"},
	})
	// Pipelined: the over-long line is answered in its place.
	rc.Send("NOOP\r\nNOOP " + strings.Repeat("c", 400) + "\r\nRSET\r\n")
	for i, want := range []string{"250", "500 5.5.6", "250"} {
		if got := rc.Reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined reply %d = %q, want %q", i, got, want)
		}
	}
}

func TestBareNewlineInCommandRefused(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c\r\n", Raw: true, Want: "250 "}, // good case
		{Send: "EHLO c\n", Raw: true, Want: "500 5.5.2"},
		// A bare CR must not split one line into two commands.
		{Send: "MAIL FROM:<x@example.org>\rRCPT TO:<alice@example.com>\r\n", Raw: true, Want: "500 5.5.2"},
		{Send: "NOOP\x00\r\n", Raw: true, Want: "500 5.5.2"},
		// Nothing of the refused lines was executed.
		{Send: "RCPT TO:<alice@example.com>", Want: "502 5.5.1"},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
	})
}

func TestBareNewlineInDataRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		want       string
	}{
		{"CRLF only (good case)", "Subject: ok\r\n\r\nline1\r\nline2\r\n", "250 2.0.0"},
		{"bare LF in body", "Subject: a\r\n\r\nline1\nline2\r\n", "550 5.5.2"},
		{"bare LF end-of-data lookalike", "Subject: a\r\n\r\nx\r\n\n.\nMAIL FROM:<smuggled@example.org>\r\n", "550 5.5.2"},
		{"bare CR header injection", "X-Test: a\rX-Injected: yes\r\n\r\nbody\r\n", "550 5.5.2"},
		{"bare CR mid-line", "Subject: a\r\n\r\nbody\rmore\r\n", "550 5.5.2"},
		{"CR LF across lines", "Subject: a\r\n\r\n\r\r\n\n\r\n", "550 5.5.2"},
		{"NUL", "Subject: b\r\n\r\nnul\x00here\r\n", "554 5.6.0"},
	}
	e := startServer(t, func(e *env) {
		e.policy.relayIPs[netip.MustParseAddr("127.0.0.2")] = true
	})
	good := 0
	for _, tc := range cases {
		for _, bdat := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: " DATA", true: " BDAT"}[bdat], func(t *testing.T) {
				rc, _ := e.raw(t, "127.0.0.2", e.mx)
				rc.Run([]step{
					{Send: "EHLO c", Want: "250 "},
					{Send: "MAIL FROM:<x@example.org>", Want: "250"},
					{Send: "RCPT TO:<alice@example.com>", Want: "250"},
					{Send: "RCPT TO:<far@remote.example>", Want: "250"},
				})
				if bdat {
					rc.Send("BDAT " + strconv.Itoa(len(tc.body)) + " LAST\r\n" + tc.body)
				} else {
					rc.Run([]step{{Send: "DATA", Want: "354"}})
					rc.Send(tc.body + ".\r\n")
				}
				if got := rc.Reply(); !strings.HasPrefix(got, tc.want) {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				if !bdat { // BDAT aborted mid-message closes (see session.Reset)
					rc.Run([]step{{Send: "NOOP", Want: "250"}})
				}
			})
			if strings.HasPrefix(tc.want, "250") {
				good++
			}
		}
	}
	// Only the good messages were stored or relayed.
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != good {
		t.Fatalf("delivered %d messages, want %d", n, good)
	}
	if n := len(e.spooler.all()); n != good {
		t.Fatalf("spooled %d messages, want %d", n, good)
	}
	for _, m := range e.spooler.all() {
		if strings.Contains(m.data, "smuggled") || strings.Contains(m.data, "X-Injected") {
			t.Fatalf("refused content relayed: %q", m.data)
		}
	}
}

func TestBareNewlineNormalizeForTrustedAndAuthenticated(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.BareNewline = BareNewlineNormalize
		e.cfg.TrustedClient = func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.3") }
	})
	body := "X-Test: a\rX-Injected: yes\nSubject: s\n\nline1\nline2\r\r\n.\n..dot\n"
	script := "MAIL FROM:<x@example.org>\nRCPT TO:<alice@example.com>\nDATA\n"

	// A trusted network: commands and text with bare LF work, normalised.
	rc, _ := e.raw(t, "127.0.0.3", e.mx)
	rc.Run([]step{{Send: "EHLO c\n", Raw: true, Want: "250 "}})
	rc.Send(script)
	for _, want := range []string{"250", "250", "354"} {
		if got := rc.Reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("trusted script: %q, want %q", got, want)
		}
	}
	rc.Run([]step{{Send: body + "\r\n.\r\n", Raw: true, Want: "250 2.0.0"}})

	// Anyone else is still refused.
	other, _ := e.raw(t, "127.0.0.2", e.mx)
	other.Run([]step{
		{Send: "EHLO c\n", Raw: true, Want: "500 5.5.2"},
		{Send: "EHLO c", Want: "250 "},
	})
	toAlice(other)
	other.Run([]step{
		{Send: "DATA", Want: "354"},
		{Send: body + "\r\n.\r\n", Raw: true, Want: "550 5.5.2"},
	})

	// Authenticated submission (plaintext AUTH from loopback) is relaxed
	// after AUTH, not before.
	sub, _ := e.raw(t, "127.0.0.2", e.sub)
	sub.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "NOOP\n", Raw: true, Want: "500 5.5.2"},
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "235"},
		{Send: "MAIL FROM:<alice@example.com>\n", Raw: true, Want: "250"},
		{Send: "RCPT TO:<bob@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: body + "\r\n.\r\n", Raw: true, Want: "250 2.0.0"},
	})

	// go-smtp undoes dot-stuffing only after CRLF, so "..dot" after a
	// bare LF keeps both dots.
	want := "X-Test: a X-Injected: yes\r\nSubject: s\r\n\r\nline1\r\nline2 \r\n.\r\n..dot\r\n\r\n"
	for _, mb := range []string{"alice@example.com", "bob@example.com"} {
		msgs := e.deliverer.messages(t, mb)
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages, want 1", mb, len(msgs))
		}
		if !strings.HasSuffix(msgs[0], want) {
			t.Fatalf("%s: normalised message %q, want suffix %q", mb, msgs[0], want)
		}
		if strings.Contains(msgs[0], "\r\nX-Injected") {
			t.Fatalf("%s: a bare CR made a header", mb)
		}
	}
}

func TestSecondMailInTransaction(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<first@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "MAIL FROM:<second@example.org>", Want: "503 5.5.1"},
		// The transaction is untouched.
		{Send: "RCPT TO:<bob@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250 2.0.0"},
		// After the transaction (good case) and after RSET a MAIL is fine.
		{Send: "MAIL FROM:<third@example.org>", Want: "250"},
		{Send: "RSET", Want: "250"},
		{Send: "MAIL FROM:<fourth@example.org>", Want: "250"},
	})
	for _, mb := range []string{"alice@example.com", "bob@example.com"} {
		if msgs := e.deliverer.messages(t, mb); len(msgs) != 1 {
			t.Fatalf("%s: %d messages, want 1", mb, len(msgs))
		}
	}
	if e.policy.saw("from 127.0.0.2 second@example.org") {
		t.Fatal("the second MAIL reached the policy")
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.sub)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "FOOBAR x", Want: "500 5.5.2"},
		{Send: "XYZW", Want: "500 5.5.2"},
		{Send: "AB", Want: "500 5.5.2"},
		{Send: "XCLIENT ADDR=1.2.3.4", Want: "500 5.5.2"},
		{Send: "NOOP", Want: "250"}, // good case; the session goes on
		// AUTH responses are not commands: their "verbs" pass.
		{Send: "AUTH LOGIN", Want: "334"},
		{Send: "YWxpY2VAZXhhbXBsZS5jb20=", Want: "334"},
		{Send: "c2VjcmV0", Want: "235"},
		{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
	})
}

func TestWireErrorsCount(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.cfg.MaxErrors = 3 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "BOGUS", Want: "500 5.5.2"},
		{Send: "NOOP\n", Raw: true, Want: "500 5.5.2"},
		{Send: "BOGUS", Want: "421 4.7.0"},
	})
	if got := rc.Reply(); got != "" {
		t.Fatalf("connection must close after too many errors, got %q", got)
	}
}

func TestNewServerRejectsUnknownBareNewline(t *testing.T) {
	t.Parallel()
	_, err := NewServer(Config{BareNewline: "fix"}, Deps{
		Policy: newTestPolicy(nil), Recipients: &testRecipients{},
		Deliverer: &fileDeliverer{}, Spooler: &fileSpooler{},
	})
	if err == nil || !strings.Contains(err.Error(), "bare newline") {
		t.Fatalf("err = %v", err)
	}
}

// TestSTARTTLSDropsPipelinedPlaintext: what the wire buffered after
// STARTTLS is never executed inside TLS (CVE-2011-0411).
func TestSTARTTLSDropsPipelinedPlaintext(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
	rc.Send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
	if got := rc.Reply(); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS: %q", got)
	}
	rc.StartTLS(e.tlsClient)
	if got := rc.Cmd("EHLO c"); !strings.HasPrefix(got, "250-Hello c") {
		t.Fatalf("first reply inside TLS: %q", got)
	}
	rc.Run([]step{{Send: "RCPT TO:<alice@example.com>", Want: "502 5.5.1"}}) // no MAIL was injected
	if e.policy.saw("from 127.0.0.2 injected@example.org") {
		t.Fatal("pipelined plaintext was executed")
	}
}
