package pop3

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popgate/popgate/auth/tlstest"
	"github.com/popgate/popgate/pop3/pop3test"
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

// client is the shared POP3 dialog client.
type client = pop3test.Client

// step is one exchange of a dialog table, written unkeyed for brevity:
// send a line ("" sends nothing), expect a reply starting with want (or
// pop3test.ClosedReply), and, if body is not nil, that multi-line body.
type step struct {
	send string
	want string
	body []string
}

// run plays a dialog table with pop3test's Run.
func run(c *client, steps []step) {
	all := make([]pop3test.Step, len(steps))
	for i, s := range steps {
		all[i] = pop3test.Step{Send: s.send, Want: s.want, Body: s.body}
	}
	c.Run(all)
}

func (e *env) dial(t testing.TB) *client { return pop3test.Dial(t, e.addr) }

// dialFrom connects from a chosen loopback source address.
func (e *env) dialFrom(t testing.TB, src string) *client { return pop3test.DialFrom(t, src, e.addr) }

// login runs the greeting and USER/PASS and checks that the maildrop was
// locked (stricter than pop3test's Login, which any +OK satisfies).
func login(c *client, user, pass string) {
	run(c, []step{{"", "+OK", nil}, {"USER " + user, "+OK", nil}, {"PASS " + pass, "+OK maildrop locked", nil}})
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
func selfSigned(t testing.TB) *tls.Config { return tlstest.New(t, "localhost").Server }

type netipAddr = netip.Addr

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
