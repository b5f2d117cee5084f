package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/cmd/popgate/internal/promtext"
	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startMetrics serves a fresh registry on 127.0.0.1:0 and returns the
// metrics, the /metrics URL and the context's cancel.
func startMetrics(t *testing.T) (*metrics, *promtext.Registry, string, context.CancelFunc) {
	t.Helper()
	reg := promtext.NewRegistry()
	m := newMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := serveMetrics(ctx, "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg, "http://" + ln.Addr().String() + "/metrics", cancel
}

// scrape GETs url and returns the body.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

// TestMetricsCountLogEvents logs each counted event the way the packages
// do (same message, same attributes, below logger.With) and reads the
// counters back over HTTP.
func TestMetricsCountLogEvents(t *testing.T) {
	m, _, url, _ := startMetrics(t)
	var out bytes.Buffer
	// The log writes only warnings; the info events must still count.
	base := slog.New(m.handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	pop := base.With("proto", "pop3", "remote", "192.0.2.7", "conn", 1)
	ip := netip.MustParseAddr("192.0.2.7")
	pop.Info("pop3 login ok", "user", "alice@example.com", "ip", ip, "method", "user", "tls", false)
	pop.Info("pop3 login ok", "user", "alice@example.com", "ip", ip, "method", "apop", "tls", true)
	pop.Info("pop3 login failed", "user", "x", "ip", ip, "reason", "bad credentials")
	pop.Info("pop3 login failed", "user", "x", "ip", ip, "reason", "internal error")
	pop.Info("pop3 login failed", "user", "x", "ip", ip, "reason", "throttled")
	pop.Info("pop3 login failed", "user", "x", "ip", ip, "reason", "mailbox in use")
	pop.Warn("pop3 connection refused", "reason", "too many connections")

	grants := base.With("part", "grants")
	grants.Info("relay grant", "user", "alice@example.com", "ip", "192.0.2.7", "until", time.Now())
	grants.Info("relay grant", "user", "bob@example.com", "ip", "192.0.2.8", "until", time.Now())
	grants.Info("relay expire", "user", "bob@example.com", "ip", "192.0.2.8", "expired", time.Now())
	grants.Info("relay revoke", "user", "alice@example.com", "ip", "192.0.2.7")
	grants.Info("relay grant refused", "user", "c", "ip", "10.0.0.1", "reason", "never_grant 10.0.0.0/8")

	smtp := base.With("proto", "smtp", "listener", "mx", "remote", "192.0.2.9", "conn", 2).WithGroup("g")
	smtp.Warn("smtp relay denied", "ip", "192.0.2.9", "from", "a@b", "rcpt", "c@d", "reason", "")
	smtp.Warn("smtp relay denied", "ip", "192.0.2.9", "from", "a@b", "rcpt", "e@f", "reason", "")
	smtp.Info("smtp message accepted", "ip", "192.0.2.7", "from", "alice@example.com", "size", 100, "mailboxes", 0, "remote_rcpts", 1, "queue_id", "q1", "relay_grant", "alice@example.com")
	smtp.Info("smtp message accepted", "ip", "127.0.0.1", "from", "x@y", "size", 100, "mailboxes", 0, "remote_rcpts", 2, "queue_id", "q2", "relay_grant", "")
	smtp.Info("smtp message accepted", "ip", "192.0.2.9", "from", "x@y", "size", 100, "mailboxes", 1, "remote_rcpts", 0, "queue_id", "", "relay_grant", "")
	smtp.Info("smtp unknown recipient", "ip", "192.0.2.9", "rcpt", "nobody@example.com")
	smtp.Info("smtp connection rejected", "reason", "REJECT", "code", 554)
	smtp.Warn("smtp sender denied", "ip", "192.0.2.9", "user", "u", "from", "f")
	smtp.Info("smtp sender rejected", "ip", "192.0.2.9", "from", "f", "reason", "r")
	smtp.Info("smtp recipient rejected", "ip", "192.0.2.9", "from", "f", "rcpt", "r", "reason", "r")
	smtp.Warn("smtp insufficient storage", "ip", "192.0.2.9", "size", 0, "err", "full")
	smtp.Warn("smtp mail loop", "ip", "192.0.2.9", "err", "loop")
	smtp.Info("smtp auth ok", "ip", "192.0.2.9", "user", "u")
	smtp.Warn("smtp auth failed", "ip", "192.0.2.9", "user", "u")
	smtp.Warn("smtp auth throttled", "ip", "192.0.2.9", "user", "u")
	smtp.Warn("smtp connection refused", "reason", "too many connections")

	type state string // like queue.State: a named string type
	q := base.With("part", "queue").With("id", "q1")
	q.Info("queue enqueued", "id", "q1", "from", "a@b", "rcpts", 1, "size", 10)
	q.Info("queue attempt", "id", "q1", "rcpt", "c@d", "state", state("pending"), "status", "4.4.3", "mta", "", "reply", "x")
	q.Info("queue attempt", "id", "q1", "rcpt", "c@d", "state", state("sent"), "status", "2.0.0", "mta", "mx", "reply", "")
	q.Info("queue attempt", "id", "q1", "rcpt", "e@f", "state", state("failed"), "status", "5.1.1", "mta", "mx", "reply", "x")
	q.Info("queue deferred", "pending", 1, "next", time.Now())
	q.Info("queue bounced", "to", "a@b", "rcpts", 1)
	q.Info("queue done", "attempts", 2)
	q.Error("queue update failed", "err", errors.New("disk full"))
	base.Info("an event nobody counts")

	want := `
# HELP popgate_pop3_logins_total POP3 logins by result: ok, failed (bad credentials or internal error), throttled, in_use (mailbox locked).
# TYPE popgate_pop3_logins_total counter
popgate_pop3_logins_total{result="failed"} 2
popgate_pop3_logins_total{result="in_use"} 1
popgate_pop3_logins_total{result="ok"} 2
popgate_pop3_logins_total{result="throttled"} 1
# HELP popgate_grants_total POP-before-SMTP relay grants by event: granted (or extended), expired, revoked, refused (never_grant or no usable address).
# TYPE popgate_grants_total counter
popgate_grants_total{event="expired"} 1
popgate_grants_total{event="granted"} 2
popgate_grants_total{event="refused"} 1
popgate_grants_total{event="revoked"} 1
# HELP popgate_relay_decisions_total Relay decisions: denied counts refused remote recipients (RCPT); granted_by_pop and allowed (trusted network, static RELAY rule or SMTP AUTH) count accepted messages with remote recipients.
# TYPE popgate_relay_decisions_total counter
popgate_relay_decisions_total{result="allowed"} 1
popgate_relay_decisions_total{result="denied"} 2
popgate_relay_decisions_total{result="granted_by_pop"} 1
# HELP popgate_smtp_rejections_total SMTP refusals other than relay denials, by stage: connect, sender, recipient, unknown_recipient, storage (452 4.3.1: the mail filesystem is full), loop (554 5.4.6).
# TYPE popgate_smtp_rejections_total counter
popgate_smtp_rejections_total{stage="connect"} 1
popgate_smtp_rejections_total{stage="loop"} 1
popgate_smtp_rejections_total{stage="recipient"} 1
popgate_smtp_rejections_total{stage="sender"} 2
popgate_smtp_rejections_total{stage="storage"} 1
popgate_smtp_rejections_total{stage="unknown_recipient"} 1
# HELP popgate_smtp_auth_total SMTP AUTH attempts by result: ok, failed, throttled.
# TYPE popgate_smtp_auth_total counter
popgate_smtp_auth_total{result="failed"} 1
popgate_smtp_auth_total{result="ok"} 1
popgate_smtp_auth_total{result="throttled"} 1
# HELP popgate_messages_total Messages by event: accepted (250 after DATA), enqueued (into the outbound queue, DSNs included), done (left the queue: every recipient sent or bounced), deferred (an attempt left recipients pending), bounced (a DSN was sent).
# TYPE popgate_messages_total counter
popgate_messages_total{event="accepted"} 3
popgate_messages_total{event="bounced"} 1
popgate_messages_total{event="deferred"} 1
popgate_messages_total{event="done"} 1
popgate_messages_total{event="enqueued"} 1
# HELP popgate_deliveries_total Outbound delivery attempts per recipient by result: sent, deferred, failed.
# TYPE popgate_deliveries_total counter
popgate_deliveries_total{result="deferred"} 1
popgate_deliveries_total{result="failed"} 1
popgate_deliveries_total{result="sent"} 1
# HELP popgate_connections_refused_total Connections refused for exceeding a connection limit, by protocol.
# TYPE popgate_connections_refused_total counter
popgate_connections_refused_total{proto="pop3"} 1
popgate_connections_refused_total{proto="smtp"} 1
# HELP popgate_log_events_total Log records at warn and error level, whatever log.level is.
# TYPE popgate_log_events_total counter
popgate_log_events_total{level="error"} 1
popgate_log_events_total{level="warn"} 9
`
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want),
		"popgate_pop3_logins_total", "popgate_grants_total", "popgate_relay_decisions_total",
		"popgate_smtp_rejections_total", "popgate_smtp_auth_total", "popgate_messages_total",
		"popgate_deliveries_total", "popgate_connections_refused_total", "popgate_log_events_total"); err != nil {
		t.Error(err)
	}

	// The wrapped handler saw only what its level lets through, with the
	// attributes from With and WithGroup intact.
	logged := out.String()
	if strings.Contains(logged, "pop3 login ok") || strings.Contains(logged, "an event nobody counts") {
		t.Errorf("info records reached a warn-level handler:\n%s", logged)
	}
	if !strings.Contains(logged, `level=WARN msg="smtp relay denied" proto=smtp listener=mx remote=192.0.2.9 conn=2 g.ip=192.0.2.9`) {
		t.Errorf("relay denied not passed on with its attributes:\n%s", logged)
	}
	if n := strings.Count(logged, "\n"); n != 10 {
		t.Errorf("%d lines logged, want the 10 warn and error records:\n%s", n, logged)
	}
}

