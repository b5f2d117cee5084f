package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/popgate/popgate/smtp/pickup"
)

// sendmailSMTP is -bs: an SMTP session on stdin/stdout, as a program that
// speaks SMTP to `sendmail -bs` expects. Each message goes the way a
// -bm message goes (socket, or maildrop when the server is down), so the
// caller's uid is what the kernel says and the reply to DATA comes only
// once the message is on disk.
func sendmailSMTP(ctx context.Context, e *env, cfg *Config, o *sendmailOpts) error {
	host := cfg.Hostname
	be := gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &bsSession{ctx: ctx, cfg: cfg, fullName: o.fullName}, nil
	})
	srv := gosmtp.NewServer(be)
	srv.Domain = host
	srv.MaxMessageBytes = cfg.SMTP.MaxMessageBytes
	srv.MaxRecipients = cfg.SMTP.MaxRecipients
	srv.MaxLineLength = 2000
	srv.ReadTimeout = cfg.SMTP.Timeout.Duration
	srv.WriteTimeout = cfg.SMTP.Timeout.Duration
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = bsLog{e.stderr}
	ln := newStdioListener(e.stdin, e.stdout)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return &pickup.Error{Code: pickup.ExIOErr, Msg: err.Error()}
	}
	return nil
}

type bsLog struct{ w io.Writer }

func (l bsLog) Printf(format string, v ...any) { fmt.Fprintf(l.w, "popgate: "+format+"\n", v...) }
func (l bsLog) Println(v ...any)               { fmt.Fprintln(l.w, append([]any{"popgate:"}, v...)...) }

// bsSession is one -bs SMTP session's transaction.
type bsSession struct {
	ctx      context.Context
	cfg      *Config
	fullName string
	from     *string
	rcpts    []string
}

func (s *bsSession) Reset()        { s.from, s.rcpts = nil, nil }
func (s *bsSession) Logout() error { return nil }

func (s *bsSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.from = &from
	s.rcpts = nil
	return nil
}

func (s *bsSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.from == nil {
		return &gosmtp.SMTPError{Code: 503, EnhancedCode: gosmtp.EnhancedCode{5, 5, 1}, Message: "Need MAIL before RCPT"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *bsSession) Data(r io.Reader) error {
	msg, err := io.ReadAll(io.LimitReader(r, s.cfg.SMTP.MaxMessageBytes+1))
	if err != nil {
		return err
	}
	if int64(len(msg)) > s.cfg.SMTP.MaxMessageBytes {
		_, _ = io.Copy(io.Discard, r)
		return &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Message too large"}
	}
	req := pickup.Request{From: s.from, FullName: s.fullName, Rcpts: s.rcpts, Size: int64(len(msg))}
	where, err := handOver(s.ctx, s.cfg, req, msg)
	if err != nil {
		return smtpErrorFor(err)
	}
	return &gosmtp.SMTPError{Code: 250, EnhancedCode: gosmtp.EnhancedCode{2, 0, 0}, Message: "OK: " + where}
}

// smtpErrorFor turns a hand-over failure into the SMTP reply for DATA.
func smtpErrorFor(err error) error {
	var pe *pickup.Error
	if !errors.As(err, &pe) {
		pe = &pickup.Error{Code: pickup.ExTempFail, Msg: err.Error()}
	}
	switch pe.Code {
	case pickup.ExNoUser:
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: pe.Msg}
	case pickup.ExDataErr, pickup.ExUsage, pickup.ExProtocol:
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: pe.Msg}
	case pickup.ExNoPerm:
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: pe.Msg}
	}
	return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: pe.Msg}
}

// stdioListener hands go-smtp one connection made of stdin and stdout, and
// reports closed once that connection is.
type stdioListener struct {
	conn   *stdioConn
	served bool
}

func newStdioListener(r io.Reader, w io.Writer) *stdioListener {
	return &stdioListener{conn: &stdioConn{r: r, w: w, closed: make(chan struct{})}}
}

func (l *stdioListener) Accept() (net.Conn, error) {
	if !l.served {
		l.served = true
		return l.conn, nil
	}
	<-l.conn.closed
	return nil, net.ErrClosed
}

func (l *stdioListener) Close() error   { return l.conn.Close() }
func (l *stdioListener) Addr() net.Addr { return stdioAddr{} }

type stdioConn struct {
	r      io.Reader
	w      io.Writer
	once   sync.Once
	closed chan struct{}
}

func (c *stdioConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.r.Read(p)
}
func (c *stdioConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *stdioConn) LocalAddr() net.Addr              { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr             { return stdioAddr{} }
func (c *stdioConn) SetDeadline(time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdin" }
