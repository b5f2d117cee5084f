package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// memMsg is a stored message of the in-memory maildrop.
type memMsg struct {
	uid  string
	data []byte
	seen bool
}

// memStore is one user's mailbox contents plus a record of what the
// server did with it.
type memStore struct {
	msgs    []*memMsg
	locked  bool
	commits [][]int
	closes  int
	gone    map[string]bool // UIDs whose Open reports ErrMessageGone
}

// memDrop is a Maildrop over byte slices, safe for concurrent sessions.
type memDrop struct {
	mu        sync.Mutex
	boxes     map[string]*memStore
	openErr   error
	commitErr error
	closed    chan string // receives the user at every Mailbox.Close
}

func newMemDrop() *memDrop {
	return &memDrop{boxes: make(map[string]*memStore), closed: make(chan string, 1000)}
}

func (d *memDrop) add(user string, msgs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.boxes[user]
	if st == nil {
		st = &memStore{gone: map[string]bool{}}
		d.boxes[user] = st
	}
	for _, m := range msgs {
		st.msgs = append(st.msgs, &memMsg{uid: fmt.Sprintf("uid-%d-%d", len(st.msgs)+1, len(m)), data: []byte(m)})
	}
}

func (d *memDrop) store(user string) *memStore {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.boxes[user]
}

// snapshot returns a copy of what the test needs to check, under the lock.
func (d *memDrop) state(user string) (n int, commits [][]int, closes int, locked bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.boxes[user]
	return len(st.msgs), append([][]int(nil), st.commits...), st.closes, st.locked
}

func (d *memDrop) Open(_ context.Context, user string) (Mailbox, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.openErr != nil {
		return nil, d.openErr
	}
	st := d.boxes[user]
	if st == nil {
		return nil, fmt.Errorf("memdrop: no mailbox for %q", user)
	}
	if st.locked {
		return nil, fmt.Errorf("memdrop: %s: %w", user, ErrMailboxInUse)
	}
	st.locked = true
	return &memBox{d: d, user: user, st: st, snap: append([]*memMsg(nil), st.msgs...)}, nil
}

type memBox struct {
	d    *memDrop
	user string
	st   *memStore
	snap []*memMsg
}

func (b *memBox) List() ([]MessageInfo, error) {
	out := make([]MessageInfo, len(b.snap))
	for i, m := range b.snap {
		out[i] = MessageInfo{UID: m.uid, Size: crlfSize(m.data)}
	}
	return out, nil
}

func (b *memBox) Open(i int) (io.ReadCloser, error) {
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	if b.st.gone[b.snap[i].uid] {
		return nil, fmt.Errorf("memdrop: message %d: %w", i, ErrMessageGone)
	}
	return io.NopCloser(bytes.NewReader(b.snap[i].data)), nil
}

func (b *memBox) Commit(deleted []int) error {
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	b.st.commits = append(b.st.commits, append([]int{}, deleted...))
	if b.d.commitErr != nil {
		return b.d.commitErr
	}
	del := map[*memMsg]bool{}
	for _, i := range deleted {
		del[b.snap[i]] = true
	}
	var keep []*memMsg
	for _, m := range b.st.msgs {
		if !del[m] {
			m.seen = true
			keep = append(keep, m)
		}
	}
	b.st.msgs = keep
	return nil
}

func (b *memBox) Close() error {
	b.d.mu.Lock()
	b.st.locked = false
	b.st.closes++
	b.d.mu.Unlock()
	b.d.closed <- b.user
	return nil
}

// crlfSize counts octets with every bare LF as CRLF.
func crlfSize(data []byte) int64 {
	n := int64(len(data))
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			n++
		}
	}
	return n
}

// memAuth is an Authenticator over a map of user to password, with
// aliases and a set of throttled IPs.
type memAuth struct {
	mu        sync.Mutex
	users     map[string]string // canonical user -> password
	throttled map[netip.Addr]bool
	err       error // returned for every call when set
	calls     []string
}

func (a *memAuth) Authenticate(_ context.Context, ip netip.Addr, user, password string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, user)
	if a.err != nil {
		return "", a.err
	}
	if a.throttled[ip] {
		return "", fmt.Errorf("limiter: %s: %w", ip, ErrThrottled)
	}
	canonical := strings.ToLower(user)
	if !strings.Contains(canonical, "@") {
		canonical += "@example.com"
	}
	if pw, ok := a.users[canonical]; !ok || pw != password {
		return "", fmt.Errorf("auth: %s: %w", user, ErrBadCredentials)
	}
	return canonical, nil
}

