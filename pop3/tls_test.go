package pop3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/pop3/pop3test"
)

var capaBeforeTLSRefused = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION popgate", "STLS"}
var capaBeforeTLSAllowed = append(append([]string{}, capaBeforeTLSRefused...), "USER", "SASL PLAIN LOGIN")

// remoteOnly makes every client count as non-local, so that the plaintext
// refusal can be tested over loopback.
func remoteOnly(c *Config) { c.IsLocal = func(netip.Addr) bool { return false } }

// TestPlaintextRefusedThenSTLS: before TLS, a non-local client sees STLS
// but no USER/SASL in CAPA and every login command gets [AUTH]; after
// STLS, CAPA lists USER and SASL and no STLS, and login works.
func TestPlaintextRefusedThenSTLS(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t)
	e := newEnv(t, func(c *Config) { c.TLS = cert; remoteOnly(c) })
	c := e.dial(t)
	run(c, []step{
		{"", "+OK", nil},
		{"CAPA", "+OK", capaBeforeTLSRefused},
		{"USER alice", "-ERR [AUTH] plaintext authentication refused, use STLS first", nil},
		{"PASS secret", "-ERR [AUTH] plaintext", nil},
		{"AUTH PLAIN", "-ERR [AUTH] plaintext", nil},
		{"AUTH", "-ERR [AUTH] plaintext", nil},
		{"STLS x", "-ERR wrong number of arguments", nil},
		{"STLS", "+OK begin TLS negotiation", nil},
	})
	c.StartTLS(&tls.Config{InsecureSkipVerify: true})
	run(c, []step{
		{"CAPA", "+OK", capaAuthPlain},
		{"STLS", "-ERR command not permitted when TLS active", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "+OK maildrop locked", nil},
		{"RETR 1", "+OK", msg1Lines},
		{"QUIT", "+OK", nil},
	})
	if !strings.Contains(e.logs.String(), "tls=true") {
		t.Error("login log lacks tls=true")
	}
}

// TestAllowPlaintextAuth: the option (or a local client) lets USER work
// before TLS, and CAPA says so while still offering STLS.
func TestAllowPlaintextAuth(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t)
	e := newEnv(t, func(c *Config) { c.TLS = cert; remoteOnly(c); c.AllowPlaintextAuth = true })
	run(e.dial(t), []step{{"", "+OK", nil}, {"CAPA", "+OK", capaBeforeTLSAllowed}, {"USER alice", "+OK", nil}, {"PASS secret", "+OK", nil}})
	f := newEnv(t, func(c *Config) { c.TLS = cert }) // default: loopback is local
	run(f.dial(t), []step{{"", "+OK", nil}, {"CAPA", "+OK", capaBeforeTLSAllowed}, {"USER alice", "+OK", nil}, {"PASS secret", "+OK", nil}})
}

// TestSTLSDiscardsPipelinedPlaintext: commands sent with STLS in one write
// are dropped, and the USER given before TLS is forgotten.
func TestSTLSDiscardsPipelinedPlaintext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.TLS = selfSigned(t) })
	c := e.dial(t)
	run(c, []step{{"", "+OK", nil}, {"USER alice", "+OK", nil}})
	if _, err := c.Conn.Write([]byte("STLS\r\nCAPA\r\nNOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	run(c, []step{{"", "+OK begin TLS", nil}})
	c.StartTLS(&tls.Config{InsecureSkipVerify: true})
	run(c, []step{
		{"PASS secret", "-ERR USER first", nil},
		{"USER alice", "+OK", nil},
		{"PASS secret", "+OK maildrop locked", nil},
	})
}

// TestSTLSFailedHandshakeCloses: garbage instead of a ClientHello closes.
func TestSTLSFailedHandshakeCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.TLS = selfSigned(t) })
	c := e.dial(t)
	run(c, []step{{"", "+OK", nil}, {"STLS", "+OK", nil}})
	c.Send("USER alice")
	// The server may answer with a TLS alert record; it must not answer
	// in plaintext and must close.
	rest := make([]byte, 512)
	for {
		n, err := c.R.Read(rest)
		if n > 0 && strings.Contains(string(rest[:n]), "+OK") {
			t.Fatalf("plaintext reply after failed handshake: %q", rest[:n])
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server kept the connection open after a failed handshake")
			}
			break
		}
	}
}

