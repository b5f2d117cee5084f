package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// outcome is what one attempt did for one recipient.
type outcome struct {
	state  State // StateSent, StateFailed or StatePending
	status string
	diag   string
	mta    string
}

// next says what deliverDest does after a session.
type next int

const (
	nextDone       next = iota // results are final for this attempt
	nextHost                   // connection-level failure: try the next host
	nextRetryPlain             // opportunistic TLS failed: redial without it
)

var (
	errTLSHandshake = errors.New("TLS handshake failed")
	errNoStartTLS   = errors.New("STARTTLS required but not offered")
)

// session opens an SMTP session over conn and runs one transaction for
// rcpts. name is the peer's host name (TLS server name, Remote-MTA). A
// session still usable afterwards is kept in the connection cache for the
// next message to dest.
func (q *Queue) session(ctx context.Context, conn net.Conn, dest, name, tlsMode string, e *envelope, rcpts []string) ([]outcome, next) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	all := func(o outcome) []outcome {
		o.mta = name
		out := make([]outcome, len(rcpts))
		for i := range out {
			out[i] = o
		}
		return out
	}

	c, tlsOn, err := q.openClient(ctx, conn, name, tlsMode)
	if err != nil {
		stop()
		conn.Close()
		o := errOutcome(err, "4.4.2")
		o.state = StatePending // a failed greeting or EHLO is the host's problem; try others
		if errors.Is(err, errTLSHandshake) && tlsMode == TLSOpportunistic {
			return all(o), nextRetryPlain
		}
		return all(o), nextHost
	}
	cc := &cachedConn{c: c, conn: conn, name: name, opened: q.cfg.Now()}

	if dest == "smarthost" && q.cfg.SmarthostAuth != nil {
		if !tlsOn {
			stop()
			c.Close()
			return all(outcome{state: StatePending, status: "4.7.0", diag: "smarthost did not offer STARTTLS; AUTH is never sent in clear"}), nextDone
		}
		a := q.cfg.SmarthostAuth
		if err := c.Auth(sasl.NewPlainClient("", a.Username, a.Password)); err != nil {
			stop()
			c.Close()
			// A rejected login is a configuration problem: retry, never bounce.
			o := errOutcome(err, "4.7.0")
			o.state = StatePending
			return all(o), nextDone
		}
	}
	stop()
	out, _ := q.transact(ctx, cc, dest, e, rcpts, false)
	return out, nextDone
}

// transact runs one mail transaction for rcpts over an open session and
// then hands the session to the connection cache, or closes it when it
// may not be reused. For a reused session (reused set) whose first
// command finds the peer gone, it returns stale and no outcomes: the
// caller sends the message over a fresh connection, and since nothing was
// accepted on the dead one, nothing is duplicated.
func (q *Queue) transact(ctx context.Context, cc *cachedConn, dest string, e *envelope, rcpts []string, reused bool) (out []outcome, stale bool) {
	c, name := cc.c, cc.name
	stop := context.AfterFunc(ctx, func() { cc.conn.Close() })
	keep := false
	defer func() {
		// stop reports false if ctx already closed the connection.
		if stop() && keep && ctx.Err() == nil {
			q.conns.put(dest, cc)
			return
		}
		if keep {
			cc.quit()
			return
		}
		c.Close()
	}()
	all := func(o outcome) []outcome {
		o.mta = name
		out := make([]outcome, len(rcpts))
		for i := range out {
			out[i] = o
		}
		return out
	}

	if limit, ok := c.MaxMessageSize(); ok && limit > 0 && e.Size > int64(limit) {
		// RFC 1870 §6: the message is larger than the peer's fixed limit.
		keep = true // no transaction was started
		return all(outcome{state: StateFailed, status: "5.3.4",
			diag: fmt.Sprintf("message of %d bytes exceeds the peer's SIZE limit of %d", e.Size, limit)}), false
	}
	utf8 := e.needsUTF8()
	if ok, _ := c.Extension("SMTPUTF8"); utf8 && !ok {
		// RFC 6531 §3.2: without SMTPUTF8 a UTF-8 envelope is not
		// deliverable to this peer; RFC 6533 §6 names the status 5.6.7.
		keep = true
		return all(outcome{state: StateFailed, status: "5.6.7",
			diag: "peer does not support SMTPUTF8, needed for a non-ASCII address"}), false
	}
	if err := c.Mail(e.From, &smtp.MailOptions{Size: e.Size, UTF8: utf8}); err != nil {
		if reused && staleReply(err) {
			return nil, true
		}
		return all(errOutcome(err, "4.4.2")), false
	}
	out = make([]outcome, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			out[i] = errOutcome(err, "4.4.2")
			out[i].mta = name
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				// The connection is gone: everything left stays pending.
				for j := i + 1; j < len(rcpts); j++ {
					out[j] = out[i]
				}
				return out, false
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		// The transaction is open with no recipient; the session ends
		// rather than being reset (go-smtp's RSET would redo EHLO).
		_ = c.Quit()
		return out, false
	}
	setAll := func(o outcome) {
		o.mta = name
		for _, i := range accepted {
			out[i] = o
		}
	}
	if err := q.sendData(c, e.ID, e.Size); err != nil {
		setAll(errOutcome(err, "4.4.2"))
		return out, false
	}
	setAll(outcome{state: StateSent, status: "2.0.0"})
	keep = true
	return out, false
}

