package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/cmd/popgate/internal/promtext"
)

// Limits of the /metrics HTTP server. A scrape is one small GET; anything
// slower or larger is a misbehaving client.
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsReadTimeout       = 10 * time.Second
	metricsWriteTimeout      = 30 * time.Second
	metricsIdleTimeout       = 60 * time.Second
	metricsMaxHeaderBytes    = 16 << 10
	metricsShutdownTimeout   = 5 * time.Second
	// metricsScrapeTimeout bounds one scrape (the queue gauges read every
	// envelope from disk).
	metricsScrapeTimeout = 20 * time.Second
)

// metrics are popgate's Prometheus metrics, kept and written by
// internal/promtext. Most are counted from the
// fixed-wording log events as they pass through handler, so that the log
// and the counters cannot disagree and no protocol package knows about
// Prometheus. A nil *metrics is valid and does nothing, so the wiring needs
// no branches when [metrics] listen is empty.
type metrics struct {
	pop3Logins     *promtext.CounterVec
	smtpAuth       *promtext.CounterVec
	grants         *promtext.CounterVec
	grantsSharing  *promtext.CounterVec
	relayDecisions *promtext.CounterVec
	smtpRejections *promtext.CounterVec
	messages       *promtext.CounterVec
	deliveries     *promtext.CounterVec
	connections    *promtext.CounterVec
	connsRefused   *promtext.CounterVec
	logEvents      *promtext.CounterVec
	mirrorWrite    *promtext.HistogramVec

	reg      *promtext.Registry
	gaugesMu sync.Mutex
	gauges   bool

	// events maps a log message to what it counts.
	events map[string]func(r slog.Record)
}

// newMetrics creates popgate's metrics and registers them, with the Go
// runtime and process collectors and popgate_build_info, in reg.
func newMetrics(reg *promtext.Registry) *metrics {
	counter := promtext.NewCounterVec
	m := &metrics{
		reg: reg,
		pop3Logins: counter("popgate_pop3_logins_total",
			"POP3 logins by result: ok, failed (bad credentials or internal error), throttled, in_use (mailbox locked).", "result"),
		smtpAuth: counter("popgate_smtp_auth_total",
			"SMTP AUTH attempts by result: ok, failed, throttled.", "result"),
		grants: counter("popgate_grants_total",
			"POP-before-SMTP relay grants by event: granted (or extended), expired, revoked, refused (never_grant or no usable address).", "event"),
		grantsSharing: counter("popgate_grants_sharing_total",
			"Shared grants store (relay.grants_url) events: lost (store unreachable, local grants only), restored (sharing resumed), written_back (grants made during an outage written to the store).", "event"),
		relayDecisions: counter("popgate_relay_decisions_total",
			"Relay decisions: denied counts refused remote recipients (RCPT); granted_by_pop and allowed (trusted network, static RELAY rule or SMTP AUTH) count accepted messages with remote recipients.", "result"),
		smtpRejections: counter("popgate_smtp_rejections_total",
			"SMTP refusals other than relay denials, by stage: connect, sender, recipient, unknown_recipient, storage (452 4.3.1: the mail filesystem is full), loop (554 5.4.6).", "stage"),
		messages: counter("popgate_messages_total",
			"Messages by event: accepted (250 after DATA), enqueued (into the outbound queue, DSNs included), done (left the queue: every recipient sent or bounced), deferred (an attempt left recipients pending), bounced (a DSN was sent).", "event"),
		deliveries: counter("popgate_deliveries_total",
			"Outbound delivery attempts per recipient by result: sent, deferred, failed.", "result"),
		connections: counter("popgate_connections_total",
			"Connections accepted, by listener (configuration key, e.g. pop3.listen).", "listener"),
		connsRefused: counter("popgate_connections_refused_total",
			"Connections refused for exceeding a connection limit, by protocol.", "proto"),
		logEvents: counter("popgate_log_events_total",
			"Log records at warn and error level, whatever log.level is.", "level"),
		mirrorWrite: promtext.NewHistogramVec("popgate_mirror_write_seconds",
			"Time to rewrite one access map file, by result: ok or error.", "result",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}),
	}
	reg.Register(m.pop3Logins, m.smtpAuth, m.grants, m.grantsSharing, m.relayDecisions, m.smtpRejections,
		m.messages, m.deliveries, m.connections, m.connsRefused, m.logEvents, m.mirrorWrite,
		promtext.GoCollector{},
		promtext.ProcessCollector{},
		promtext.GaugeFunc{
			Name:   "popgate_build_info",
			Help:   "Always 1; the version label is the running build.",
			Labels: []promtext.Label{{Name: "version", Value: version}},
			Value:  func() float64 { return 1 },
		},
	)
	// Label values known in advance start at 0, so that rate() and alerts
	// see a series before the first event.
	for _, v := range []string{"ok", "failed", "throttled", "in_use"} {
		m.pop3Logins.With(v)
	}
	for _, v := range []string{"ok", "failed", "throttled"} {
		m.smtpAuth.With(v)
	}
	for _, v := range []string{"granted", "expired", "revoked", "refused"} {
		m.grants.With(v)
	}
	for _, v := range []string{"lost", "restored", "written_back"} {
		m.grantsSharing.With(v)
	}
	for _, v := range []string{"denied", "granted_by_pop", "allowed"} {
		m.relayDecisions.With(v)
	}
	for _, v := range []string{"connect", "sender", "recipient", "unknown_recipient"} {
		m.smtpRejections.With(v)
	}
	for _, v := range []string{"accepted", "enqueued", "done", "deferred", "bounced"} {
		m.messages.With(v)
	}
	for _, v := range []string{"sent", "deferred", "failed"} {
		m.deliveries.With(v)
	}
	for _, v := range []string{"pop3", "smtp"} {
		m.connsRefused.With(v)
	}
	for _, v := range []string{"warn", "error"} {
		m.logEvents.With(v)
	}
	m.events = m.eventTable()
	return m
}

