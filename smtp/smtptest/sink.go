package smtptest

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// WaitTimeout bounds Sink.Wait and Sink.WaitData.
const WaitTimeout = 20 * time.Second

// Message is one message a Sink accepted.
type Message struct {
	From string
	To   []string
	Body []byte
}

// Sink is a real SMTP server on 127.0.0.1 (go-smtp's) that records every
// message it accepts. It can refuse recipients (SetRcpt), require AUTH
// PLAIN (RequireAuth), hold DATA until released (SetGate), answer MAIL
// with 421 and hang up (Mail421), drop the connection in the middle of
// DATA (DropData) or close every session (DropAll), as peers do.
type Sink struct {
	// Addr is the listening address, host:port.
	Addr string
	// Server is the running go-smtp server; change it only through the
	// options given to NewSink.
	Server *gosmtp.Server

	// Mail421 makes the next n MAIL commands get 421 and a close (RFC
	// 5321 §3.8: a server shutting down answers 421 and closes).
	Mail421 atomic.Int32
	// DropData makes the next n sessions close their connection after
	// reading a few bytes of DATA.
	DropData atomic.Int32
	// TLSMails counts MAIL commands received over TLS.
	TLSMails atomic.Int32

	received chan Message
	inData   chan struct{}

	mu        sync.Mutex
	msgs      []Message
	rcptFn    func(to string) error
	sessions  int
	rcptsSeen [][]string // recipients per session, in order
	active    int
	maxActive int
	authUser  string
	authPass  string
	gate      chan struct{}
	conns     []net.Conn
}

// NewSink starts a sink with explicit limits (go-smtp's zero values mean
// unlimited); opts may change the server (TLSConfig, limits) before it
// starts. The sink closes when the test ends.
func NewSink(t testing.TB, opts ...func(*gosmtp.Server)) *Sink {
	t.Helper()
	s := &Sink{received: make(chan Message, 10000), inData: make(chan struct{}, 10000)}
	srv := gosmtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.MaxLineLength = 2000
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	for _, o := range opts {
		o(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: sink listen: %v", err)
	}
	s.Server, s.Addr = srv, ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// SetRcpt makes every RCPT ask fn; a non-nil error (such as a
// *gosmtp.SMTPError) is the reply. nil accepts every recipient.
func (s *Sink) SetRcpt(fn func(to string) error) {
	s.mu.Lock()
	s.rcptFn = fn
	s.mu.Unlock()
}

// RequireAuth makes MAIL need a prior AUTH PLAIN as user with pass.
func (s *Sink) RequireAuth(user, pass string) {
	s.mu.Lock()
	s.authUser, s.authPass = user, pass
	s.mu.Unlock()
}

// SetGate makes every DATA wait for a value from (or the close of) gate
// before reading the message; nil lets DATA run at once.
func (s *Sink) SetGate(gate chan struct{}) {
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
}

// Stats returns the number of sessions so far, the most that were open
// at once, and the recipients of each session in order.
func (s *Sink) Stats() (sessions, maxActive int, rcpts [][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rcpts = make([][]string, len(s.rcptsSeen))
	for i, r := range s.rcptsSeen {
		rcpts[i] = append([]string(nil), r...)
	}
	return s.sessions, s.maxActive, rcpts
}

// Active returns the number of sessions open now.
func (s *Sink) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// DropAll closes every session's connection from the server side, as a
// peer does when it times out an idle client.
func (s *Sink) DropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// Count returns how many messages the sink has accepted.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Messages returns the accepted messages in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Received delivers each accepted message once, for tests that select
// on it themselves; Wait is the usual way.
func (s *Sink) Received() <-chan Message { return s.received }

// Wait returns the next accepted message or fails the test.
func (s *Sink) Wait(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-s.received:
		return m
	case <-time.After(WaitTimeout):
		t.Fatal("smtptest: sink: no message arrived")
		return Message{}
	}
}

// WaitData waits until a session reaches DATA or fails the test.
func (s *Sink) WaitData(t testing.TB) {
	t.Helper()
	select {
	case <-s.inData:
	case <-time.After(WaitTimeout):
		t.Fatal("smtptest: sink: no session reached DATA")
	}
}

// NewSession implements gosmtp.Backend.
func (s *Sink) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.active++
	s.maxActive = max(s.maxActive, s.active)
	s.rcptsSeen = append(s.rcptsSeen, nil)
	idx := len(s.rcptsSeen) - 1
	s.conns = append(s.conns, c.Conn())
	s.mu.Unlock()
	return &sinkSession{s: s, c: c, idx: idx}, nil
}

// sinkSession is one connection to a Sink.
type sinkSession struct {
	s      *Sink
	c      *gosmtp.Conn
	idx    int
	from   string
	to     []string
	authed bool
	closed bool
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		if user != ss.s.authUser || pass != ss.s.authPass {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.s.mu.Lock()
	needAuth := ss.s.authUser != ""
	ss.s.mu.Unlock()
	if needAuth && !ss.authed {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	if ss.s.Mail421.Add(-1) >= 0 {
		time.AfterFunc(50*time.Millisecond, func() { ss.c.Conn().Close() })
		return &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "closing"}
	}
	if _, ok := ss.c.TLSConnectionState(); ok {
		ss.s.TLSMails.Add(1)
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.s.mu.Lock()
	fn := ss.s.rcptFn
	ss.s.rcptsSeen[ss.idx] = append(ss.s.rcptsSeen[ss.idx], to)
	ss.s.mu.Unlock()
	if fn != nil {
		if err := fn(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	ss.s.inData <- struct{}{}
	ss.s.mu.Lock()
	gate := ss.s.gate
	ss.s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if ss.s.DropData.Add(-1) >= 0 {
		var b [16]byte
		_, _ = io.ReadFull(r, b[:])
		ss.c.Conn().Close()
		return errors.New("smtptest: sink: dropped mid-DATA")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Body: b}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	ss.s.received <- m
	return nil
}

func (ss *sinkSession) Reset() { ss.from, ss.to = "", nil }

func (ss *sinkSession) Logout() error {
	ss.s.mu.Lock()
	if !ss.closed {
		ss.closed = true
		ss.s.active--
	}
	ss.s.mu.Unlock()
	return nil
}
