package smtp

import (
	"bytes"
	"context"
	"errors"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// AUTH mechanism names (RFC 4616 PLAIN; LOGIN from
// draft-murchison-sasl-login, still what many clients use).
const (
	mechPlain = "PLAIN"
	mechLogin = "LOGIN"
)

// authOffered reports whether EHLO should list AUTH: only on the
// submission listeners, with an Authenticator, before authenticating, and
// over TLS unless the client may authenticate in plaintext.
func (s *session) authOffered() bool {
	return s.kind != ListenerMX && s.srv.deps.Authenticator != nil && s.authUser == "" && s.authAllowed()
}

// AuthMechanisms lists the mechanisms EHLO advertises (none when AUTH is
// not allowed now, which also hides the AUTH keyword).
func (s *session) AuthMechanisms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authOffered() {
		return nil
	}
	return []string{mechPlain, mechLogin}
}

// Auth starts an AUTH exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	switch {
	case s.kind == ListenerMX || s.srv.deps.Authenticator == nil:
		return nil, s.wrapErr("auth", gosmtp.ErrAuthUnsupported)
	case !s.authAllowed():
		// RFC 4954 §6: 538 when the mechanism needs an encrypted channel.
		return nil, s.wrapErr("auth", errAuthTLS)
	}
	switch mech {
	case mechPlain:
		return &plainServer{s: s}, nil
	case mechLogin:
		return &loginServer{s: s}, nil
	}
	return nil, s.wrapErr("auth", gosmtp.ErrAuthUnknownMechanism)
}

// authenticate checks credentials and maps the outcome to a reply:
// bad credentials 535 5.7.8, throttled 454 4.7.0, internal 454 4.7.0
// (RFC 4954 §6 "temporary authentication failure"; the cause is logged).
func (s *session) authenticate(user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	name, err := s.srv.deps.Authenticator.Authenticate(ctx, s.tc.ip, user, password)
	switch {
	case err == nil:
		s.mu.Lock()
		s.authUser = name
		s.mu.Unlock()
		s.tc.authed.Store(true) // the wire's bare-newline leniency
		s.log.Info("smtp auth ok", "ip", s.tc.ip.String(), "user", name)
		return nil
	case errors.Is(err, ErrBadCredentials):
		s.log.Warn("smtp auth failed", "ip", s.tc.ip.String(), "user", user)
		return s.wrapErr("auth", errAuthFailed)
	case errors.Is(err, ErrAuthThrottled):
		s.log.Warn("smtp auth throttled", "ip", s.tc.ip.String(), "user", user)
		return s.wrapErr("auth", errAuthThrottle)
	}
	s.log.Error("smtp internal error", "op", "auth", "err", err)
	return s.wrapErr("auth", errAuthTemp)
}

// plainServer is SASL PLAIN (RFC 4616) with popgate's replies; an
// authorization identity other than the user is refused (no proxy auth).
type plainServer struct {
	s    *session
	done bool
}

func (p *plainServer) Next(response []byte) ([]byte, bool, error) {
	if p.done {
		return nil, true, p.s.wrapErr("auth", errAuthMalform)
	}
	if response == nil {
		return []byte{}, false, nil // no initial response: empty challenge
	}
	p.done = true
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return nil, true, p.s.wrapErr("auth", errAuthMalform)
	}
	if len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return nil, true, p.s.wrapErr("auth", errAuthIdentity)
	}
	return nil, true, p.s.authenticate(string(parts[1]), string(parts[2]))
}

// loginServer is SASL LOGIN: "Username:" and "Password:" challenges.
type loginServer struct {
	s     *session
	step  int
	user  string
	ended bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	if l.ended {
		return nil, true, l.s.wrapErr("auth", errAuthMalform)
	}
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough // initial response carries the user name
	case 1:
		if len(response) == 0 {
			l.ended = true
			return nil, true, l.s.wrapErr("auth", errAuthMalform)
		}
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	}
	l.ended = true
	return nil, true, l.s.authenticate(l.user, string(response))
}