// eventTable lists the log messages that are counted. The wording is
// fixed in the packages that log them (pop3, smtp, smtp/queue, acl):
// changing one there must change it here, which metrics_test.go catches.
func (m *metrics) eventTable() map[string]func(slog.Record) {
	inc := func(c *promtext.CounterVec, label string) func(slog.Record) {
		ctr := c.With(label)
		return func(slog.Record) { ctr.Inc() }
	}
	return map[string]func(slog.Record){
		"pop3 login ok": inc(m.pop3Logins, "ok"),
		"pop3 login failed": func(r slog.Record) {
			switch attr(r, "reason") {
			case "throttled":
				m.pop3Logins.With("throttled").Inc()
			case "mailbox in use":
				m.pop3Logins.With("in_use").Inc()
			default:
				m.pop3Logins.With("failed").Inc()
			}
		},
		"smtp auth ok":        inc(m.smtpAuth, "ok"),
		"smtp auth failed":    inc(m.smtpAuth, "failed"),
		"smtp auth throttled": inc(m.smtpAuth, "throttled"),

		"relay grant":         inc(m.grants, "granted"),
		"relay expire":        inc(m.grants, "expired"),
		"relay revoke":        inc(m.grants, "revoked"),
		"relay grant refused": inc(m.grants, "refused"),

		"relay grants sharing lost": inc(m.grantsSharing, "lost"),
		"relay grants sharing restored": func(r slog.Record) {
			m.grantsSharing.With("restored").Inc()
			m.grantsWrittenBack(r)
		},
		// The first connection may write back logins taken while the
		// store was unreachable at start.
		"relay grants shared": m.grantsWrittenBack,

		"smtp relay denied":         inc(m.relayDecisions, "denied"),
		"smtp connection rejected":  inc(m.smtpRejections, "connect"),
		"smtp sender denied":        inc(m.smtpRejections, "sender"),
		"smtp sender rejected":      inc(m.smtpRejections, "sender"),
		"smtp recipient rejected":   inc(m.smtpRejections, "recipient"),
		"smtp unknown recipient":    inc(m.smtpRejections, "unknown_recipient"),
		"smtp insufficient storage": inc(m.smtpRejections, "storage"),
		"smtp mail loop":            inc(m.smtpRejections, "loop"),

		"smtp message accepted": func(r slog.Record) {
			m.messages.With("accepted").Inc()
			if attr(r, "remote_rcpts") == "0" || attr(r, "remote_rcpts") == "" {
				return
			}
			if attr(r, "relay_grant") != "" {
				m.relayDecisions.With("granted_by_pop").Inc()
			} else {
				m.relayDecisions.With("allowed").Inc()
			}
		},
		"queue enqueued": inc(m.messages, "enqueued"),
		"queue done":     inc(m.messages, "done"),
		"queue deferred": inc(m.messages, "deferred"),
		"queue bounced":  inc(m.messages, "bounced"),
		"queue attempt": func(r slog.Record) {
			switch attr(r, "state") {
			case "sent":
				m.deliveries.With("sent").Inc()
			case "pending":
				m.deliveries.With("deferred").Inc()
			default:
				m.deliveries.With("failed").Inc()
			}
		},
		"pop3 connection refused": inc(m.connsRefused, "pop3"),
		"smtp connection refused": inc(m.connsRefused, "smtp"),
	}
}

