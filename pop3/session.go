package pop3

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// state is a POP3 session state (RFC 1939 §3); commands name the states
// they are valid in as a bit set.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
	stateUpdate
)

// readerSize is the per-session input buffer: larger than a command line
// (RFC 2449 §4) and small, because every idle session holds one.
const readerSize = 4096

// writerSize is the output buffer a session borrows from the server's pool
// while it has something to say; idle sessions hold none.
const writerSize = 16 * 1024

// goodbyeTimeout bounds the write of a last reply after a timeout.
const goodbyeTimeout = 5 * time.Second

// session owns everything about one connection.
type session struct {
	srv *Server
	cfg *Config
	log *slog.Logger
	ip  netip.Addr

	raw  net.Conn // the accepted connection; closing it ends the session
	conn net.Conn // raw, or the TLS connection over it
	tls  bool

	r       *bufio.Reader
	w       *bufio.Writer // borrowed from srv.writers; nil while idle
	cw      connWriter
	lineBuf []byte // assembles lines longer than the reader's buffer

	deadline  time.Time // end of the connection's lifetime
	apopStamp string    // the greeting's timestamp when APOP is on

	state    state
	user     string // from USER, waiting for PASS
	mbox     Mailbox
	msgs     []MessageInfo
	deleted  []bool
	ndeleted int
	errors   int // protocol errors so far
	badLogin int // refused logins so far
	commands int // commands handled so far

	mu   sync.Mutex // guards idle against Shutdown
	idle bool       // blocked reading the next command
}

// connWriter writes to the session's current connection, giving every
// write its own deadline so a client that stops reading is dropped.
type connWriter struct{ s *session }

func (cw connWriter) Write(p []byte) (int, error) {
	s := cw.s
	s.conn.SetWriteDeadline(earlier(s.cfg.Now().Add(s.cfg.CommandTimeout), s.deadline))
	return s.conn.Write(p)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func newSession(srv *Server, c net.Conn, ip netip.Addr, logger *slog.Logger, isTLS bool) *session {
	s := &session{
		srv:   srv,
		cfg:   &srv.cfg,
		log:   logger,
		ip:    ip,
		raw:   c,
		conn:  c,
		tls:   isTLS,
		r:     bufio.NewReaderSize(c, readerSize),
		state: stateAuthorization,
	}
	s.cw = connWriter{s}
	return s
}

// Errors that end the read loop.
var (
	errLineTooLong = errors.New("line too long")
	errShutdown    = errors.New("server shutting down")
)

// serve runs the session to its end. Whatever happens, the mailbox (if
// any) is closed exactly once and its deletions are applied only by QUIT.
func (s *session) serve() {
	defer s.finish()
	s.deadline = s.cfg.Now().Add(s.cfg.MaxLifetime)
	if tc, ok := s.conn.(*tls.Conn); ok {
		tc.SetDeadline(earlier(s.cfg.Now().Add(s.cfg.CommandTimeout), s.deadline))
		if err := tc.Handshake(); err != nil {
			s.log.Info("pop3 tls handshake failed", "err", err)
			return
		}
	}
	greeting := "+OK " + s.cfg.Hostname + " POP3 server ready"
	if s.apopEnabled() {
		var b [8]byte
		rand.Read(b[:])
		s.apopStamp = fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(b[:]), s.cfg.Now().Unix(), s.cfg.Hostname)
		greeting += " " + s.apopStamp
	}
	s.writeLine(greeting)
	for {
		line, err := s.readCommand()
		switch {
		case err == nil:
		case errors.Is(err, errLineTooLong):
			if s.fail(protoErr("line too long (RFC 2449 §4: %d octets at most)", MaxCommandLine)) {
				return
			}
			continue
		default:
			s.readFailed(err)
			return
		}
		if err := s.handle(line); err != nil {
			if !errors.Is(err, errClose) {
				s.log.Debug("pop3 session ends", "err", err)
			}
			return
		}
	}
}

