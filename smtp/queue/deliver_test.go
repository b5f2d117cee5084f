package queue

import (
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/popgate/popgate/auth/tlstest"
	"github.com/popgate/popgate/smtp/smtptest"
)

func TestDeliverViaSmarthostNormalisesAndDotStuffs(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, nil)
	h.run(t)
	// Bare LF, a bare CR, a lone dot line and a dot-leading line, no final newline.
	body := "Subject: dots\n\n.\n..two\n.three\rfour"
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test", "carol@other.test"}, body)
	m := s.Wait(t)
	want := "Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\nfour\r\n"
	if string(m.Body) != want {
		t.Errorf("body = %q, want %q", m.Body, want)
	}
	if m.From != "alice@local.test" || !slices.Equal(m.To, []string{"bob@remote.test", "carol@other.test"}) {
		t.Errorf("envelope = %q %q", m.From, m.To)
	}
	if got := h.waitAttempt(t); got != id {
		t.Fatalf("attempt for %s, want %s", got, id)
	}
	if n := h.queued(t); n != 0 {
		t.Errorf("%d messages still queued", n)
	}
	if ents := spoolFiles(t, h.cfg.Dir); len(ents) != 0 {
		t.Errorf("spool not empty after delivery: %v", ents)
	}
	if sessions, _, _ := s.Stats(); sessions != 1 {
		t.Errorf("%d sessions, want 1 for one smarthost", sessions)
	}
}

func TestMXRoutingPreferenceFallbackAndImplicitMX(t *testing.T) {
	t.Parallel()
	mx2 := smtptest.NewSink(t)
	implicit := smtptest.NewSink(t)
	h := newHarness(t, nil, func(c *Config) { c.Port = "25" })
	h.resolver.mx["a.test"] = []*net.MX{{Host: "mx2.a.test.", Pref: 20}, {Host: "mx1.a.test.", Pref: 10}}
	h.resolver.hosts["mx1.a.test"] = []string{"192.0.2.1"} // down: no route
	h.resolver.hosts["mx2.a.test"] = []string{"192.0.2.2"}
	h.resolver.hosts["b.test"] = []string{"192.0.2.3"} // no MX: the A record
	h.router.route("192.0.2.2:25", mx2.Addr)
	h.router.route("192.0.2.3:25", implicit.Addr)
	h.run(t)

	h.enqueue(t, "alice@local.test", []string{"x@a.test", "y@B.test"}, testMsg)
	a := mx2.Wait(t)
	b := implicit.Wait(t)
	if !slices.Equal(a.To, []string{"x@a.test"}) || !slices.Equal(b.To, []string{"y@B.test"}) {
		t.Errorf("mx2 got %q, implicit MX got %q", a.To, b.To)
	}
	h.waitAttempt(t)
	d := h.router.dialed()
	if i1, i2 := slices.Index(d, "192.0.2.1:25"), slices.Index(d, "192.0.2.2:25"); i1 < 0 || i2 < i1 {
		t.Errorf("dial order %q: want mx1 (pref 10) tried before mx2", d)
	}
}

func TestOneConnectionCarriesAllRecipientsOfADestination(t *testing.T) {
	t.Parallel()
	sa := smtptest.NewSink(t)
	sb := smtptest.NewSink(t)
	h := newHarness(t, nil, nil)
	h.resolver.mx["a.test"] = []*net.MX{{Host: "mx.a.test", Pref: 10}}
	h.resolver.mx["b.test"] = []*net.MX{{Host: "mx.b.test", Pref: 10}}
	h.resolver.hosts["mx.a.test"] = []string{"192.0.2.10"}
	h.resolver.hosts["mx.b.test"] = []string{"192.0.2.11"}
	h.cfg.Port = "25"
	h.q.cfg.Port = "25"
	h.router.route("192.0.2.10:25", sa.Addr)
	h.router.route("192.0.2.11:25", sb.Addr)
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"1@a.test", "2@b.test", "3@a.test", "4@A.TEST"}, testMsg)
	sa.Wait(t)
	sb.Wait(t)
	h.waitAttempt(t)
	sessions, _, rcpts := sa.Stats()
	if sessions != 1 || !slices.Equal(rcpts[0], []string{"1@a.test", "3@a.test", "4@A.TEST"}) {
		t.Errorf("a.test: %d sessions, recipients %q; want one session with all three", sessions, rcpts)
	}
	if sessions, _, _ := sb.Stats(); sessions != 1 {
		t.Errorf("b.test: %d sessions", sessions)
	}
}