// attr returns the value of the record's top-level attribute key as text,
// or "" when the record has none.
func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.Resolve().String()
			return false
		}
		return true
	})
	return v
}

// handler returns a slog.Handler that counts popgate's log events and
// passes every record next would accept on to it. Counted events are
// counted whatever the log level: with log.level = "warn" the info-level
// "pop3 login ok" is not written but still counted.
func (m *metrics) handler(next slog.Handler) slog.Handler {
	if m == nil {
		return next
	}
	return &countingHandler{m: m, next: next}
}

// countingHandler is the slog.Handler built by metrics.handler.
type countingHandler struct {
	m    *metrics
	next slog.Handler
}

// Enabled accepts every record at info level or above, so that events are
// counted even when next would drop them, and whatever next accepts.
func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

// Handle counts r and hands it to next if next wants it.
func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if count, ok := h.m.events[r.Message]; ok {
		count(r)
	}
	switch {
	case r.Level >= slog.LevelError:
		h.m.logEvents.With("error").Inc()
	case r.Level >= slog.LevelWarn:
		h.m.logEvents.With("warn").Inc()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs keeps counting below a logger.With.
func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandler{m: h.m, next: h.next.WithAttrs(attrs)}
}

// grantsWrittenBack counts the grants a reconnection wrote back.
func (m *metrics) grantsWrittenBack(r slog.Record) {
	if n, err := strconv.Atoi(attr(r, "written_back")); err == nil && n > 0 {
		m.grantsSharing.With("written_back").Add(float64(n))
	}
}

// WithGroup keeps counting below a logger.WithGroup; a record's own
// attributes stay readable by attr.
func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{m: h.m, next: h.next.WithGroup(name)}
}

// registerGauges adds the gauges read at scrape time: live relay grants,
// and the outbound queue's length and the age of its oldest message
// (queueSize is called once per scrape). It may be called once.
func (m *metrics) registerGauges(liveGrants func() int, queueSize func() (n int, oldest time.Duration)) error {
	if m == nil {
		return nil
	}
	m.gaugesMu.Lock()
	defer m.gaugesMu.Unlock()
	if m.gauges {
		return errors.New("metrics: gauges already registered")
	}
	m.reg.Register(promtext.GaugeFunc{
		Name:  "popgate_relay_grants",
		Help:  "Live POP-before-SMTP relay grants.",
		Value: func() float64 { return float64(liveGrants()) },
	}, queueCollector{size: queueSize})
	m.gauges = true
	return nil
}

// queueCollector reports both queue gauges from one call of size, which
// reads the queue from disk.
type queueCollector struct {
	size func() (int, time.Duration)
}