// memObserver records successful logins.
type memObserver struct {
	ch chan string // "user ip"
}

func (o *memObserver) LoginSucceeded(user string, ip netip.Addr) {
	select {
	case o.ch <- user + " " + ip.String():
	default: // benchmarks log in more often than anyone reads
	}
}

// syncBuffer is a goroutine-safe log sink.
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

// Stored test messages: LF endings with a dot line, CRLF endings, and no
// final line ending.
const (
	msg1 = "From: bob@example.com\nSubject: one\n\nHello\n.dot line\n..two dots\nlast\n"
	msg2 = "From: carol@example.com\r\nSubject: two\r\n\r\nCRLF body\r\nsecond\r\n"
	msg3 = "Subject: three\n\nno final newline"
)

// env is a running server with its backends.
type env struct {
	srv  *Server
	addr string
	drop *memDrop
	auth *memAuth
	obs  *memObserver
	logs *syncBuffer
	cfg  Config
}

// newEnv starts a plain listener on 127.0.0.1:0; tweak adjusts the
// configuration first.
func newEnv(t testing.TB, tweak func(*Config)) *env {
	t.Helper()
	e := &env{
		drop: newMemDrop(),
		auth: &memAuth{users: map[string]string{
			"alice@example.com": "secret",
			"bob@example.com":   "pass word",
		}, throttled: map[netip.Addr]bool{}},
		obs:  &memObserver{ch: make(chan string, 100)},
		logs: &syncBuffer{},
	}
	e.drop.add("alice@example.com", msg1, msg2, msg3)
	e.drop.add("bob@example.com")
	e.cfg = Config{
		Hostname: "pop.example.com",
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.srv = NewServer(e.cfg, e.auth, e.drop, e.obs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return e
}

// client is a test POP3 client speaking over a real connection.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (e *env) dial(t testing.TB) *client {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

// dialFrom connects from a chosen loopback source address.
func (e *env) dialFrom(t testing.TB, src string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

func newClient(t testing.TB, c net.Conn) *client {
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// line reads one response line, CRLF checked and stripped.
func (c *client) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// multi reads the body of a multi-line response, un-stuffing dots.
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// closed asserts the server closed the connection.
func (c *client) closed() {
	c.t.Helper()
	if s, err := c.r.ReadString('\n'); err == nil || s != "" {
		c.t.Fatalf("connection still open: read %q, %v", s, err)
	}
}

// step is one exchange of a dialog: send a line ("" sends nothing) and
// expect a reply starting with want. body, if not nil, is the expected
// multi-line body. want "<closed>" expects the server to have closed.
type step struct {
	send string
	want string
	body []string
}

func (c *client) run(steps []step) {
	c.t.Helper()
	for i, s := range steps {
		if s.send != "" {
			c.send(s.send)
		}
		if s.want == "<closed>" {
			c.closed()
			continue
		}
		got := c.line()
		if !strings.HasPrefix(got, s.want) {
			c.t.Fatalf("step %d %q: got %q, want prefix %q", i, s.send, got, s.want)
		}
		if s.body != nil {
			body := c.multi()
			if strings.Join(body, "\n") != strings.Join(s.body, "\n") {
				c.t.Fatalf("step %d %q: body\n%q\nwant\n%q", i, s.send, body, s.body)
			}
		}
	}
}

// login runs the greeting and USER/PASS for alice.
func (c *client) login(user, pass string) {
	c.t.Helper()
	c.run([]step{{"", "+OK", nil}, {"USER " + user, "+OK", nil}, {"PASS " + pass, "+OK maildrop locked", nil}})
}

// waitClosed waits until the mailbox of user was closed n times in all.
func (e *env) waitClosed(t testing.TB, user string) {
	t.Helper()
	select {
	case u := <-e.drop.closed:
		if u != user {
			t.Fatalf("closed mailbox of %q, want %q", u, user)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mailbox of %s never closed", user)
	}
}

// selfSigned makes a TLS configuration with a fresh certificate for
// 127.0.0.1 and localhost.
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

type netipAddr = netip.Addr

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