func TestDroppedConnectionMidDataIsRetried(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.DropData.Store(1)
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	it := h.item(t, id)
	if r := it.Recipients[0]; r.State != StatePending || r.LastError == "" {
		t.Fatalf("after a dropped DATA: %+v, want pending with an error", r)
	}
	if !it.NextTry.Equal(h.clock.Now().Add(h.cfg.MinRetry)) {
		t.Errorf("next try %v, want now + MinRetry", it.NextTry)
	}
	h.advance(h.cfg.MinRetry)
	m := s.Wait(t)
	if string(m.Body) != testMsg {
		t.Errorf("body = %q", m.Body)
	}
	h.waitAttempt(t)
	if h.queued(t) != 0 {
		t.Error("message still queued after delivery")
	}
}

func TestSinkDownThenUp(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, nil)
	h.router.route(s.Addr, "127.0.0.1:1") // refused
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	if r := h.item(t, id).Recipients[0]; r.State != StatePending || r.Status != "4.4.1" {
		t.Fatalf("with the smarthost down: %+v, want pending 4.4.1", r)
	}
	h.router.route(s.Addr, s.Addr)
	h.advance(h.cfg.MinRetry)
	s.Wait(t)
}

func TestExponentialBackoff(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	})
	h := newHarness(t, s, nil)
	h.run(t)
	t0 := h.clock.Now()
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	// Backoff doubles: tries at 0, 1s, 3s, 7s.
	for i, wantNext := range []int{1, 3, 7} {
		it := h.item(t, id)
		if got := it.NextTry.Sub(t0); got.Seconds() != float64(wantNext) {
			t.Fatalf("after attempt %d next try at +%v, want +%ds", i+1, got, wantNext)
		}
		r := it.Recipients[0]
		if r.State != StatePending || r.Status != "4.3.0" || !strings.Contains(r.LastError, "451 4.3.0 try later") {
			t.Fatalf("recipient %+v", r)
		}
		if it.Attempts != i+1 {
			t.Errorf("attempts = %d, want %d", it.Attempts, i+1)
		}
		h.clock.Advance(it.NextTry.Sub(h.clock.Now()))
		if i == 2 {
			s.SetRcpt(nil)
		}
		h.q.kick()
		h.waitAttempt(t)
	}
	s.Wait(t)
	if h.queued(t) != 0 {
		t.Error("still queued")
	}
}

func TestSizeLimitBounces534(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t, func(srv *smtp.Server) { srv.MaxMessageBytes = 100 })
	h := newHarness(t, s, nil)
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg+strings.Repeat("x", 200)+"\r\n")
	b := h.bounces.wait(t)
	d := parseDSN(t, b.Body)
	if r := d.rcpt(t, "bob@remote.test"); r.Get("Status") != "5.3.4" || r.Get("Action") != "failed" {
		t.Errorf("DSN recipient fields %v, want failed 5.3.4", r)
	}
	h.waitAttempt(t)
	if s.Count() != 0 {
		t.Error("the over-size message was sent anyway")
	}
}

func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	t.Run("peer without SMTPUTF8 bounces 5.6.7", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) { srv.EnableSMTPUTF8 = false })
		h := newHarness(t, s, nil)
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"jürgen@remote.test", "bob@remote.test"}, testMsg)
		b := h.bounces.wait(t)
		d := parseDSN(t, b.Body)
		if r := d.rcpt(t, "jürgen@remote.test"); r.Get("Status") != "5.6.7" {
			t.Errorf("status %q, want 5.6.7", r.Get("Status"))
		}
		if s.Count() != 0 {
			t.Error("message sent without SMTPUTF8")
		}
	})
	t.Run("peer with SMTPUTF8 gets it", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t)
		h := newHarness(t, s, nil)
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"jürgen@remote.test"}, testMsg)
		if m := s.Wait(t); m.To[0] != "jürgen@remote.test" {
			t.Errorf("to = %q", m.To)
		}
	})
}