// Collect reads the queue once and writes both gauges.
func (c queueCollector) Collect(w *promtext.Writer) {
	n, oldest := c.size()
	w.Single("popgate_queue_messages", "Messages in the outbound queue.", "gauge", float64(n))
	w.Single("popgate_queue_oldest_seconds", "Age of the oldest message in the outbound queue; 0 when it is empty.", "gauge", oldest.Seconds())
}

// observeMirrorWrite records how long one access map rewrite took.
func (m *metrics) observeMirrorWrite(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.mirrorWrite.With(result).Observe(d.Seconds())
}

// mapWriter wraps w so that every map rewrite is timed into
// popgate_mirror_write_seconds. A nil *metrics returns w itself.
func (m *metrics) mapWriter(w acl.MapWriter, now func() time.Time) acl.MapWriter {
	if m == nil {
		return w
	}
	if now == nil {
		now = time.Now
	}
	return timedMapWriter{next: w, m: m, now: now}
}

// timedMapWriter is the acl.MapWriter built by metrics.mapWriter.
type timedMapWriter struct {
	next acl.MapWriter
	m    *metrics
	now  func() time.Time
}

var _ acl.MapWriter = timedMapWriter{}

// WriteMap writes through next and records the time it took.
func (w timedMapWriter) WriteMap(path string, entries []acl.MapEntry) error {
	start := w.now()
	err := w.next.WriteMap(path, entries)
	w.m.observeMirrorWrite(w.now().Sub(start), err)
	return err
}

// countAccepts wraps ln so that every accepted connection is counted in
// popgate_connections_total{listener=name}. pop3 has no per-connection
// log event, so connections are counted at the socket instead.
func (m *metrics) countAccepts(name string, ln net.Listener) net.Listener {
	if m == nil {
		return ln
	}
	return &countingListener{Listener: ln, accepted: m.connections.With(name)}
}

// countingListener is the net.Listener built by metrics.countAccepts.
type countingListener struct {
	net.Listener
	accepted *promtext.Counter
}

// Accept counts each connection the kernel hands over.
func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Inc()
	}
	return c, err
}

// instrument wires m into a built server: it counts accepted connections
// on every listener and registers the grants and queue gauges. Call it
// after assemble and before run.
func (m *metrics) instrument(s *services) error {
	if m == nil {
		return nil
	}
	// Gauges first: a second call fails here, before wrapping the
	// listeners twice.
	if err := m.registerGauges(func() int { return len(s.grants.List()) }, s.queueStats); err != nil {
		return err
	}
	if s.shared != nil {
		m.reg.Register(promtext.GaugeFunc{
			Name: "popgate_grants_store_up",
			Help: "1 while the shared grants store (relay.grants_url) is reachable and grants are shared, 0 while this instance relies on its own grants.",
			Value: func() float64 {
				if s.shared.Status().Up {
					return 1
				}
				return 0
			},
		})
	}
	for i := range s.listeners {
		s.listeners[i].ln = m.countAccepts(s.listeners[i].name, s.listeners[i].ln)
	}
	return nil
}

// queueStats returns the queue's length and the age of its oldest
// message, for the queue gauges. A queue it cannot read is logged and
// reported as empty.
func (s *services) queueStats() (int, time.Duration) {
	items, err := s.queue.List()
	if err != nil {
		s.logger.Error("metrics: queue unreadable", "err", err)
		return 0, 0
	}
	var oldest time.Duration
	for _, it := range items {
		oldest = max(oldest, it.Age)
	}
	return len(items), oldest
}

// serveMetrics serves reg as Prometheus text on http://addr/metrics until
// ctx is done, and returns the bound listener (addr may use port 0).
func serveMetrics(ctx context.Context, addr string, reg *promtext.Registry) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", http.TimeoutHandler(reg.Handler(), metricsScrapeTimeout, "metrics: scrape timed out\n"))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "popgate metrics: /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln, nil
}
