package pop3

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// errPlaintextRefused answers USER, PASS, APOP and AUTH before TLS on a
// connection that may not authenticate in the clear (RFC 2595 §2.3, with
// the [AUTH] code of RFC 3206 §5). CAPA omits USER and SASL in that state,
// so well-behaved clients issue STLS first.
var errPlaintextRefused = &Error{Code: CodeAuth, Msg: "plaintext authentication refused, use STLS first"}

// authAllowed reports whether this connection may authenticate now.
func (s *session) authAllowed() bool {
	return s.tls || s.cfg.AllowPlaintextAuth || s.cfg.IsLocal(s.ip)
}

func (s *session) apopEnabled() bool {
	return s.cfg.EnableAPOP && s.cfg.PlainPassword != nil
}

// cmdSTLS starts TLS (RFC 2595 §4). A failed handshake closes the
// connection; a successful one discards any pipelined plaintext and the
// USER given before.
func (s *session) cmdSTLS([]string) error {
	if s.cfg.TLS == nil {
		return protoErr("STLS not available")
	}
	if s.tls {
		return protoErr("command not permitted when TLS active")
	}
	s.writeLine("+OK begin TLS negotiation")
	if err := s.flush(); err != nil {
		return errClose
	}
	tc := tls.Server(s.raw, s.cfg.TLS)
	tc.SetDeadline(earlier(s.cfg.Now().Add(s.cfg.CommandTimeout), s.deadline))
	if err := tc.Handshake(); err != nil {
		s.log.Info("pop3 tls handshake failed", "err", err)
		return errClose
	}
	s.conn = tc
	s.tls = true
	s.r.Reset(tc) // RFC 2595 §4: plaintext sent after STLS is discarded
	s.user = ""
	return nil
}

// cmdUSER names the user for PASS (RFC 1939 §7). It always succeeds so
// that it never tells whether the user exists.
func (s *session) cmdUSER(args []string) error {
	if !s.authAllowed() {
		return errPlaintextRefused
	}
	s.user = args[0]
	s.writeLine("+OK send PASS")
	return nil
}

// cmdPASS completes a USER/PASS login (RFC 1939 §7).
func (s *session) cmdPASS(args []string) error {
	if !s.authAllowed() {
		return errPlaintextRefused
	}
	if s.user == "" {
		return protoErr("USER first")
	}
	user := s.user
	s.user = "" // a failed PASS needs a new USER
	return s.login(user, args[0], "pass")
}

// cmdAPOP logs in with an MD5 digest of the greeting's timestamp and the
// user's plaintext password (RFC 1939 §7). It is available only when
// enabled and only for users whose stored password is plaintext; for
// others it fails exactly like a wrong digest. The attempt still goes
// through the Authenticator, so the failed-login limiter sees it: a
// matching digest is verified again with the plaintext password, and a
// wrong one is submitted as a password that cannot match.
func (s *session) cmdAPOP(args []string) error {
	if !s.apopEnabled() {
		return protoErr("APOP not available")
	}
	if !s.authAllowed() {
		return errPlaintextRefused
	}
	user, digest := args[0], strings.ToLower(args[1])
	ctx, cancel := context.WithTimeout(s.srv.ctx, authTimeout)
	password, ok, err := s.cfg.PlainPassword(ctx, user)
	cancel()
	if err != nil {
		return fmt.Errorf("apop password lookup: %w", err)
	}
	sum := md5.Sum([]byte(s.apopStamp + password))
	want := hex.EncodeToString(sum[:])
	if ok && subtle.ConstantTimeCompare([]byte(want), []byte(digest)) == 1 {
		return s.login(user, password, "apop")
	}
	// Record the failure with the limiter. No password a client can type
	// contains NUL, so this submission cannot succeed; its result is
	// ignored except for internal errors.
	ctx, cancel = context.WithTimeout(s.srv.ctx, authTimeout)
	defer cancel()
	_, err = s.srv.auth.Authenticate(ctx, s.ip, user, "\x00apop:"+digest)
	if err != nil && !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrThrottled) {
		return fmt.Errorf("authenticate %q: %w", user, err)
	}
	if errors.Is(err, ErrThrottled) {
		return s.loginFailed(user, "throttled")
	}
	return s.loginFailed(user, "bad credentials")
}

// SASL mechanisms offered (RFC 5034).
const (
	mechPlain = "PLAIN"
	mechLogin = "LOGIN"
)

// cmdAUTH runs a SASL exchange (RFC 5034). "AUTH" alone lists the
// mechanisms, as RFC 1734 clients expect.
func (s *session) cmdAUTH(args []string) error {
	if !s.authAllowed() {
		return errPlaintextRefused
	}
	if len(args) == 0 {
		s.out().WriteString("+OK\r\n" + mechPlain + "\r\n" + mechLogin + "\r\n.\r\n")
		return nil
	}
	var ir []byte // initial response, nil if absent
	if len(args) == 2 {
		if args[1] == "=" { // RFC 5034 §4: "=" is an empty initial response
			ir = []byte{}
		} else {
			b, err := base64.StdEncoding.DecodeString(args[1])
			if err != nil {
				return protoErr("invalid base64 in initial response")
			}
			ir = b
		}
	}
	switch strings.ToUpper(args[0]) {
	case mechPlain:
		return s.authPlain(ir)
	case mechLogin:
		return s.authLogin(ir)
	default:
		return protoErr("unsupported authentication mechanism")
	}
}

// errSASLCancelled answers a "*" response (RFC 5034 §4).
var errSASLCancelled = &Error{Msg: "authentication cancelled"}