func TestSmarthostRequiredTLSAndAuth(t *testing.T) {
	t.Parallel()
	cert := tlstest.New(t, "sink.test")
	t.Run("verified TLS and AUTH PLAIN", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) {
			srv.TLSConfig = cert.Server
		})
		s.RequireAuth("relay", "s3cret")
		h := newHarness(t, s, func(c *Config) {
			c.SmarthostTLS = TLSRequired
			c.SmarthostAuth = &Auth{Username: "relay", Password: "s3cret"}
			c.TLSConfig = cert.Client
		})
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		if m := s.Wait(t); string(m.Body) != testMsg {
			t.Errorf("body %q", m.Body)
		}
		if s.TLSMails.Load() != 1 {
			t.Error("message not sent over TLS")
		}
	})
	t.Run("untrusted certificate is not used when required", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) {
			srv.TLSConfig = cert.Server
		})
		h := newHarness(t, s, func(c *Config) { c.SmarthostTLS = TLSRequired })
		h.run(t)
		id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		h.waitAttempt(t)
		r := h.item(t, id).Recipients[0]
		if r.State != StatePending || !strings.Contains(r.LastError, "TLS handshake failed") {
			t.Errorf("recipient %+v, want pending after a failed handshake", r)
		}
		if s.Count() != 0 {
			t.Error("sent over an unverified connection")
		}
	})
	t.Run("required TLS not offered", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t)
		h := newHarness(t, s, func(c *Config) { c.SmarthostTLS = TLSRequired })
		h.run(t)
		id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		h.waitAttempt(t)
		if r := h.item(t, id).Recipients[0]; r.State != StatePending || !strings.Contains(r.LastError, "STARTTLS required") {
			t.Errorf("recipient %+v", r)
		}
	})
	t.Run("opportunistic uses an unverified certificate", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) {
			srv.TLSConfig = cert.Server
		})
		h := newHarness(t, s, func(c *Config) { c.SmarthostTLS = TLSOpportunistic })
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		s.Wait(t)
		if s.TLSMails.Load() != 1 {
			t.Error("STARTTLS offered but not used")
		}
	})
	t.Run("opportunistic falls back to clear text after a failed handshake", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.Certificate}, MinVersion: tls.VersionTLS13}
		})
		h := newHarness(t, s, func(c *Config) {
			c.SmarthostTLS = TLSOpportunistic
			c.TLSConfig = &tls.Config{MaxVersion: tls.VersionTLS12}
		})
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		s.Wait(t)
		if sessions, _, _ := s.Stats(); sessions != 2 {
			t.Errorf("%d sessions, want the failed TLS one and the clear one", sessions)
		}
	})
	t.Run("opportunistic without STARTTLS goes in clear", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t)
		h := newHarness(t, s, func(c *Config) { c.SmarthostTLS = TLSOpportunistic })
		h.run(t)
		h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		s.Wait(t)
	})
	t.Run("wrong password stays pending", func(t *testing.T) {
		t.Parallel()
		s := smtptest.NewSink(t, func(srv *smtp.Server) {
			srv.TLSConfig = cert.Server
		})
		s.RequireAuth("relay", "s3cret")
		h := newHarness(t, s, func(c *Config) {
			c.SmarthostTLS = TLSOpportunistic
			c.SmarthostAuth = &Auth{Username: "relay", Password: "wrong"}
		})
		h.run(t)
		id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
		h.waitAttempt(t)
		if r := h.item(t, id).Recipients[0]; r.State != StatePending || !strings.Contains(r.LastError, "535") {
			t.Errorf("recipient %+v, want pending with the 535", r)
		}
		if h.bounces.count() != 0 {
			t.Error("a login failure bounced the message")
		}
	})
}

func TestConcurrencyCaps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		total, perDst int
		domains       int
		want          int
	}{
		{"total", 2, 10, 6, 2},
		{"per destination", 10, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := smtptest.NewSink(t)
			gate := make(chan struct{})
			s.SetGate(gate)
			h := newHarness(t, nil, func(c *Config) {
				c.MaxConcurrent, c.MaxPerDestination, c.Port = tc.total, tc.perDst, "25"
			})
			for i := range tc.domains {
				d := "d" + string(rune('a'+i)) + ".test"
				h.resolver.hosts[d] = []string{"192.0.2.50"}
			}
			h.router.route("192.0.2.50:25", s.Addr)
			const n = 6
			for i := range n {
				d := "d" + string(rune('a'+i%tc.domains)) + ".test"
				h.enqueue(t, "alice@local.test", []string{"r@" + d}, testMsg)
			}
			h.run(t)
			// Let the first wave reach DATA: exactly the cap may.
			for range tc.want {
				s.WaitData(t)
			}
			for i := range n {
				if maxActive := h.router.maxConns(); maxActive > tc.want {
					t.Fatalf("%d simultaneous connections, cap %d", maxActive, tc.want)
				}
				gate <- struct{}{}
				s.Wait(t)
				if i+tc.want < n {
					s.WaitData(t) // the freed slot is taken by the next message
				}
			}
			if maxActive := h.router.maxConns(); maxActive != tc.want {
				t.Errorf("max simultaneous connections %d, want exactly the cap %d", maxActive, tc.want)
			}
		})
	}
}

