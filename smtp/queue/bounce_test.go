package queue

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
	"github.com/popgate/popgate/smtp/smtptest"
)

// dsn is a parsed RFC 3464 report.
type dsn struct {
	header     message.Header
	human      string
	perMessage textproto.Header
	perRcpt    []textproto.Header
	origHeader textproto.Header
}

func (d *dsn) rcpt(t *testing.T, addr string) *textproto.Header {
	t.Helper()
	for i := range d.perRcpt {
		v := d.perRcpt[i].Get("Final-Recipient")
		if j := strings.Index(v, ";"); j >= 0 && strings.TrimSpace(v[j+1:]) == addr {
			return &d.perRcpt[i]
		}
	}
	t.Fatalf("no DSN fields for %s", addr)
	return nil
}

// parseDSN reads a DSN with go-message and checks its structure.
func parseDSN(t *testing.T, b []byte) *dsn {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, b)
	}
	d := &dsn{header: ent.Header}
	ct, params, err := ent.Header.ContentType()
	if err != nil || ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q %v (%v), want multipart/report; report-type=delivery-status", ct, params, err)
	}
	mr := ent.MultipartReader()
	var types []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		types = append(types, pt)
		body, _ := io.ReadAll(p.Body)
		switch pt {
		case "text/plain":
			d.human = string(body)
		case "message/delivery-status", "message/global-delivery-status":
			br := bufio.NewReader(bytes.NewReader(body))
			if d.perMessage, err = textproto.ReadHeader(br); err != nil {
				t.Fatalf("per-message fields: %v", err)
			}
			for {
				if _, err := br.Peek(1); err != nil {
					break
				}
				h, err := textproto.ReadHeader(br)
				if err != nil {
					t.Fatalf("per-recipient fields: %v\n%s", err, body)
				}
				d.perRcpt = append(d.perRcpt, h)
			}
		case "text/rfc822-headers":
			if d.origHeader, err = textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(body), strings.NewReader("\r\n")))); err != nil {
				t.Fatalf("original header: %v", err)
			}
		}
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" &&
		strings.Join(types, ",") != "text/plain,message/global-delivery-status,text/rfc822-headers" {
		t.Fatalf("parts %q", types)
	}
	return d
}

func TestPermanentFailureBouncesAtOnce(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(to string) error {
		if to == "nobody@remote.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user\nreally"}
		}
		return nil
	})
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test", "nobody@remote.test"}, testMsg)
	m := s.Wait(t)
	if len(m.To) != 1 || m.To[0] != "bob@remote.test" {
		t.Errorf("delivered to %q", m.To)
	}
	b := h.bounces.wait(t)
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@local.test" {
		t.Errorf("bounce envelope %q -> %q, want <> -> alice", b.From, b.To)
	}
	d := parseDSN(t, b.Body)
	if got := d.header.Get("To"); got != "<alice@local.test>" {
		t.Errorf("To: %q", got)
	}
	if d.header.Get("Auto-Submitted") != "auto-replied" {
		t.Error("no Auto-Submitted header")
	}
	if got := d.perMessage.Get("Reporting-MTA"); got != "dns; relay.test" {
		t.Errorf("Reporting-MTA %q", got)
	}
	if len(d.perRcpt) != 1 {
		t.Fatalf("%d recipients in the DSN, want only the failed one", len(d.perRcpt))
	}
	r := d.rcpt(t, "nobody@remote.test")
	for k, want := range map[string]string{
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; 127.0.0.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 no such user really",
	} {
		if got := r.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if d.origHeader.Get("Subject") != "hello there" || d.origHeader.Get("Message-Id") != "<m1@local.test>" {
		t.Errorf("original headers not returned: %v", d.origHeader)
	}
	if !strings.Contains(d.human, "nobody@remote.test") {
		t.Errorf("human part does not name the recipient: %q", d.human)
	}
	if h.waitAttempt(t) != id || h.queued(t) != 0 {
		t.Error("message still queued after delivery and bounce")
	}
	if s, _, _ := s.Stats(); s != 1 {
		t.Errorf("%d sessions: a 5xx must not be retried", s)
	}
}

func TestMaxAgeBounces(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
	})
	h := newHarness(t, s, func(c *Config) { c.MaxAge = 10 * time.Second })
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	attempts := 0
	for {
		h.waitAttempt(t)
		if h.bounces.count() > 0 {
			break
		}
		attempts++
		if attempts > 10 {
			t.Fatal("no bounce after 10 attempts")
		}
		it := h.item(t, id)
		if it.NextTry.After(it.Created.Add(10 * time.Second)) {
			t.Fatalf("next try %v after MaxAge", it.NextTry)
		}
		h.clock.Advance(it.NextTry.Sub(h.clock.Now()))
		h.q.kick()
	}
	b := h.bounces.wait(t)
	d := parseDSN(t, b.Body)
	r := d.rcpt(t, "bob@remote.test")
	if r.Get("Action") != "failed" || r.Get("Status") != "4.2.1" || !strings.Contains(r.Get("Diagnostic-Code"), "450 4.2.1 mailbox busy") {
		t.Errorf("DSN fields %v", r)
	}
	if h.queued(t) != 0 {
		t.Error("expired message still queued")
	}
	// 0s, 1s, 3s, 7s, then the deadline at 10s: no further delivery.
	if sessions, _, _ := s.Stats(); sessions != 4 {
		t.Errorf("%d sessions, want 4 tries before expiry", sessions)
	}
}

