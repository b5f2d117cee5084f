package smtp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

func startRemoteAuth(t *testing.T, setup func(*env)) *env {
	return startServer(t, func(e *env) {
		e.plaintextAuthOK = func(netip.Addr) bool { return false }
		if setup != nil {
			setup(e)
		}
	})
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func TestSubmissionAuthOnlyAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	e := startRemoteAuth(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.sub)
	ehlo := rc.Cmd("EHLO c")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("plaintext EHLO must offer STARTTLS and no AUTH:\n%s", ehlo)
	}
	rc.Run([]step{
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "538 5.7.11"},
		{Send: "STARTTLS", Want: "220"},
	})
	rc.StartTLS(e.tlsClient)
	ehlo = rc.Cmd("EHLO c")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO after TLS:\n%s", ehlo)
	}
	rc.Run([]step{
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "wrong"), Want: "535 5.7.8"},
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "235 2.0.0"},
		{Send: "MAIL FROM:<a.smith@example.com>", Want: "250"},
		{Send: "RCPT TO:<friend@remote.example>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
	})
	q := e.spooler.all()
	if len(q) != 1 || !strings.Contains(q[0].data, " with ESMTPSA id ") {
		t.Fatalf("spooled %+v", q)
	}
}

func TestPlaintextAuthFromLoopback(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil) // default rule: loopback may AUTH without TLS
	rc, _ := e.raw(t, "127.0.0.2", e.sub)
	if ehlo := rc.Cmd("EHLO c"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("loopback EHLO:\n%s", ehlo)
	}
	rc.Run([]step{
		{Send: "AUTH LOGIN", Want: "334 " + base64.StdEncoding.EncodeToString([]byte("Username:"))},
		{Send: base64.StdEncoding.EncodeToString([]byte("alice@example.com")), Want: "334 " + base64.StdEncoding.EncodeToString([]byte("Password:"))},
		{Send: base64.StdEncoding.EncodeToString([]byte("secret")), Want: "235"},
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "503"},
	})
	// PLAIN without an initial response: an empty challenge first.
	rc2, _ := e.raw(t, "127.0.0.3", e.sub)
	rc2.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "AUTH PLAIN", Want: "334"},
		{Send: plainIR("alice@example.com", "secret"), Want: "235 2.0.0"},
	})
}

func TestAuthReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(*env)
		cmd   string
		want  string
	}{
		{"bad password", nil, "AUTH PLAIN " + plainIR("alice@example.com", "nope"), "535 5.7.8"},
		{"unknown user", nil, "AUTH PLAIN " + plainIR("mallory@example.com", "x"), "535 5.7.8"},
		{"throttled", func(e *env) { e.auth.throttle = true }, "AUTH PLAIN " + plainIR("alice@example.com", "secret"), "454 4.7.0 Too many"},
		{"internal", func(e *env) { e.auth.err = errors.New("ldap exploded") }, "AUTH PLAIN " + plainIR("alice@example.com", "secret"), "454 4.7.0 Temporary authentication failure"},
		{"authzid", nil, "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("bob@example.com\x00alice@example.com\x00secret")), "535 5.7.8"},
		{"malformed", nil, "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("justone")), "501 5.5.2"},
		{"garbage base64", nil, "AUTH PLAIN !!!", "454 4.7.0"},
		{"mechanism", nil, "AUTH CRAM-MD5", "504 5.7.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, tc.setup)
			rc, _ := e.raw(t, "127.0.0.2", e.sub)
			rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
			got := rc.Cmd(tc.cmd)
			if !strings.HasPrefix(got, tc.want) || strings.Contains(got, "ldap") {
				t.Fatalf("%s: %q, want %q", tc.cmd, got, tc.want)
			}
			// Unauthenticated, the session may not relay.
			rc.Run([]step{
				{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
				{Send: "RCPT TO:<x@remote.example>", Want: "554 5.7.1"},
			})
		})
	}
}

func TestAuthNotOnMX(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "502 5.7.0"},
	})
}

func TestSenderMustBelongToAuthUser(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.sub)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "235"},
		{Send: "MAIL FROM:<bob@example.com>", Want: "553 5.7.1"},
		{Send: "MAIL FROM:<ceo@remote.example>", Want: "553 5.7.1"},
		{Send: "MAIL FROM:<alice@EXAMPLE.com>", Want: "250"},
		{Send: "RSET", Want: "250"},
		{Send: "MAIL FROM:<>", Want: "250"}, // MDNs use the null sender
	})
	e.waitLog(t, "smtp sender denied")
}