// readFailed says goodbye after a read error or timeout, when the client
// may still be listening.
func (s *session) readFailed(err error) {
	var ne net.Error
	var msg string
	switch {
	case errors.Is(err, errShutdown) || s.srv.shutting.Load():
		msg = "-ERR [" + CodeSysTemp + "] server shutting down"
	case errors.As(err, &ne) && ne.Timeout():
		if !s.cfg.Now().Before(s.deadline) {
			msg = "-ERR [" + CodeSysTemp + "] connection lifetime exceeded"
		} else {
			msg = "-ERR autologout: idle for too long" // RFC 1939 §3
		}
	default:
		s.log.Debug("pop3 read failed", "err", err)
		return
	}
	s.log.Info("pop3 closing", "reason", msg[5:])
	s.deadline = s.cfg.Now().Add(goodbyeTimeout) // the lifetime may be over: allow the goodbye
	s.writeLine(msg)
}

// finish releases everything. A session that did not QUIT from the
// TRANSACTION state leaves the mailbox untouched (RFC 1939 §6).
//
// The mailbox is unlocked, and the connection slot given back, before the
// last reply is flushed: a client that reconnects as soon as it reads
// "+OK" after QUIT must not find its own finished session still holding
// the lock ([IN-USE]) or its slot ("too many connections").
func (s *session) finish() {
	if s.mbox != nil {
		if err := s.mbox.Close(); err != nil {
			s.log.Error("pop3 mailbox close failed", "user", s.user, "err", err)
		}
		s.mbox = nil
	}
	// The conversation is over: the last reply (still to be flushed) and
	// the lingering close must not hold a slot that counts against the
	// connection caps, or a client reconnecting at once is refused.
	s.srv.release(s)
	s.flush()
	s.lingeringClose()
}

// Lingering close: closing a TCP socket with unread input makes the kernel
// send RST, which can destroy the last reply still in flight (such as
// "-ERR too many errors"). So half-close first and drain a little.
const (
	lingerTimeout = 500 * time.Millisecond
	lingerBytes   = 64 * 1024
)

func (s *session) lingeringClose() {
	defer s.raw.Close()
	hc, ok := s.raw.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	s.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, s.raw, lingerBytes)
}