// challenge sends a SASL challenge and reads the client's response.
func (s *session) challenge(c []byte) ([]byte, error) {
	s.writeLine("+ " + base64.StdEncoding.EncodeToString(c))
	if err := s.flush(); err != nil {
		return nil, errClose
	}
	s.conn.SetReadDeadline(earlier(s.cfg.Now().Add(s.cfg.IdleTimeout), s.deadline))
	line, err := s.readLine(MaxSASLLine)
	if errors.Is(err, errLineTooLong) {
		return nil, protoErr("SASL response too long (%d octets at most)", MaxSASLLine)
	}
	if err != nil {
		return nil, errClose
	}
	if string(line) == "*" {
		return nil, errSASLCancelled
	}
	b, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil {
		return nil, protoErr("invalid base64 in SASL response")
	}
	return b, nil
}

// authPlain runs PLAIN (RFC 4616) with go-sasl's server. An authorization
// identity different from the user is refused: there is no proxy login.
func (s *session) authPlain(ir []byte) error {
	var loginErr error
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			loginErr = s.loginFailed(username, "authorization identity differs")
			return loginErr
		}
		loginErr = s.login(username, password, "sasl-plain")
		return loginErr
	})
	resp := ir
	for {
		c, done, err := srv.Next(resp)
		if done || err != nil {
			if loginErr != nil {
				return loginErr
			}
			if err != nil {
				return protoErr("invalid PLAIN response")
			}
			return nil
		}
		if resp, err = s.challenge(c); err != nil {
			return err
		}
	}
}

// authLogin runs the LOGIN mechanism (draft-murchison-sasl-login): the
// server asks for "Username:" and "Password:". go-sasl has no server side
// for it.
func (s *session) authLogin(ir []byte) error {
	user := ir
	if user == nil {
		var err error
		if user, err = s.challenge([]byte("Username:")); err != nil {
			return err
		}
	}
	password, err := s.challenge([]byte("Password:"))
	if err != nil {
		return err
	}
	return s.login(string(user), string(password), "sasl-login")
}

// loginFailed logs a refused login and returns the one reply every refused
// login gets.
func (s *session) loginFailed(user, reason string) error {
	s.log.Info("pop3 login failed", "user", user, "ip", s.ip, "reason", reason)
	return errAuthFailed
}

// login authenticates, opens and snapshots the mailbox, and enters the
// TRANSACTION state. It replies "+OK" itself on success.
func (s *session) login(user, password, method string) error {
	ctx, cancel := context.WithTimeout(s.srv.ctx, authTimeout)
	defer cancel()
	canonical, err := s.srv.auth.Authenticate(ctx, s.ip, user, password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return s.loginFailed(user, "bad credentials")
	case errors.Is(err, ErrThrottled):
		return s.loginFailed(user, "throttled")
	case err != nil:
		s.log.Info("pop3 login failed", "user", user, "ip", s.ip, "reason", "internal error")
		return fmt.Errorf("authenticate %q: %w", user, err)
	case canonical == "":
		s.log.Info("pop3 login failed", "user", user, "ip", s.ip, "reason", "internal error")
		return fmt.Errorf("authenticate %q: Authenticator returned no user name", user)
	}
	mb, err := s.srv.drop.Open(ctx, canonical)
	if errors.Is(err, ErrMailboxInUse) {
		s.log.Info("pop3 login failed", "user", canonical, "ip", s.ip, "reason", "mailbox in use")
		return &Error{Code: CodeInUse, Msg: "mailbox locked by another session"}
	}
	if err != nil {
		return fmt.Errorf("open mailbox of %q: %w", canonical, err)
	}
	msgs, err := mb.List()
	if err == nil {
		err = checkUIDs(msgs)
	}
	if err != nil {
		if cerr := mb.Close(); cerr != nil {
			s.log.Error("pop3 mailbox close failed", "user", canonical, "err", cerr)
		}
		return fmt.Errorf("list mailbox of %q: %w", canonical, err)
	}
	s.mbox, s.msgs, s.deleted = mb, msgs, make([]bool, len(msgs))
	s.user = canonical
	s.state = stateTransaction
	if s.srv.obs != nil {
		s.srv.obs.LoginSucceeded(canonical, s.ip)
	}
	s.log.Info("pop3 login ok", "user", canonical, "ip", s.ip, "method", method, "tls", s.tls)
	n, octets := s.totals()
	s.writeLine(fmt.Sprintf("+OK maildrop locked and ready, %d messages (%d octets)", n, octets))
	return nil
}

// checkUIDs verifies the unique-ids a Mailbox returned (RFC 1939 §7:
// 1 to 70 characters from 0x21 to 0x7E, unique in the maildrop).
func checkUIDs(msgs []MessageInfo) error {
	seen := make(map[string]struct{}, len(msgs))
	for i, m := range msgs {
		if len(m.UID) == 0 || len(m.UID) > maxUIDLength {
			return fmt.Errorf("message %d: unique-id length %d outside 1..%d", i+1, len(m.UID), maxUIDLength)
		}
		for j := 0; j < len(m.UID); j++ {
			if c := m.UID[j]; c < 0x21 || c > 0x7e {
				return fmt.Errorf("message %d: unique-id has byte %#x", i+1, c)
			}
		}
		if _, dup := seen[m.UID]; dup {
			return fmt.Errorf("message %d: duplicate unique-id %q", i+1, m.UID)
		}
		seen[m.UID] = struct{}{}
		if m.Size < 0 {
			return fmt.Errorf("message %d: negative size", i+1)
		}
	}
	return nil
}