func TestNullSenderIsNeverBounced(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	})
	h := newHarness(t, s, nil)
	h.run(t)
	h.enqueue(t, "", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	if h.bounces.count() != 0 {
		t.Error("a bounce was sent for a null sender")
	}
	if h.queued(t) != 0 {
		t.Error("message still queued")
	}
	if !strings.Contains(h.logs.String(), "queue bounce dropped") {
		t.Error("dropped bounce not logged")
	}
}

func TestNullMXBouncesWithoutConnecting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	h.resolver.mx["nomail.test"] = []*net.MX{{Host: ".", Pref: 0}}
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"x@nomail.test"}, testMsg)
	d := parseDSN(t, h.bounces.wait(t).Body)
	if r := d.rcpt(t, "x@nomail.test"); r.Get("Status") != "5.1.10" || r.Get("Action") != "failed" {
		t.Errorf("DSN fields %v, want failed 5.1.10", r)
	}
	if len(h.router.dialed()) != 0 {
		t.Errorf("dialled %q for a null MX", h.router.dialed())
	}
}

func TestRoutingFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	h.resolver.fail["flaky.test"] = &net.DNSError{Err: "server misbehaving", Name: "flaky.test", IsTemporary: true}
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"a@nxdomain.test", "b@flaky.test", "c@[192.0.2.99]", "d@[bogus]"}, testMsg)
	b := h.bounces.wait(t)
	d := parseDSN(t, b.Body)
	if got := d.rcpt(t, "a@nxdomain.test").Get("Status"); got != "5.1.2" {
		t.Errorf("NXDOMAIN status %q, want 5.1.2", got)
	}
	if got := d.rcpt(t, "d@[bogus]").Get("Status"); got != "5.1.2" {
		t.Errorf("bad literal status %q, want 5.1.2", got)
	}
	h.waitAttempt(t)
	it := h.item(t, id)
	for _, r := range it.Recipients {
		switch r.Addr {
		case "b@flaky.test":
			if r.State != StatePending || r.Status != "4.4.3" {
				t.Errorf("temporary DNS failure: %+v", r)
			}
		case "c@[192.0.2.99]":
			if r.State != StatePending || r.Status != "4.4.1" {
				t.Errorf("address literal: %+v", r)
			}
		}
	}
	if !strings.Contains(strings.Join(h.router.dialed(), ","), "192.0.2.99:"+h.cfg.Port) {
		t.Errorf("address literal not dialled directly: %q", h.router.dialed())
	}
}

func TestDelayWarning(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "later"}
	})
	h := newHarness(t, s, func(c *Config) { c.WarnAfter = 2 * time.Second })
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	for range 3 { // tries at 0, 1s, 3s: the one at 3s is past WarnAfter
		h.waitAttempt(t)
		it := h.item(t, id)
		h.clock.Advance(it.NextTry.Sub(h.clock.Now()))
		h.q.kick()
	}
	d := parseDSN(t, h.bounces.wait(t).Body)
	r := d.rcpt(t, "bob@remote.test")
	if r.Get("Action") != "delayed" || r.Get("Status") != "4.4.0" || r.Get("Will-Retry-Until") == "" {
		t.Errorf("warning fields %v", r)
	}
	h.waitAttempt(t)
	if h.bounces.count() != 1 {
		t.Errorf("%d DSNs, want one warning only", h.bounces.count())
	}
	if it := h.item(t, id); it.Recipients[0].State != StatePending {
		t.Error("warning changed the recipient's state")
	}
}

func TestBounceInjectFailureIsRetried(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}
	})
	h := newHarness(t, s, nil)
	h.bounces.fail = errors.New("local delivery down")
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	if r := h.item(t, id).Recipients[0]; r.State != StateFailed {
		t.Fatalf("recipient %+v, want failed awaiting its DSN", r)
	}
	h.bounces.mu.Lock()
	h.bounces.fail = nil
	h.bounces.mu.Unlock()
	h.advance(h.cfg.MinRetry)
	h.bounces.wait(t)
	h.waitAttempt(t)
	if h.queued(t) != 0 {
		t.Error("still queued after the DSN went out")
	}
	if sessions, _, _ := s.Stats(); sessions != 1 {
		t.Errorf("%d sessions: a failed recipient was retried", sessions)
	}
}

func TestExpiredBeforeFirstTryBouncesWithoutConnecting(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, func(c *Config) { c.MaxAge = time.Minute })
	// Spooled while the loop was not running (the server was down for
	// longer than MaxAge); the header has no body separator.
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, "Subject: old\r\nX-Long: yes")
	h.clock.Advance(2 * time.Minute)
	h.run(t)
	d := parseDSN(t, h.bounces.wait(t).Body)
	r := d.rcpt(t, "bob@remote.test")
	if r.Get("Status") != "4.4.7" || !strings.Contains(r.Get("Diagnostic-Code"), "expired after 2m0s") {
		t.Errorf("DSN fields %v", r)
	}
	if d.origHeader.Get("Subject") != "old" || d.origHeader.Get("X-Long") != "yes" {
		t.Errorf("original header %v", d.origHeader)
	}
	h.waitAttempt(t)
	if sessions, _, _ := s.Stats(); sessions != 0 {
		t.Error("an expired message was still tried")
	}
}