// readCommand flushes pending replies when no further command is waiting
// (so that pipelined commands share one write), then reads one line under
// the idle and lifetime deadlines.
func (s *session) readCommand() ([]byte, error) {
	if n := s.r.Buffered(); n == 0 || !hasLine(s.r, n) {
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	s.conn.SetReadDeadline(earlier(s.cfg.Now().Add(s.cfg.IdleTimeout), s.deadline))
	s.mu.Lock()
	if s.srv.shutting.Load() {
		s.mu.Unlock()
		return nil, errShutdown
	}
	s.idle = true
	s.mu.Unlock()
	line, err := s.readLine(MaxCommandLine)
	s.mu.Lock()
	s.idle = false
	s.mu.Unlock()
	return line, err
}

func hasLine(r *bufio.Reader, n int) bool {
	b, _ := r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// interruptIfIdle wakes a session blocked waiting for a command so that it
// sees the shutdown; busy sessions notice it before their next read.
func (s *session) interruptIfIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle {
		s.raw.SetReadDeadline(time.Unix(1, 0))
	}
}

// readLine reads one line of at most max octets including its line ending
// (CRLF, or a bare LF which is accepted too) and returns it without the
// ending. The result is valid until the next read. An over-long line is
// consumed up to its end and reported as errLineTooLong, keeping the
// dialog in step.
func (s *session) readLine(max int) ([]byte, error) {
	s.lineBuf = s.lineBuf[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(s.lineBuf)+len(frag) > max {
				return nil, s.drainLine()
			}
			s.lineBuf = append(s.lineBuf, frag...)
			continue
		}
		if err != nil {
			return nil, err
		}
		line := frag
		if len(s.lineBuf) > 0 {
			s.lineBuf = append(s.lineBuf, frag...)
			line = s.lineBuf
		}
		if len(line) > max {
			return nil, errLineTooLong
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
}

// drainLine discards input up to and including the next LF.
func (s *session) drainLine() error {
	for {
		_, err := s.r.ReadSlice('\n')
		if err == nil {
			return errLineTooLong
		}
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// out returns the output buffer, borrowing one from the pool if needed.
func (s *session) out() *bufio.Writer {
	if s.w == nil {
		s.w = s.srv.writers.Get().(*bufio.Writer)
		s.w.Reset(s.cw)
	}
	return s.w
}

// flush sends buffered replies and returns the buffer to the pool.
func (s *session) flush() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Flush()
	s.w.Reset(nil)
	s.srv.writers.Put(s.w)
	s.w = nil
	return err
}

// writeLine buffers one reply line; write errors surface at the next flush.
func (s *session) writeLine(line string) {
	w := s.out()
	w.WriteString(line)
	w.WriteString("\r\n")
}

// fail sends the reply for a handler's error and reports whether the
// session must end. *Error values are shown as they are; anything else is
// logged and becomes a generic [SYS/TEMP] reply (RFC 3206 §4).
func (s *session) fail(err error) (closeNow bool) {
	var pe *Error
	if !errors.As(err, &pe) {
		s.log.Error("pop3 internal error", "user", s.user, "err", err)
		pe = errInternal
	}
	switch {
	case pe.protocol:
		s.errors++
		if s.errors >= maxProtocolErrors {
			s.writeLine("-ERR too many errors, closing connection")
			return true
		}
	case pe.login:
		s.badLogin++
		if s.badLogin >= maxFailedLogins {
			s.writeLine("-ERR " + pe.Error() + ", too many failed logins, closing connection")
			return true
		}
	}
	s.writeLine("-ERR " + pe.Error())
	return false
}

// httpVerbs are first lines that show a web client or proxy probe.
var httpVerbs = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// handle parses and runs one command line. It returns a non-nil error
// when the session must end.
func (s *session) handle(raw []byte) error {
	s.commands++
	if bytes.IndexByte(raw, 0) >= 0 {
		if s.commands == 1 {
			s.writeLine("-ERR not a POP3 command")
			return errClose
		}
		return s.failOrClose(protoErr("NUL byte in command line"))
	}
	line := string(raw)
	keyword, rest, hasRest := strings.Cut(line, " ")
	keyword = strings.ToUpper(keyword)
	if s.commands == 1 && (httpVerbs[keyword] || len(raw) > 0 && raw[0] == 0x16) {
		s.writeLine("-ERR this is a POP3 server")
		return errClose
	}
	if s.commands == 1 && keyword == "PROXY" {
		// A PROXY v1 header from a peer not in Config.ProxyNetworks: its
		// claimed address is not believed, and the session is not served.
		s.log.Warn("pop3 proxy header from untrusted peer")
		s.writeLine("-ERR PROXY header not accepted from this address")
		return errClose
	}
	cmd, ok := commands[keyword]
	if !ok {
		return s.failOrClose(protoErr("unknown command"))
	}
	if cmd.states&s.state == 0 {
		return s.failOrClose(protoErr("%s not valid in this state", keyword))
	}
	var args []string
	if cmd.rawArg {
		if hasRest && rest != "" {
			args = []string{rest}
		}
	} else {
		args = strings.Fields(rest)
	}
	if len(args) < cmd.minArgs || len(args) > cmd.maxArgs {
		return s.failOrClose(protoErr("wrong number of arguments for %s", keyword))
	}
	err := cmd.fn(s, args)
	if err == nil {
		return nil
	}
	if errors.Is(err, errClose) {
		return err
	}
	return s.failOrClose(err)
}

func (s *session) failOrClose(err error) error {
	if s.fail(err) {
		return errClose
	}
	return nil
}
