package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popgate/popgate/auth/tlstest"
	"github.com/popgate/popgate/smtp/smtptest"
)

// ---- collaborators: small real implementations of the interfaces ----

type grant struct {
	user    string
	at      time.Time
	expires time.Time
}

// testPolicy relays for IPs with an unexpired grant (by the injected
// clock), rejects listed senders and connecting IPs, and records the
// client IPs it was asked about.
type testPolicy struct {
	mu            sync.Mutex
	now           func() time.Time
	grants        map[netip.Addr]grant
	relayIPs      map[netip.Addr]bool
	rejectConnect map[netip.Addr]bool
	discardIPs    map[netip.Addr]bool
	rejectFrom    map[string]bool
	rejectRcpt    map[string]Verdict
	seen          []string
}

func newTestPolicy(now func() time.Time) *testPolicy {
	return &testPolicy{
		now:           now,
		grants:        map[netip.Addr]grant{},
		relayIPs:      map[netip.Addr]bool{},
		rejectConnect: map[netip.Addr]bool{},
		discardIPs:    map[netip.Addr]bool{},
		rejectFrom:    map[string]bool{},
		rejectRcpt:    map[string]Verdict{},
	}
}

func (p *testPolicy) note(s string) {
	p.mu.Lock()
	p.seen = append(p.seen, s)
	p.mu.Unlock()
}

func (p *testPolicy) saw(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.seen {
		if x == s {
			return true
		}
	}
	return false
}

func (p *testPolicy) CheckConnect(c Client) Verdict {
	p.note("connect " + c.IP.String())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejectConnect[c.IP] {
		return Verdict{Action: ActionReject, Code: 554, Enhanced: "5.7.1", Text: "Go away", Reason: "test"}
	}
	if p.discardIPs[c.IP] {
		return Verdict{Action: ActionDiscard, Reason: "test"}
	}
	return Verdict{Action: ActionAccept}
}

func (p *testPolicy) CheckFrom(c Client, from string) Verdict {
	p.note("from " + c.IP.String() + " " + from)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejectFrom[from] {
		return Verdict{Action: ActionReject, Text: "Sender blocked", Reason: "test"}
	}
	return Verdict{Action: ActionAccept}
}

func (p *testPolicy) CheckRcpt(c Client, from, rcpt string) Verdict {
	p.note("rcpt " + c.IP.String() + " " + rcpt)
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.rejectRcpt[rcpt]; ok {
		return v
	}
	if p.relayIPs[c.IP] {
		return Verdict{Action: ActionRelay, Reason: "trusted network"}
	}
	if g, ok := p.grants[c.IP]; ok && p.now().Before(g.expires) {
		return Verdict{Action: ActionRelay, Reason: "pop grant", GrantUser: g.user, GrantTime: g.at}
	}
	return Verdict{Action: ActionAccept, Reason: "no relay permission"}
}

type testRecipients struct {
	m   map[string][]string
	err error
}

func (r *testRecipients) Resolve(_ context.Context, addr string) ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	if b, ok := r.m[addr]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("resolve %s: %w", addr, ErrNoSuchUser)
}

// fileDeliverer writes each message into dir/<mailbox>/<n>.eml with fsync.
type fileDeliverer struct {
	dir  string
	mu   sync.Mutex
	n    int
	err  error
	call chan struct{} // closed/sent on each call when non-nil
	from []string      // envelope sender of each call
}