// TestMetricsDebugPassesThrough: with the log at debug level, debug
// records still reach it through the counting handler.
func TestMetricsDebugPassesThrough(t *testing.T) {
	m := newMetrics(promtext.NewRegistry())
	var out bytes.Buffer
	log := slog.New(m.handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.Debug("smtp connection accepted", "x", 1)
	if !strings.Contains(out.String(), `level=DEBUG msg="smtp connection accepted" x=1`) {
		t.Errorf("debug record lost: %q", out.String())
	}
	var nothing bytes.Buffer
	log = slog.New(m.handler(slog.NewTextHandler(&nothing, nil)))
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled although neither the log nor the counters want it")
	}
}

// TestMetricsEventNamesExist keeps the event table honest: every message
// it counts is logged, in those exact words, by a package of popgate.
func TestMetricsEventNamesExist(t *testing.T) {
	var src strings.Builder
	for _, dir := range []string{"pop3", "smtp", "smtp/queue", "acl", "auth"} {
		files, err := filepath.Glob(filepath.Join("..", "..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	m := newMetrics(promtext.NewRegistry())
	for msg := range m.events {
		if !strings.Contains(src.String(), `"`+msg+`"`) {
			t.Errorf("metrics count %q, but no package logs it", msg)
		}
	}
}

// TestMetricsRealServer runs a real popgate with the counting handler
// and checks that POP3 logins, relay decisions, grants, the queue and the
// gauges show up in a scrape, so a renamed event cannot go unnoticed.
func TestMetricsRealServer(t *testing.T) {
	m, _, url, _ := startMetrics(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s, err := assemble(cfg, options{logger: slog.New(m.handler(slog.NewTextHandler(testLogOut(), nil)))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.instrument(s); err != nil {
		t.Fatal(err)
	}
	if err := m.instrument(s); err == nil {
		t.Error("second registration of the gauges succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	pop, mx := s.addr("pop3.listen"), s.addr("smtp.listen")

	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554") {
		t.Fatalf("relay before login: %q", got)
	}
	c := pop3test.DialFrom(t, "127.0.0.3", pop)
	c.Expect("", "+OK")
	c.Expect("USER bob@example.com", "+OK")
	c.Expect("PASS wrong", "-ERR")
	c.Expect("QUIT", "+OK")
	popLogin(t, "127.0.0.2", pop, "alice@example.com", "alice's secret")
	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay after login: %q", got)
	}
	if got := trySend(t, "127.0.0.4", mx, "x@remote.example", "nobody@example.com"); !strings.HasPrefix(got, "550") {
		t.Fatalf("unknown user: %q", got)
	}
	// The smarthost refuses connections: the first attempt defers.
	waitFor(t, "a deferred delivery", func() bool {
		return m.deliveries.With("deferred").Value() >= 1
	})

	body := scrape(t, url)
	for _, want := range []string{
		`popgate_pop3_logins_total{result="ok"} 1`,
		`popgate_pop3_logins_total{result="failed"} 1`,
		`popgate_grants_total{event="granted"} 1`,
		`popgate_relay_decisions_total{result="denied"} 1`,
		`popgate_relay_decisions_total{result="granted_by_pop"} 1`,
		`popgate_smtp_rejections_total{stage="unknown_recipient"} 1`,
		`popgate_messages_total{event="accepted"} 1`,
		`popgate_messages_total{event="enqueued"} 1`,
		`popgate_connections_total{listener="pop3.listen"} 2`,
		`popgate_connections_total{listener="smtp.listen"} 3`,
		`popgate_relay_grants 1`,
		`popgate_queue_messages 1`,
		`popgate_build_info{version="` + version + `"} 1`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, "\n"+want) {
			t.Errorf("scrape lacks %q:\n%s", want, grepLines(body, "popgate_conn"))
		}
	}
	if !strings.Contains(body, "popgate_queue_oldest_seconds ") || strings.Contains(body, "popgate_queue_oldest_seconds 0\n") {
		t.Errorf("queue age not reported:\n%s", grepLines(body, "popgate_queue"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// failingMapWriter fails every write.
type failingMapWriter struct{}

func (failingMapWriter) WriteMap(string, []acl.MapEntry) error { return errors.New("disk full") }

// TestMetricsGaugesAndMirrorWrites checks the scrape-time gauges and the
// mirror histogram, with a real map file written through the wrapper.
func TestMetricsGaugesAndMirrorWrites(t *testing.T) {
	m, _, url, _ := startMetrics(t)
	grants, queued, oldest, calls := 3, 7, 90*time.Second, 0
	if err := m.registerGauges(func() int { return grants }, func() (int, time.Duration) { calls++; return queued, oldest }); err != nil {
		t.Fatal(err)
	}
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(`
# HELP popgate_relay_grants Live POP-before-SMTP relay grants.
# TYPE popgate_relay_grants gauge
popgate_relay_grants 3
# HELP popgate_queue_messages Messages in the outbound queue.
# TYPE popgate_queue_messages gauge
popgate_queue_messages 7
# HELP popgate_queue_oldest_seconds Age of the oldest message in the outbound queue; 0 when it is empty.
# TYPE popgate_queue_oldest_seconds gauge
popgate_queue_oldest_seconds 90
`), "popgate_relay_grants", "popgate_queue_messages", "popgate_queue_oldest_seconds"); err != nil {
		t.Error(err)
	}
	if calls != 1 {
		t.Errorf("queue read %d times for one scrape, want 1", calls)
	}
	grants, queued, oldest = 0, 0, 0
	body := scrape(t, url)
	for _, want := range []string{"popgate_relay_grants 0\n", "popgate_queue_messages 0\n", "popgate_queue_oldest_seconds 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("after emptying: scrape lacks %q", want)
		}
	}

	// A clock that advances 30 ms per reading makes each write take 30 ms.
	var tick time.Time
	now := func() time.Time { tick = tick.Add(30 * time.Millisecond); return tick }
	path := filepath.Join(t.TempDir(), "access.db")
	w := m.mapWriter(mapWriter{formats: map[string]mapfile.Format{path: mapfile.Hash}, now: time.Now}, now)
	if err := w.WriteMap(path, []acl.MapEntry{{Key: "connect:192.0.2.7", Value: "RELAY"}}); err != nil {
		t.Fatal(err)
	}
	if got := mapValue(t, path, "connect:192.0.2.7"); got != "RELAY" {
		t.Fatalf("the wrapped writer did not write the map: %q", got)
	}
	if err := m.mapWriter(failingMapWriter{}, now).WriteMap(path, nil); err == nil || err.Error() != "disk full" {
		t.Fatalf("error not passed through: %v", err)
	}
	m.observeMirrorWrite(2*time.Second, nil)
	body = scrape(t, url)
	for _, want := range []string{
		`popgate_mirror_write_seconds_bucket{result="ok",le="0.025"} 0`,
		`popgate_mirror_write_seconds_bucket{result="ok",le="0.05"} 1`,
		`popgate_mirror_write_seconds_bucket{result="ok",le="2.5"} 2`,
		`popgate_mirror_write_seconds_count{result="ok"} 2`,
		`popgate_mirror_write_seconds_count{result="error"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, grepLines(body, "mirror"))
		}
	}
	if !strings.Contains(body, `popgate_mirror_write_seconds_sum{result="ok"} 2.03`) {
		t.Errorf("histogram sum wrong:\n%s", grepLines(body, "mirror_write_seconds_sum"))
	}
}

// TestMetricsServerLifecycle: the endpoint answers only /metrics (GET),
// refuses a bad address, and is gone once its context ends.
func TestMetricsServerLifecycle(t *testing.T) {
	_, _, url, cancel := startMetrics(t)
	if body := scrape(t, url); !strings.Contains(body, "# TYPE popgate_pop3_logins_total counter") {
		t.Errorf("scrape:\n%s", body)
	}
	base := strings.TrimSuffix(url, "/metrics")
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/", http.StatusOK},
		{"GET", "/nothing", http.StatusNotFound},
		{"POST", "/metrics", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
	cancel()
	addr := strings.TrimPrefix(base, "http://")
	waitFor(t, "the metrics listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})

	for _, bad := range []string{"127.0.0.1", "256.0.0.1:0", "127.0.0.1:99999"} {
		if _, err := serveMetrics(context.Background(), bad, promtext.NewRegistry()); err == nil || !strings.HasPrefix(err.Error(), "metrics.listen: ") {
			t.Errorf("serveMetrics(%q) = %v, want a metrics.listen error", bad, err)
		}
	}
	// The address in use is an error, not a silent second server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := serveMetrics(context.Background(), ln.Addr().String(), promtext.NewRegistry()); err == nil {
		t.Error("serveMetrics on a bound port succeeded")
	}
}

// TestMetricsNil: a nil *metrics (metrics off) changes nothing.
func TestMetricsNil(t *testing.T) {
	var m *metrics
	h := slog.NewTextHandler(io.Discard, nil)
	if m.handler(h) != slog.Handler(h) {
		t.Error("nil metrics wrapped the handler")
	}
	w := failingMapWriter{}
	if m.mapWriter(w, nil) != acl.MapWriter(w) {
		t.Error("nil metrics wrapped the map writer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if m.countAccepts("x", ln) != ln {
		t.Error("nil metrics wrapped the listener")
	}
	m.observeMirrorWrite(time.Second, nil)
	if err := m.registerGauges(nil, nil); err != nil {
		t.Error(err)
	}
	if err := m.instrument(nil); err != nil {
		t.Error(err)
	}
	_ = fmt.Sprint(m)
}

// recordingHandler keeps the records handed to it.
type recordingHandler struct {
	level   slog.Level
	records []slog.Record
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// FuzzMetricsHandler logs arbitrary events through the counting handler:
// it never fails, passes exactly the records its next handler wants on
// unchanged, and counts at most one event and one level per record.
func FuzzMetricsHandler(f *testing.F) {
	f.Add("pop3 login failed", "reason", "throttled", int8(0))
	f.Add("smtp message accepted", "remote", "1", int8(0))
	f.Add("queue attempt", "state", "sent", int8(4))
	f.Add("relay grant", "ip", "192.0.2.1", int8(-4))
	f.Add("", "", "", int8(8))
	f.Fuzz(func(t *testing.T, msg, key, val string, level int8) {
		reg := promtext.NewRegistry()
		m := newMetrics(reg)
		next := &recordingHandler{level: slog.LevelWarn}
		h := m.handler(next)
		l := slog.Level(level)
		r := slog.NewRecord(time.Time{}, l, msg, 0)
		r.AddAttrs(slog.String(key, val))
		if h.Enabled(context.Background(), l) {
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if l >= slog.LevelWarn {
			if len(next.records) != 1 || next.records[0].Message != msg || attr(next.records[0], key) != val && key != "" {
				t.Fatalf("record not passed on unchanged: %+v", next.records)
			}
		} else if len(next.records) != 0 {
			t.Fatalf("a %v record reached a warn handler", l)
		}
		var buf bytes.Buffer
		if _, err := reg.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err := p.TextToMetricFamilies(&buf)
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, fam := range families {
			if !strings.HasPrefix(fam.GetName(), "popgate_") {
				continue
			}
			for _, mt := range fam.GetMetric() {
				total += mt.GetCounter().GetValue()
			}
		}
		if total > 2 {
			t.Fatalf("one record counted %v times", total)
		}
	})
}
