package smtp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// BareNewline says what the server does with a bare CR or a bare LF (one
// not part of a CRLF pair) in a command line or in message text.
type BareNewline string

const (
	// BareNewlineReject refuses them everywhere, as sendmail 8.18 and
	// Postfix (smtpd_forbid_bare_newline = reject) do: a command line
	// gets 500 5.5.2, a message 550 5.5.2 and nothing of it is kept.
	BareNewlineReject BareNewline = "reject"
	// BareNewlineNormalize relaxes that for clients in trusted networks
	// and authenticated sessions (old local scripts): a bare LF becomes
	// CRLF, a bare CR in message text becomes a space, so it can never
	// start a new header line. Everybody else is still refused.
	BareNewlineNormalize BareNewline = "normalize"
)

// Replies written by the wire itself, before go-smtp sees the line.
var (
	errCmdTooLong = reply(500, "5.5.6", "Command line too long")
	errCmdBareLF  = reply(500, "5.5.2", "Command line must end with CRLF, not a bare LF")
	errCmdBareCR  = reply(500, "5.5.2", "Bare CR in command line")
	errCmdNUL     = reply(500, "5.5.2", "NUL in command line")
	errCmdUnknown = reply(500, "5.5.2", "Command unrecognized")
	// RFC 5321 §2.3.8: lines end with CRLF; 550 as Postfix's
	// smtpd_forbid_bare_newline_reject_code.
	errDataBareLF = reply(550, "5.5.2", "Message contains a bare LF; lines must end with CRLF")
	errDataBareCR = reply(550, "5.5.2", "Message contains a bare CR; lines must end with CRLF")
)

// knownVerbs are the verbs go-smtp dispatches; anything else gets
// 500 5.5.2 (RFC 5321 §4.2.4) from the wire. STARTTLS is matched by
// prefix, as go-smtp does.
var knownVerbs = map[string]bool{
	"HELO": true, "EHLO": true, "LHLO": true, "MAIL": true, "RCPT": true,
	"DATA": true, "BDAT": true, "RSET": true, "NOOP": true, "QUIT": true,
	"VRFY": true, "AUTH": true, "EXPN": true, "HELP": true, "SEND": true,
	"SOML": true, "SAML": true, "TURN": true,
}

// wireMode is what the next client octets are.
type wireMode int

const (
	modeCommand wireMode = iota // command lines (and AUTH responses)
	modeData                    // DATA text after 354, up to CRLF.CRLF
	modeChunk                   // a BDAT chunk of chunk octets
)

// End-of-data states, exactly those of go-smtp's dataReader, so the wire
// and go-smtp agree octet for octet where DATA ends: only CRLF.CRLF does.
const (
	dotBeginLine = iota
	dotDot
	dotDotCR
	dotCR
	dotData
	dotEnd
)

// wire sits between a connection's transport (a trackedConn, or the
// tls.Conn over it) and go-smtp's line reader, through go-smtp's WrapText
// hook; after STARTTLS go-smtp makes a new one over the TLS connection.
// It follows the dialogue from both directions: go-smtp's replies tell it
// when DATA text begins (354) and when the next line answers an AUTH
// challenge (334), and the BDAT command line gives the chunk size.
//
// Command lines are handed to go-smtp one per Read, complete and checked:
// at most Config.MaxLineLength octets with CRLF (RFC 5321 §4.5.3.1.4
// allows 512; extensions need more), no NUL, no bare CR, CRLF-terminated,
// a known verb. A bad line is answered here (and counted towards
// MaxErrors) and dropped whole; the session goes on. Because go-smtp
// reads again only after it answered everything it was given, these
// replies keep their place in the dialogue.
//
// Message text (DATA and BDAT) passes through unchanged and without any
// line limit: RFC 5321 §4.5.3.1.6 asks receivers to take longer lines
// than the 1000 octets senders must keep to, and the size limit bounds
// the message. Its line endings are checked by the session (normalizer).
type wire struct {
	conn net.Conn // the transport: plain trackedConn or tls.Conn
	srv  *Server
	tc   *trackedConn

	buf  []byte // raw input; buf[r:w] not yet handed over
	r, w int
	err  error // the transport's read error, returned once buf is empty

	mode     wireMode
	dot      int   // end-of-data state in modeData
	chunk    int64 // octets left in modeChunk
	authLine bool  // the next line answers a 334 challenge
	pending  []byte
	scratch  []byte
}