// TestImplicitTLS: ServeTLS speaks TLS from the first byte, offers no
// STLS and accepts logins from any address.
func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.TLS = selfSigned(t); remoteOnly(c) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.ServeTLS(l) }()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	c := pop3test.NewClient(t, conn)
	run(c, []step{
		{"", "+OK pop.example.com POP3 server ready", nil},
		{"CAPA", "+OK", capaAuthPlain},
		{"STLS", "-ERR command not permitted when TLS active", nil},
		{"AUTH PLAIN " + b64("\x00alice\x00secret"), "+OK maildrop locked", nil},
		{"TOP 1 1", "+OK", []string{"From: bob@example.com", "Subject: one", "", "Hello"}},
		{"QUIT", "+OK", nil},
	})
	e.waitClosed(t, "alice@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeTLS returned %v", err)
	}

	plain := NewServer(Config{}, e.auth, e.drop, nil)
	if err := plain.ServeTLS(l); err == nil {
		t.Fatal("ServeTLS without Config.TLS succeeded")
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAUTH covers SASL PLAIN and LOGIN (RFC 5034) with and without
// initial responses, cancellation, bad base64 and wrong credentials.
func TestAUTH(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cases := map[string][]step{
		"list mechanisms": {{"AUTH", "+OK", []string{"PLAIN", "LOGIN"}}, {"QUIT", "+OK", nil}},
		"plain initial response": {
			{"AUTH PLAIN " + b64("\x00alice\x00secret"), "+OK maildrop locked", nil}, {"STAT", "+OK 3", nil}},
		"plain with authzid equal": {
			{"AUTH plain " + b64("alice\x00alice\x00secret"), "+OK maildrop locked", nil}},
		"plain challenge": {
			{"AUTH PLAIN", "+ ", nil}, {b64("\x00bob\x00pass word"), "+OK maildrop locked and ready, 0", nil}},
		"plain empty initial response": {
			{"AUTH PLAIN =", "-ERR invalid PLAIN response", nil}, {"QUIT", "+OK", nil}},
		"plain wrong password": {
			{"AUTH PLAIN " + b64("\x00alice\x00nope"), "-ERR [AUTH] authentication failed", nil}, {"QUIT", "+OK", nil}},
		"plain other authzid": {
			{"AUTH PLAIN " + b64("bob\x00alice\x00secret"), "-ERR [AUTH] authentication failed", nil}},
		"plain cancel":             {{"AUTH PLAIN", "+ ", nil}, {"*", "-ERR authentication cancelled", nil}, {"QUIT", "+OK", nil}},
		"plain garbage base64":     {{"AUTH PLAIN", "+ ", nil}, {"!!!notbase64", "-ERR invalid base64 in SASL response", nil}},
		"plain garbage initial":    {{"AUTH PLAIN %%%", "-ERR invalid base64 in initial response", nil}},
		"plain malformed":          {{"AUTH PLAIN " + b64("alice:secret"), "-ERR invalid PLAIN response", nil}},
		"plain over-long response": {{"AUTH PLAIN", "+ ", nil}, {strings.Repeat("A", 5000), "-ERR SASL response too long", nil}, {"NOOP", "-ERR NOOP not valid", nil}},
		"login": {
			{"AUTH LOGIN", "+ " + b64("Username:"), nil},
			{b64("alice"), "+ " + b64("Password:"), nil},
			{b64("secret"), "+OK maildrop locked", nil}},
		"login initial response": {
			{"AUTH LOGIN " + b64("alice"), "+ " + b64("Password:"), nil},
			{b64("secret"), "+OK maildrop locked", nil}},
		"login cancel":       {{"AUTH LOGIN", "+ ", nil}, {b64("alice"), "+ ", nil}, {"*", "-ERR authentication cancelled", nil}},
		"login wrong":        {{"AUTH LOGIN", "+ ", nil}, {b64("alice"), "+ ", nil}, {b64("x"), "-ERR [AUTH] authentication failed", nil}},
		"unknown mechanism":  {{"AUTH CRAM-MD5", "-ERR unsupported authentication mechanism", nil}, {"QUIT", "+OK", nil}},
		"too many arguments": {{"AUTH PLAIN a b", "-ERR wrong number of arguments", nil}},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := e
			if strings.Contains(steps[len(steps)-1].want, "maildrop locked") {
				d = newEnv(t, nil) // own lock per successful login
			}
			c := d.dial(t)
			run(c, append([]step{{"", "+OK", nil}}, steps...))
		})
	}
}

// TestAPOP: only when enabled, with the greeting's timestamp, only for
// users whose stored password is plaintext; failures feed the limiter.
func TestAPOP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.EnableAPOP = true
		c.PlainPassword = func(_ context.Context, user string) (string, bool, error) {
			switch user {
			case "alice":
				return "secret", true, nil
			case "bob":
				return "", false, nil // hashed: no APOP
			}
			return "", false, nil
		}
	})
	digest := func(greeting, pw string) string {
		stamp := greeting[strings.Index(greeting, "<"):]
		sum := md5.Sum([]byte(stamp + pw))
		return hex.EncodeToString(sum[:])
	}
	c := e.dial(t)
	g := c.Line()
	if !strings.HasPrefix(g, "+OK pop.example.com POP3 server ready <") || !strings.HasSuffix(g, "@pop.example.com>") {
		t.Fatalf("greeting %q lacks an APOP timestamp", g)
	}
	run(c, []step{
		{"APOP alice " + digest(g, "wrong"), "-ERR [AUTH] authentication failed", nil},
		{"APOP bob " + digest(g, "pass word"), "-ERR [AUTH] authentication failed", nil},
		{"APOP alice " + strings.ToUpper(digest(g, "secret")), "+OK maildrop locked", nil},
	})
	e.auth.mu.Lock()
	calls := strings.Join(e.auth.calls, ",")
	e.auth.mu.Unlock()
	if calls != "alice,bob,alice" {
		t.Fatalf("Authenticator calls %q: every APOP attempt must reach the limiter", calls)
	}

	// A second connection's timestamp differs.
	g2 := e.dial(t).Line()
	if g2 == g {
		t.Fatal("APOP timestamp repeated")
	}
	// Without PlainPassword APOP stays off and the greeting has no stamp.
	f := newEnv(t, func(c *Config) { c.EnableAPOP = true })
	run(f.dial(t), []step{{"", "+OK pop.example.com POP3 server ready", nil}, {"APOP alice 00", "-ERR APOP not available", nil}})
	if g := f.dial(t).Line(); strings.Contains(g, "<") {
		t.Fatalf("greeting %q has a timestamp with APOP off", g)
	}
}
