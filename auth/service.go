package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"time"
)

// MaxPasswordLen bounds the passwords Authenticate will hash. SHA-crypt's
// cost grows with the square of the password length, so a client must not
// choose it freely; longer passwords fail like wrong ones, unhashed. No
// protocol popgate speaks carries more (POP3 lines are 255 octets, RFC 2449).
const MaxPasswordLen = 1024

// ErrInvalidCredentials is the one answer for a wrong password and for an
// unknown user, so a client cannot tell them apart.
var ErrInvalidCredentials = errors.New("auth: invalid credentials")

// ErrThrottled is matched (errors.Is) by every *ThrottledError.
var ErrThrottled = errors.New("auth: too many failed logins")

// ThrottledError says the attempt was refused without checking the
// password, and when trying again may succeed.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: too many failed logins, retry after %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Service authenticates logins against a users file under a failed-login
// limiter. Safe for concurrent use.
type Service struct {
	users  *Users
	lim    *Limiter
	logger *slog.Logger
	// hashing bounds concurrent password verifications: an Argon2id check
	// holds 19 MiB or more, so a burst of logins must queue, not allocate.
	hashing chan struct{}
}

// NewService combines users and lim; logger receives the fixed events
// "auth ok", "auth failed" and "auth throttled" (attributes user and ip;
// never a password) and "auth error" for internal failures.
func NewService(users *Users, lim *Limiter, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		users: users, lim: lim, logger: logger,
		hashing: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
	}
}

// Authenticate checks user's password for a client at ip and returns the
// canonical (lowercase) user name. Errors: ErrInvalidCredentials for a
// wrong password or an unknown user (same error, same cost), a
// *ThrottledError when the limiter refuses the attempt, ctx's error if it
// ends while waiting for a hashing slot, or an internal error.
func (s *Service) Authenticate(ctx context.Context, ip netip.Addr, user, password string) (string, error) {
	name := CanonicalUsername(user)
	if len(name) > MaxUsernameLen {
		// Such a user cannot exist; keep limiter keys and logs bounded.
		name = strings.ToValidUTF8(name[:MaxUsernameLen], "?")
	}
	if err := s.check(ip, name); err != nil {
		return "", err
	}
	if len(password) > MaxPasswordLen {
		s.lim.Fail(ip, name, password)
		s.logger.Info("auth failed", "user", name, "ip", ip)
		return "", ErrInvalidCredentials
	}
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("auth: %w", ctx.Err())
	}
	// Again now that a slot is ours: attempts that queued together behind
	// the slots must not all pass on the state from before they queued.
	if err := s.check(ip, name); err != nil {
		<-s.hashing
		return "", err
	}
	canonical, ok, err := s.users.verify(name, password)
	<-s.hashing
	switch {
	case errors.Is(err, errNoUser):
		ok = false
	case err != nil:
		s.logger.Error("auth error", "user", name, "ip", ip, "error", err)
		return "", err
	}
	if !ok {
		s.lim.Fail(ip, name, password)
		s.logger.Info("auth failed", "user", name, "ip", ip)
		return "", ErrInvalidCredentials
	}
	s.lim.Succeed(ip, name)
	s.logger.Info("auth ok", "user", canonical, "ip", ip)
	return canonical, nil
}

// check asks the limiter and logs a refusal.
func (s *Service) check(ip netip.Addr, name string) error {
	wait, ok := s.lim.Check(ip, name)
	if ok {
		return nil
	}
	s.logger.Warn("auth throttled", "user", name, "ip", ip, "retry_after", wait)
	return &ThrottledError{RetryAfter: wait}
}

// UserExists reports whether user (any case) is in the users file, for
// SMTP RCPT checks.
func (s *Service) UserExists(user string) bool { return s.users.Exists(user) }

// PlainPassword returns the stored password of a {PLAIN} user (APOP needs
// it); false for any other scheme or an unknown user.
func (s *Service) PlainPassword(user string) (string, bool) { return s.users.plain(user) }