// newWire is the go-smtp WrapText hook. A new wire (a new connection or
// STARTTLS) also forgets any authentication: go-smtp starts a new session.
func (s *Server) newWire(conn net.Conn) io.ReadWriter {
	tc := trackedOf(conn)
	if tc == nil { // only connections from wrapListener reach go-smtp
		return conn
	}
	tc.authed.Store(false)
	return &wire{
		conn: conn,
		srv:  s,
		tc:   tc,
		buf:  make([]byte, max(2*s.cfg.MaxLineLength, wireBufSize)),
	}
}

// wireBufSize is the least input buffer of a connection.
const wireBufSize = 16 << 10

// Write passes go-smtp's replies on and notes the ones that change what
// the client sends next. go-smtp flushes each reply line by itself.
func (w *wire) Write(p []byte) (int, error) {
	switch {
	case bytes.HasPrefix(p, []byte("354")):
		w.mode, w.dot = modeData, dotBeginLine
	case bytes.HasPrefix(p, []byte("334")):
		w.authLine = true
	}
	return w.conn.Write(p)
}

// Read hands go-smtp the next checked command line, or message text.
func (w *wire) Read(p []byte) (int, error) {
	if len(w.pending) > 0 {
		n := copy(p, w.pending)
		w.pending = w.pending[n:]
		return n, nil
	}
	switch w.mode {
	case modeData:
		return w.readData(p)
	case modeChunk:
		return w.readChunk(p)
	}
	return w.readCommand(p)
}

// fill reads more input after what is buffered, moving it to the front.
func (w *wire) fill() error {
	if w.r == w.w && w.err != nil {
		return w.err
	}
	if w.r > 0 {
		w.w = copy(w.buf, w.buf[w.r:w.w])
		w.r = 0
	}
	if w.w == len(w.buf) {
		return nil
	}
	n, err := w.conn.Read(w.buf[w.w:])
	w.w += n
	if err != nil {
		w.err = err
		if n == 0 {
			return err
		}
	}
	return nil
}

