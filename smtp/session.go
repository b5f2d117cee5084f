package smtp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// resolveTimeout bounds one Recipients.Resolve or Authenticate call.
const resolveTimeout = 30 * time.Second

// session is the state of one SMTP session (between EHLO and STARTTLS,
// RSET-independent parts) and of its current transaction. go-smtp makes a
// new session after STARTTLS, so TLS and AUTH state never leak across it;
// the error count lives on the connection.
type session struct {
	srv  *Server
	conn *gosmtp.Conn
	tc   *trackedConn
	// nc is the connection the session was created on; fixed for the
	// session (go-smtp makes a new session after STARTTLS), so the BDAT
	// goroutine can refresh deadlines without racing go-smtp.
	nc   net.Conn
	kind ListenerKind
	log  *slog.Logger
	tls  bool

	// mu guards authUser and tx: with BDAT, go-smtp runs Data in its own
	// goroutine while the command loop may call Reset or Logout.
	mu       sync.Mutex
	authUser string
	tx       transaction
	// bdatOpen is set while a BDAT message is being received and cleared
	// only when it was read to the end (BDAT LAST).
	bdatOpen bool
}

// transaction is one MAIL..DATA exchange.
type transaction struct {
	active    bool
	from      string // normalised; "" for the null reverse-path
	utf8      bool   // MAIL ... SMTPUTF8
	helo      string // HELO name at MAIL time, for Received
	discard   bool   // Policy said Discard at MAIL
	rcpts     []string
	mailboxes []string // local, deduplicated
	remote    []string // relay recipients, deduplicated
	seen      map[string]bool
	grantUser string
	grantTime time.Time
}

var (
	_ gosmtp.Session     = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)

func (s *Server) newSession(c *gosmtp.Conn, kind ListenerKind) (gosmtp.Session, error) {
	tc := trackedOf(c.Conn())
	if tc == nil {
		// Only connections from wrapListener reach go-smtp.
		return nil, errors.New("smtp: connection not from a popgate listener")
	}
	_, isTLS := c.TLSConnectionState()
	return &session{
		srv:  s,
		conn: c,
		tc:   tc,
		nc:   c.Conn(),
		kind: kind,
		log:  tc.log,
		tls:  isTLS,
	}, nil
}

// client describes the peer for the Policy.
func (s *session) client() Client {
	return Client{
		IP:       s.tc.ip,
		Hostname: s.conn.Hostname(),
		AuthUser: s.authUser,
		TLS:      s.tls,
		Listener: s.kind,
	}
}

// Reset discards the current transaction (RSET, EHLO, end of DATA).
//
// A BDAT transaction aborted before BDAT LAST (RSET, EHLO, an oversized
// chunk) also ends the connection after the next reply: go-smtp v0.25.1
// lets the aborted transaction's goroutine touch the connection's result
// channel while the next BDAT replaces it (a data race that can misreport
// the next message), and closing is the only safe way out from here.
func (s *session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tx = transaction{}
	if s.bdatOpen {
		s.bdatOpen = false
		s.log.Info("smtp bdat aborted, closing connection")
		s.tc.closeAfterWrite.Store(true)
	}
}

// Logout ends the session; nothing is held beyond the transaction.
func (s *session) Logout() error {
	s.Reset()
	return nil
}

// Mail starts a transaction: syntax, sender ownership for authenticated
// sessions, then the Policy.
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx.active {
		// RFC 5321 §4.1.4: MAIL inside a transaction is out of sequence;
		// the open transaction stays as it is.
		return s.wrapErr("mail", errNestedMail)
	}
	return s.wrapErr("mail", s.mail(from, opts))
}

// errNestedMail answers a second MAIL before the transaction ended.
var errNestedMail = reply(503, "5.5.1", "Sender already given; RSET to start over")