// TestSenderCheckModes: smtp.sender_check widens what an authenticated
// user may put in MAIL FROM; bad senders are refused with 553 and the
// session goes on to a good one.
func TestSenderCheckModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		check SenderCheck
		from  string
		want  string
	}{
		{SenderCheckOwner, "alice@example.com", "250"},
		{SenderCheckOwner, "a.smith@example.com", "250"}, // alias resolving to alice
		{SenderCheckOwner, "bob@example.com", "553 5.7.1"},
		{SenderCheckOwner, "<>", "250"},
		{SenderCheckLocalDomains, "bob@example.com", "250"},
		{SenderCheckLocalDomains, "anyone@XN--BCHER-KVA.example", "250"},
		{SenderCheckLocalDomains, "ceo@remote.example", "553 5.7.1"},
		{SenderCheckLocalDomains, "<>", "250"},
		{SenderCheckAny, "ceo@remote.example", "250"},
		{SenderCheckAny, "bob@example.com", "250"},
	}
	for _, tc := range cases {
		t.Run(string(tc.check)+" "+tc.from, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, func(e *env) { e.cfg.SenderCheck = tc.check })
			rc, _ := e.raw(t, "127.0.0.2", e.sub)
			from := tc.from
			if from != "<>" {
				from = "<" + from + ">"
			}
			rc.Run([]step{
				{Send: "EHLO c", Want: "250 "},
				{Send: "AUTH PLAIN " + plainIR("alice@example.com", "secret"), Want: "235"},
				{Send: "MAIL FROM:" + from, Want: tc.want},
				{Send: "RSET", Want: "250"},
				{Send: "MAIL FROM:<alice@example.com>", Want: "250"},
				{Send: "RCPT TO:<friend@remote.example>", Want: "250"},
			})
		})
	}
	// Without AUTH the sender is the Policy's business, not this check.
	e := startServer(t, func(e *env) { e.cfg.SenderCheck = SenderCheckOwner })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}, {Send: "MAIL FROM:<ceo@remote.example>", Want: "250"}})
}

func TestParseSenderCheck(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]SenderCheck{"": SenderCheckOwner, "owner": SenderCheckOwner, "Local-Domains": SenderCheckLocalDomains, "any": SenderCheckAny} {
		if got, err := ParseSenderCheck(in); err != nil || got != want {
			t.Errorf("ParseSenderCheck(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"none", "owner ", "local_domains"} {
		if _, err := ParseSenderCheck(bad); err == nil {
			t.Errorf("ParseSenderCheck(%q) accepted", bad)
		}
	}
	if _, err := NewServer(Config{SenderCheck: "bogus"}, Deps{Policy: nopDeps{}, Recipients: nopDeps{}, Deliverer: nopDeps{}, Spooler: nopDeps{}}); err == nil {
		t.Error("NewServer accepted an unknown sender check")
	}
}

// TestImplicitTLS uses go-smtp's client over a TLS connection dialled from
// a chosen address.
func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	e := startRemoteAuth(t, nil)
	conn := tls.Client(dialFrom(t, "127.0.0.3", e.subs), e.tlsClient)
	c := gosmtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("laptop.example.net"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("not TLS")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.com", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@example.com", []string{"bob@example.com", "far@remote.example"}, strings.NewReader(simpleMsg)); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.deliverer.messages(t, "bob@example.com")); n != 1 {
		t.Fatalf("bob got %d", n)
	}
	if q := e.spooler.all(); len(q) != 1 || !strings.HasPrefix(q[0].data, "Received: from laptop.example.net ([127.0.0.3])\r\n\tby mail.example.com (popgate) with ESMTPSA id ") {
		t.Fatalf("spooled %+v", q)
	}
}

func TestSTARTTLSWithGoSMTPClientOnMX(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	c, err := gosmtp.NewClientStartTLS(dialFrom(t, "127.0.0.2", e.mx), e.tlsClient)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("x@example.org", []string{"alice@example.com"}, strings.NewReader(simpleMsg)); err != nil {
		t.Fatal(err)
	}
	err = c.SendMail("x@example.org", []string{"far@remote.example"}, strings.NewReader(simpleMsg))
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("relay over TLS without permission: %v", err)
	}
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 1 || !strings.Contains(msgs[0], " with ESMTPS id ") {
		t.Fatalf("msgs %q", msgs)
	}
}