func (d *fileDeliverer) Deliver(_ context.Context, from string, mailboxes []string, r io.Reader) error {
	d.mu.Lock()
	d.from = append(d.from, from)
	d.mu.Unlock()
	if d.call != nil {
		d.call <- struct{}{}
	}
	if d.err != nil {
		return d.err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.n++
	n := d.n
	d.mu.Unlock()
	for _, mb := range mailboxes {
		dir := filepath.Join(d.dir, mb)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := writeSync(filepath.Join(dir, fmt.Sprintf("%d.eml", n)), data); err != nil {
			return err
		}
	}
	return nil
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// messages returns the files delivered to a mailbox, in order.
func (d *fileDeliverer) messages(t testing.TB, mailbox string) []string {
	t.Helper()
	var out []string
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(d.dir, mailbox, fmt.Sprintf("%d.eml", i)))
		if errors.Is(err, os.ErrNotExist) {
			if i > 100 {
				return out
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
}

type spooled struct {
	from string
	to   []string
	data string
}

// fileSpooler writes each queued message to dir/<id>.eml with fsync.
type fileSpooler struct {
	dir     string
	mu      sync.Mutex
	queued  []spooled
	err     error
	release chan struct{} // when non-nil, Spool waits for it
	entered chan struct{}
}

func (s *fileSpooler) Spool(_ context.Context, from string, to []string, r io.Reader) (string, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.release != nil {
		<-s.release
	}
	if s.err != nil {
		return "", s.err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("q%d", len(s.queued)+1)
	if err := writeSync(filepath.Join(s.dir, id+".eml"), data); err != nil {
		return "", err
	}
	s.queued = append(s.queued, spooled{from, append([]string(nil), to...), string(data)})
	return id, nil
}

func (s *fileSpooler) all() []spooled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]spooled(nil), s.queued...)
}

type testAuth struct {
	users    map[string]string
	throttle bool
	err      error
}

func (a *testAuth) Authenticate(_ context.Context, _ netip.Addr, user, password string) (string, error) {
	switch {
	case a.err != nil:
		return "", a.err
	case a.throttle:
		return "", fmt.Errorf("auth: %s: %w", user, ErrAuthThrottled)
	case a.users[user] != "" && a.users[user] == password:
		return user, nil
	}
	return "", fmt.Errorf("auth: %s: %w", user, ErrBadCredentials)
}

type testOwner map[string][]string

func (o testOwner) MayUse(user, from string) bool {
	for _, a := range o[user] {
		if a == from {
			return true
		}
	}
	return false
}

// ---- server fixture ----

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

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
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

type env struct {
	srv       *Server
	cfg       Config
	policy    *testPolicy
	rcpts     *testRecipients
	deliverer *fileDeliverer
	spooler   *fileSpooler
	storage   Storage // nil: no check at MAIL
	auth      *testAuth
	clock     *fakeClock
	logs      *syncBuffer
	mx        string
	sub       string
	subs      string
	tlsClient *tls.Config
	// plaintextAuthOK replaces the server's loopback rule when set.
	plaintextAuthOK func(netip.Addr) bool
}

var testNow = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// startServer runs all three listeners on 127.0.0.1:0. setup may change
// the configuration and collaborators before the server is built.
func startServer(t testing.TB, setup func(*env)) *env {
	t.Helper()
	serverTLS, clientTLS := testTLS(t)
	e := &env{
		clock: &fakeClock{t: testNow},
		logs:  &syncBuffer{},
		rcpts: &testRecipients{m: map[string][]string{
			"alice@example.com":           {"alice@example.com"},
			"bob@example.com":             {"bob@example.com"},
			"team@example.com":            {"alice@example.com", "bob@example.com"},
			"alice@xn--bcher-kva.example": {"alice@example.com"},
		}},
		deliverer: &fileDeliverer{dir: t.TempDir()},
		spooler:   &fileSpooler{dir: t.TempDir()},
		auth:      &testAuth{users: map[string]string{"alice@example.com": "secret"}},
		tlsClient: clientTLS,
	}
	e.policy = newTestPolicy(e.clock.Now)
	e.cfg = Config{
		Hostname:      "mail.example.com",
		LocalDomains:  []string{"Example.COM.", "bücher.example"},
		TLS:           serverTLS,
		MaxErrors:     20,
		ReadTimeout:   10 * time.Second,
		WriteTimeout:  10 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           e.clock.Now,
		MaxConnsPerIP: 50,
	}
	if setup != nil {
		setup(e)
	}
	srv, err := NewServer(e.cfg, Deps{
		Policy:        e.policy,
		Recipients:    e.rcpts,
		Deliverer:     e.deliverer,
		Spooler:       e.spooler,
		Authenticator: e.auth,
		SenderOwner:   testOwner{"alice@example.com": {"alice@example.com", "a.smith@example.com"}},
		Storage:       e.storage,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	if e.plaintextAuthOK != nil {
		srv.plaintextAuthOK = e.plaintextAuthOK
	}
	listen := func(serve func(net.Listener) error) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = serve(l) }()
		return l.Addr().String()
	}
	e.mx = listen(srv.ServeMX)
	e.sub = listen(srv.ServeSubmission)
	e.subs = listen(srv.ServeSubmissions)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// testTLS makes a self-signed certificate for mail.example.com.
func testTLS(t testing.TB) (server, client *tls.Config) {
	c := tlstest.New(t, "mail.example.com")
	return c.Server, c.Client
}

// dialFrom connects from a chosen loopback address, which is how tests
// stand for different clients.
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ---- raw dialog client ----

// rawClient is the shared SMTP dialog client; step is one exchange of a
// dialog table.
type (
	rawClient = smtptest.Client
	step      = smtptest.Step
)

// raw dials from ip and reads the greeting.
func (e *env) raw(t testing.TB, from, addr string) (*rawClient, string) {
	t.Helper()
	rc := smtptest.NewClient(t, dialFrom(t, from, addr))
	return rc, rc.Reply()
}

// waitLog waits until the log contains s (logs are written by server
// goroutines slightly after the reply).
func (e *env) waitLog(t testing.TB, s string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out := e.logs.String(); strings.Contains(out, s) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("log lacks %q:\n%s", s, e.logs.String())
	return ""
}

// logLines returns the log lines containing s.
func (e *env) logLines(s string) []string {
	var out []string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

const simpleMsg = "From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