func (w *wire) readData(p []byte) (int, error) {
	if w.r == w.w {
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	src := w.buf[w.r:w.w]
	if len(src) > len(p) {
		src = src[:len(p)]
	}
	n := 0
	for n < len(src) {
		w.dot = nextDot(w.dot, src[n])
		n++
		if w.dot == dotEnd {
			w.mode = modeCommand
			break
		}
	}
	copy(p, src[:n])
	w.r += n
	return n, nil
}

// nextDot is go-smtp's dataReader state machine (from net/textproto).
func nextDot(state int, c byte) int {
	switch state {
	case dotBeginLine:
		switch c {
		case '.':
			return dotDot
		case '\r':
			return dotCR
		}
		return dotData
	case dotDot:
		if c == '\r' {
			return dotDotCR
		}
		return dotData
	case dotDotCR:
		if c == '\n' {
			return dotEnd
		}
		return dotData
	case dotCR:
		if c == '\n' {
			return dotBeginLine
		}
		return dotData
	}
	if c == '\r' {
		return dotCR
	}
	return dotData
}

func (w *wire) readChunk(p []byte) (int, error) {
	if w.r == w.w {
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	n := min(int64(len(p)), int64(w.w-w.r), w.chunk)
	copy(p, w.buf[w.r:w.r+int(n)])
	w.r += int(n)
	if w.chunk -= n; w.chunk == 0 {
		w.mode = modeCommand
	}
	return int(n), nil
}

func (w *wire) readCommand(p []byte) (int, error) {
	for {
		line, err := w.nextLine()
		if err == errCmdTooLong {
			if err := w.refuse(errCmdTooLong, "command line too long"); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		line, bad, why := w.check(line)
		if bad != nil {
			if err := w.refuse(bad, why); err != nil {
				return 0, err
			}
			continue
		}
		n := copy(p, line)
		w.pending = append(w.pending[:0], line[n:]...)
		return n, nil
	}
}

// nextLine returns the next line with its LF. A line longer than
// MaxLineLength is read to its end and dropped: errCmdTooLong.
func (w *wire) nextLine() ([]byte, error) {
	limit := w.srv.cfg.MaxLineLength
	for {
		if i := bytes.IndexByte(w.buf[w.r:w.w], '\n'); i >= 0 {
			line := w.buf[w.r : w.r+i+1]
			w.r += i + 1
			if len(line) > limit {
				return nil, errCmdTooLong
			}
			return line, nil
		}
		if w.w-w.r > limit {
			return nil, w.drainLine()
		}
		if err := w.fill(); err != nil {
			return nil, err
		}
	}
}

// drainLine discards input up to and including the next LF.
func (w *wire) drainLine() error {
	for {
		if i := bytes.IndexByte(w.buf[w.r:w.w], '\n'); i >= 0 {
			w.r += i + 1
			return errCmdTooLong
		}
		w.r = w.w
		if err := w.fill(); err != nil {
			return err
		}
	}
}

// check returns the line to hand over (a bare LF completed to CRLF for a
// relaxed client), or the reply refusing it. A line that answers an AUTH
// challenge is not a command and keeps its verb unchecked.
func (w *wire) check(line []byte) ([]byte, *gosmtp.SMTPError, string) {
	body := line[:len(line)-1]
	bareLF := len(body) == 0 || body[len(body)-1] != '\r'
	if !bareLF {
		body = body[:len(body)-1]
	}
	auth := w.authLine
	w.authLine = false
	switch {
	case bytes.IndexByte(body, '\r') >= 0:
		return nil, errCmdBareCR, "bare CR in command"
	case bytes.IndexByte(body, 0) >= 0:
		return nil, errCmdNUL, "NUL in command"
	case bareLF && !w.srv.relaxedNewlines(w.tc):
		return nil, errCmdBareLF, "bare LF in command"
	case bareLF:
		w.scratch = append(append(w.scratch[:0], body...), '\r', '\n')
		line = w.scratch
	}
	if auth || len(body) == 0 {
		return line, nil, "" // go-smtp answers an empty line itself
	}
	verb, args, _ := strings.Cut(string(body), " ")
	verb = strings.ToUpper(verb)
	if strings.HasPrefix(verb, "STARTTLS") {
		return line, nil, ""
	}
	if !knownVerbs[verb] {
		return nil, errCmdUnknown, "unknown command"
	}
	if verb == "BDAT" {
		w.expectChunk(args)
	}
	return line, nil, ""
}

// expectChunk switches to modeChunk after a BDAT line that go-smtp will
// accept as syntax: it then always reads the chunk (to pass it on or to
// discard it), whatever it answers. Parsed exactly as go-smtp does.
func (w *wire) expectChunk(args string) {
	f := strings.Fields(strings.TrimSpace(args))
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		return
	}
	size, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || size == 0 {
		return
	}
	w.mode, w.chunk = modeChunk, int64(size)
}

// refuse answers a line go-smtp never sees and counts the error; past
// MaxErrors it answers 421 and ends the connection (io.EOF to go-smtp,
// which then closes quietly).
func (w *wire) refuse(e *gosmtp.SMTPError, why string) error {
	w.tc.log.Info("smtp command refused", "ip", w.tc.ip.String(), "reason", why)
	if int(w.tc.errors.Add(1)) >= w.srv.cfg.MaxErrors {
		w.tc.log.Warn("smtp too many errors", "op", "command", "last", e.Code)
		_ = w.writeReply(errTooManyErrs)
		_ = w.conn.Close()
		return io.EOF
	}
	return w.writeReply(e)
}

func (w *wire) writeReply(e *gosmtp.SMTPError) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.srv.cfg.WriteTimeout))
	_, err := fmt.Fprintf(w.conn, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
	return err
}

// relaxedNewlines reports whether this client's bare LFs are normalised
// rather than refused: only with BareNewlineNormalize, and only for a
// trusted network or an authenticated session.
func (s *Server) relaxedNewlines(tc *trackedConn) bool {
	if s.cfg.BareNewline != BareNewlineNormalize {
		return false
	}
	return tc.authed.Load() || (s.cfg.TrustedClient != nil && s.cfg.TrustedClient(tc.ip))
}
