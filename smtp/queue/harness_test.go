package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// fakeClock is the injected clock: time moves only when a test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeResolver answers MX and address lookups from maps; a missing name
// is NXDOMAIN. It is a test double for DNS, the only part not run for real.
type fakeResolver struct {
	mu    sync.Mutex
	mx    map[string][]*net.MX
	hosts map[string][]string
	fail  map[string]error
	calls int
}

func (r *fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err := r.fail[name]; err != nil {
		return nil, err
	}
	if mx, ok := r.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.hosts[host]; ok {
		return h, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// router maps the addresses the queue dials ("192.0.2.1:25") to real
// listeners; anything else is refused like a closed port.
type router struct {
	mu        sync.Mutex
	routes    map[string]string
	dials     []string
	active    int // connections the queue holds open
	maxActive int
}

// countedConn tells the router when the queue closes a connection.
type countedConn struct {
	net.Conn
	once sync.Once
	r    *router
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		c.r.active--
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

func (r *router) maxConns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxActive
}

func (r *router) route(from, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.routes == nil {
		r.routes = map[string]string{}
	}
	r.routes[from] = to
}

func (r *router) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dials = append(r.dials, addr)
	to, ok := r.routes[addr]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", addr, errors.New("connection refused"))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, to)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.active++
	r.maxActive = max(r.maxActive, r.active)
	r.mu.Unlock()
	return &countedConn{Conn: c, r: r}, nil
}

func (r *router) dialed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dials...)
}

// bounceRec is one DSN handed to the Bouncer.
type bounceRec struct {
	From string
	To   []string
	Body []byte
}

// bouncer collects DSNs; fail makes Inject fail.
type bouncer struct {
	mu   sync.Mutex
	ch   chan bounceRec
	all  []bounceRec
	fail error
}

func (b *bouncer) Inject(_ context.Context, from string, to []string, r io.Reader) error {
	b.mu.Lock()
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		return fail
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rec := bounceRec{From: from, To: to, Body: body}
	b.mu.Lock()
	b.all = append(b.all, rec)
	b.mu.Unlock()
	b.ch <- rec
	return nil
}

func (b *bouncer) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.all)
}

func (b *bouncer) wait(t *testing.T) bounceRec {
	t.Helper()
	select {
	case r := <-b.ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no bounce arrived")
		return bounceRec{}
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sink is smtptest's recording SMTP server.
type sink = smtptest.Sink

// harness is a Queue on a real temporary directory with an injected clock,
// a collecting Bouncer and an attempt notification channel.
type harness struct {
	q        *Queue
	cfg      Config
	clock    *fakeClock
	bounces  *bouncer
	attempts chan string
	logs     *syncBuffer
	resolver *fakeResolver
	router   *router
}

// newHarness builds a queue delivering to the smarthost s (if not nil) or
// through resolver and router otherwise; mod adjusts the Config.
func newHarness(t *testing.T, s *sink, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{
		clock:    newFakeClock(),
		bounces:  &bouncer{ch: make(chan bounceRec, 100)},
		attempts: make(chan string, 10000),
		logs:     &syncBuffer{},
		resolver: &fakeResolver{mx: map[string][]*net.MX{}, hosts: map[string][]string{}, fail: map[string]error{}},
		router:   &router{},
	}
	cfg := Config{
		Dir:          t.TempDir(),
		Hostname:     "relay.test",
		SmarthostTLS: TLSNone,
		MinRetry:     time.Second,
		MaxAge:       time.Hour,
		Resolver:     h.resolver,
		Dial:         h.router.Dial,
		Now:          h.clock.Now,
		Logger:       slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Bouncer:      h.bounces,
	}
	if s != nil {
		cfg.Smarthost = s.Addr
		h.router.route(s.Addr, s.Addr)
	}
	if mod != nil {
		mod(&cfg)
	}
	h.cfg = cfg
	h.q = h.open(t)
	return h
}

// open makes a Queue on the harness's directory (again, after a "crash").
func (h *harness) open(t *testing.T) *Queue {
	t.Helper()
	q, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	q.hookAttemptDone = func(id string) { h.attempts <- id }
	h.q = q
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// run starts the delivery loop until the test ends.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	q := h.q
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// waitAttempt waits for the next finished delivery attempt.
func (h *harness) waitAttempt(t *testing.T) string {
	t.Helper()
	select {
	case id := <-h.attempts:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery attempt finished")
		return ""
	}
}

// advance moves the clock and wakes the loop.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.q.kick()
}

func (h *harness) enqueue(t *testing.T, from string, to []string, body string) string {
	t.Helper()
	id, err := h.q.Enqueue(context.Background(), from, to, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// item returns the listed item id, failing if it is not queued.
func (h *harness) item(t *testing.T, id string) Item {
	t.Helper()
	items, err := h.q.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("%s not in the queue", id)
	return Item{}
}

func (h *harness) queued(t *testing.T) int {
	t.Helper()
	items, err := h.q.List()
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

const testMsg = "From: alice@local.test\r\nTo: bob@remote.test\r\nSubject: hello there\r\nMessage-Id: <m1@local.test>\r\n\r\nHi Bob.\r\n"