func (s *session) mail(from string, opts *gosmtp.MailOptions) error {
	s.tx = transaction{}
	utf8 := opts != nil && opts.UTF8
	norm := ""
	if from != "" {
		a, err := ParseAddress(from)
		if err != nil {
			s.log.Info("smtp sender refused", "from", from, "err", err)
			return errBadFromSyn
		}
		if !utf8 && !isASCII(from) {
			return errNeedUTF8
		}
		norm = a.String()
	}
	if !s.senderAllowed(norm) {
		s.log.Warn("smtp sender denied", "ip", s.tc.ip.String(), "user", s.authUser, "from", norm)
		return errNotOwner
	}
	if err := s.checkRoom(opts); err != nil {
		return err
	}
	v := s.srv.deps.Policy.CheckFrom(s.client(), norm)
	switch v.Action {
	case ActionReject, ActionTempFail:
		s.log.Info("smtp sender rejected", "ip", s.tc.ip.String(), "from", norm, "reason", v.Reason)
		return verdictError(v, 550, "5.7.1", "Access denied")
	}
	s.tx = transaction{
		active:  true,
		from:    norm,
		utf8:    utf8,
		helo:    s.conn.Hostname(),
		discard: v.Action == ActionDiscard || s.tc.discard,
		seen:    make(map[string]bool),
	}
	return nil
}

// Rcpt adds a recipient. Routing tricks are refused before the Policy sees
// the address; the Policy is asked at every RCPT; local addresses must
// resolve; remote ones need a Relay verdict or an authenticated session.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wrapErr("rcpt", s.rcpt(to))
}

func (s *session) rcpt(to string) error {
	if !s.tx.active {
		return reply(503, "5.5.1", "Need MAIL before RCPT")
	}
	a, err := ParseAddress(to)
	if err != nil {
		s.log.Info("smtp recipient refused", "ip", s.tc.ip.String(), "from", s.tx.from, "rcpt", to, "err", err)
		switch {
		case errors.Is(err, ErrRoutingSyntax):
			s.relayDenied(to, "routing syntax")
			return errRouting
		case errors.Is(err, ErrQuotedLocalPart):
			return errQuotedLocal
		case errors.Is(err, ErrAddressTooLong):
			return errTooLongAddr
		}
		return errBadRcptSyn
	}
	if !s.tx.utf8 && !isASCII(to) {
		return errNeedUTF8
	}
	if a.Literal {
		// Never local; relaying to a literal would bypass MX routing.
		s.relayDenied(a.String(), "address literal")
		return errLiteralRcpt
	}
	addr := a.String()
	local := s.srv.isLocal(a.Domain)

	v := s.srv.deps.Policy.CheckRcpt(s.client(), s.tx.from, addr)
	switch v.Action {
	case ActionReject, ActionTempFail:
		if !local {
			s.relayDenied(addr, v.Reason)
		} else {
			s.log.Info("smtp recipient rejected", "ip", s.tc.ip.String(), "from", s.tx.from, "rcpt", addr, "reason", v.Reason)
		}
		return verdictError(v, 550, "5.7.1", "Access denied")
	case ActionDiscard:
		s.tx.rcpts = append(s.tx.rcpts, addr)
		return nil
	}

	if !local {
		if v.Action != ActionRelay && s.authUser == "" {
			s.relayDenied(addr, v.Reason)
			return errRelayDenied
		}
		if v.Action == ActionRelay && v.GrantUser != "" && s.tx.grantUser == "" {
			s.tx.grantUser, s.tx.grantTime = v.GrantUser, v.GrantTime
		}
		s.tx.rcpts = append(s.tx.rcpts, addr)
		if !s.tx.seen["r:"+addr] {
			s.tx.seen["r:"+addr] = true
			s.tx.remote = append(s.tx.remote, addr)
		}
		return nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	boxes, err := s.srv.deps.Recipients.Resolve(ctx, addr)
	if errors.Is(err, ErrNoSuchUser) || (err == nil && len(boxes) == 0) {
		s.log.Info("smtp unknown recipient", "ip", s.tc.ip.String(), "rcpt", addr)
		return errNoSuchUser
	}
	if err != nil {
		return err // internal, mapped by wrapErr
	}
	s.tx.rcpts = append(s.tx.rcpts, addr)
	for _, b := range boxes {
		if !s.tx.seen["l:"+b] {
			s.tx.seen["l:"+b] = true
			s.tx.mailboxes = append(s.tx.mailboxes, b)
		}
	}
	return nil
}

// relayDenied logs the fixed-wording event that fail2ban filters match.
func (s *session) relayDenied(rcpt, reason string) {
	s.log.Warn("smtp relay denied", "ip", s.tc.ip.String(), "from", s.tx.from, "rcpt", rcpt, "reason", reason)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// plainAuthAllowed reports whether this session may authenticate now.
func (s *session) authAllowed() bool {
	return s.tls || s.srv.plaintextAuthOK(s.tc.ip)
}
