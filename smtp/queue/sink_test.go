package queue

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sinkMsg is one message a sink accepted.
type sinkMsg struct {
	From string
	To   []string
	Body []byte
}

// sink is a real SMTP server on 127.0.0.1 built on go-smtp's server. Its
// replies are programmable per recipient; it can drop the connection in
// the middle of DATA, hold DATA until released, or require AUTH.
type sink struct {
	t    testing.TB
	srv  *smtp.Server
	ln   net.Listener
	addr string

	received chan sinkMsg

	mu        sync.Mutex
	msgs      []sinkMsg
	rcptFn    func(to string) error
	sessions  int
	rcptsSeen [][]string // recipients per session, in order
	active    int
	maxActive int
	authUser  string
	authPass  string
	gate      chan struct{} // if set, Data waits for a token

	tlsMails atomic.Int32 // MAIL commands received over TLS

	dropData atomic.Int32 // drop the connection in DATA this many times
	mail421  atomic.Int32 // answer MAIL with 421 and hang up this many times
	conns    []net.Conn   // every session's connection, for dropAll
	inData   chan struct{}
}

func newSink(t testing.TB, mods ...func(*smtp.Server)) *sink {
	t.Helper()
	s := &sink{t: t, received: make(chan sinkMsg, 10000), inData: make(chan struct{}, 10000)}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.MaxLineLength = 2000
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	for _, m := range mods {
		m(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.ln, s.addr = srv, ln, ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) setRcpt(fn func(to string) error) {
	s.mu.Lock()
	s.rcptFn = fn
	s.mu.Unlock()
}

func (s *sink) stats() (sessions, maxActive int, rcpts [][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions, s.maxActive, append([][]string(nil), s.rcptsSeen...)
}

// dropAll closes every session's connection from the server side, as a
// peer does when it times out an idle client.
func (s *sink) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// wait returns the next accepted message or fails the test.
func (s *sink) wait(t *testing.T) sinkMsg {
	t.Helper()
	select {
	case m := <-s.received:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("sink: no message arrived")
		return sinkMsg{}
	}
}

// waitData waits until a session reaches DATA or fails the test.
func (s *sink) waitData(t *testing.T) {
	t.Helper()
	select {
	case <-s.inData:
	case <-time.After(20 * time.Second):
		t.Fatal("sink: no session reached DATA")
	}
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
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

type sinkSession struct {
	s      *sink
	c      *smtp.Conn
	idx    int
	from   string
	to     []string
	authed bool
	closed bool
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		if user != ss.s.authUser || pass != ss.s.authPass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	needAuth := ss.s.authUser != ""
	ss.s.mu.Unlock()
	if needAuth && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	if ss.s.mail421.Add(-1) >= 0 {
		// RFC 5321 §3.8: a server shutting down answers 421 and closes.
		time.AfterFunc(50*time.Millisecond, func() { ss.c.Conn().Close() })
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "closing"}
	}
	if _, ok := ss.c.TLSConnectionState(); ok {
		ss.s.tlsMails.Add(1)
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
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
	if ss.s.dropData.Add(-1) >= 0 {
		var b [16]byte
		_, _ = io.ReadFull(r, b[:])
		ss.c.Conn().Close()
		return errors.New("sink: dropped mid-DATA")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := sinkMsg{From: ss.from, To: append([]string(nil), ss.to...), Body: b}
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