// sendData streams the spooled body through DATA, lines longer than 998
// octets folded (fold.go); go-smtp's writer does the dot-stuffing
// (RFC 5321 §4.5.2).
func (q *Queue) sendData(c *smtp.Client, id string, size int64) error {
	f, err := q.cfg.Fs.Open(q.msgPath(id))
	if err != nil {
		return fmt.Errorf("open body %s: %w", id, err)
	}
	defer f.Close()
	w, err := c.Data()
	if err != nil {
		return err
	}
	bp := q.getBuf()
	defer q.bufs.Put(bp)
	fw := &folder{w: w}
	if _, err := io.CopyBuffer(fw, io.LimitReader(f, size), *bp); err != nil {
		return fmt.Errorf("sending body: %w", err)
	}
	return w.Close()
}

// errOutcome turns an SMTP reply or a local error into an outcome: a 5xx
// reply fails the recipient, anything else leaves it pending.
func errOutcome(err error, defStatus string) outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code, msg := se.EnhancedCode, se.Message
		if code[0] == 0 {
			code, msg = findEnhancedCode(se.Code, msg)
		}
		st := fmt.Sprintf("%d.%d.%d", code[0], code[1], code[2])
		if code[0] == 0 {
			st = fmt.Sprintf("%d.0.0", se.Code/100)
		}
		o := outcome{state: StatePending, status: st,
			diag: oneLine(fmt.Sprintf("%d %s %s", se.Code, st, msg))}
		if se.Code >= 500 {
			o.state = StateFailed
		}
		return o
	}
	return outcome{state: StatePending, status: defStatus, diag: oneLine(err.Error())}
}

// findEnhancedCode looks for an RFC 2034 code on any line of a
// multi-line reply (some servers put it on the last line only) and
// returns it with the message without it.
func findEnhancedCode(code int, msg string) (smtp.EnhancedCode, string) {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		head, rest, _ := strings.Cut(l, " ")
		parts := strings.Split(head, ".")
		if len(parts) != 3 {
			continue
		}
		var ec smtp.EnhancedCode
		ok := true
		for j, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 999 {
				ok = false
				break
			}
			ec[j] = n
		}
		if ok && ec[0] == code/100 {
			lines[i] = rest
			return ec, strings.Join(lines, "\n")
		}
	}
	return smtp.EnhancedCode{}, msg
}

// oneLine makes a reply safe for one DSN header line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	const maxDiag = 900 // keeps the DSN line under RFC 5322 §2.1.1's 998
	if len(s) > maxDiag {
		s = s[:maxDiag]
	}
	return s
}

// primedConn replays a greeting before the rest of the stream, so
// go-smtp's client can start on a connection whose real greeting (and
// STARTTLS) we already handled.
type primedConn struct {
	net.Conn
	r io.Reader
}

func (p *primedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// openClient greets the peer, negotiates STARTTLS per tlsMode and returns
// a go-smtp client after EHLO. go-smtp does not expose STARTTLS on an
// existing client, so the plain-text part (greeting, EHLO, STARTTLS) is
// done here with net/textproto.
func (q *Queue) openClient(ctx context.Context, conn net.Conn, name, tlsMode string) (*smtp.Client, bool, error) {
	newClient := func(nc net.Conn) (*smtp.Client, error) {
		c := smtp.NewClient(nc)
		c.CommandTimeout = commandTimeout
		c.SubmissionTimeout = dataTimeout
		if err := c.Hello(q.cfg.Hostname); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if tlsMode == TLSNone {
		c, err := newClient(conn)
		return c, false, err
	}
	_ = conn.SetDeadline(time.Now().Add(commandTimeout))
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, false, fmt.Errorf("greeting: %w", err)
	}
	_, msg, err := tpCmd(tp, 250, "EHLO %s", q.cfg.Hostname)
	if err != nil {
		return nil, false, fmt.Errorf("EHLO: %w", err)
	}
	offered := false
	for _, l := range strings.Split(msg, "\n")[1:] {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			offered = true
		}
	}
	greeting := strings.NewReader("220 " + name + " ready\r\n")
	plain := func() (*smtp.Client, bool, error) {
		if tp.R.Buffered() > 0 {
			return nil, false, errors.New("peer sent data ahead of its reply")
		}
		_ = conn.SetDeadline(time.Time{})
		// go-smtp will read the replayed greeting and send EHLO again,
		// which RFC 5321 §4.1.4 allows at any time.
		c, err := newClient(&primedConn{Conn: conn, r: io.MultiReader(greeting, conn)})
		return c, false, err
	}
	if !offered {
		if tlsMode == TLSRequired {
			return nil, false, errNoStartTLS
		}
		return plain()
	}
	if _, _, err := tpCmd(tp, 220, "STARTTLS"); err != nil {
		if tlsMode == TLSRequired {
			return nil, false, fmt.Errorf("STARTTLS: %w", err)
		}
		return plain() // RFC 3207 §4: a refused STARTTLS may go on in clear
	}
	// RFC 3207 §5 (and CVE-2011-0411): nothing may be buffered across
	// the switch to TLS.
	if tp.R.Buffered() > 0 {
		return nil, false, errors.New("peer sent data after its STARTTLS reply")
	}
	cfg := &tls.Config{}
	if q.cfg.TLSConfig != nil {
		cfg = q.cfg.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = name
	}
	if tlsMode != TLSRequired {
		// RFC 7435: opportunistic encryption without authentication is
		// still better than clear text.
		cfg.InsecureSkipVerify = true
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, false, fmt.Errorf("%w: %w", errTLSHandshake, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c, err := newClient(&primedConn{Conn: tc, r: io.MultiReader(greeting, tc)})
	return c, true, err
}

// tpCmd sends one command and reads its reply, turning a protocol error
// into go-smtp's *SMTPError so callers classify all replies alike.
func tpCmd(tp *textproto.Conn, code int, format string, args ...any) (int, string, error) {
	id, err := tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	c, msg, err := tp.ReadResponse(code)
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return c, msg, &smtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	}
	return c, msg, err
}