func TestBusyMXGreetingTriesNextHostButRejectionDoesNot(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	go func() {
		for {
			c, err := busy.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("421 4.3.2 busy, try another\r\n"))
			c.Close()
		}
	}()
	backup := smtptest.NewSink(t)
	backup.SetRcpt(func(to string) error {
		if to == "gone@a.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
		}
		return nil
	})
	third := smtptest.NewSink(t)
	h := newHarness(t, nil, func(c *Config) { c.Port = "25" })
	h.resolver.mx["a.test"] = []*net.MX{{Host: "mx1.a.test", Pref: 10}, {Host: "mx2.a.test", Pref: 20}, {Host: "mx3.a.test", Pref: 30}}
	h.resolver.hosts["mx1.a.test"] = []string{"192.0.2.1"}
	h.resolver.hosts["mx2.a.test"] = []string{"192.0.2.2"}
	h.resolver.hosts["mx3.a.test"] = []string{"192.0.2.3"}
	h.router.route("192.0.2.1:25", busy.Addr().String())
	h.router.route("192.0.2.2:25", backup.Addr)
	h.router.route("192.0.2.3:25", third.Addr)
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"ok@a.test", "gone@a.test"}, testMsg)
	if m := backup.Wait(t); len(m.To) != 1 || m.To[0] != "ok@a.test" {
		t.Errorf("backup MX got %q", m.To)
	}
	d := parseDSN(t, h.bounces.wait(t).Body)
	if r := d.rcpt(t, "gone@a.test"); r.Get("Remote-MTA") != "dns; mx2.a.test" || r.Get("Status") != "5.1.1" {
		t.Errorf("DSN fields %v", r)
	}
	h.waitAttempt(t)
	if sessions, _, _ := third.Stats(); sessions != 0 {
		t.Error("a 5xx from one MX was retried at the next")
	}
}

// TestLongLinesFoldedForNextHop relays lines far over 998 octets to a
// peer that enforces RFC 5321's 1000-octet line limit: they arrive folded
// with CRLF SP as Postfix's smtp_line_length_limit does, every line within
// the limit, and unfolding gives back the original text.
func TestLongLinesFoldedForNextHop(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t, func(srv *smtp.Server) { srv.MaxLineLength = 1000 })
	h := newHarness(t, s, nil)
	h.run(t)
	header := "X-Long: " + strings.Repeat("h", 1500)
	line := strings.Repeat("0123456789", 300) // 3000 octets
	exact := strings.Repeat("e", 998)         // at the limit: untouched
	body := header + "\r\nSubject: fold\r\n\r\n" + line + "\r\n" + exact + "\r\n.dot " + line + "\r\nend\r\n"
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, body)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	m := s.Wait(t)
	for i, l := range strings.Split(strings.TrimSuffix(string(m.Body), "\r\n"), "\r\n") {
		if strings.HasPrefix(l, ".") {
			l = "." + l // as it went over the wire, dot-stuffed
		}
		if len(l) > 998 {
			t.Fatalf("line %d is %d octets", i, len(l))
		}
	}
	if got := strings.ReplaceAll(string(m.Body), "\r\n ", ""); got != body {
		t.Fatalf("unfolded body differs:\n got %q\nwant %q", trunc(got), trunc(body))
	}
	if !strings.Contains(string(m.Body), "\r\n"+exact+"\r\n") {
		t.Fatal("a 998-octet line was folded")
	}
	if !strings.HasPrefix(string(m.Body), "X-Long: "+strings.Repeat("h", 990)+"\r\n h") {
		t.Fatalf("header not folded at 998: %q", trunc(string(m.Body)))
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
