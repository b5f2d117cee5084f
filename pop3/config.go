package pop3

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"time"
)

// Protocol limits, each with the section that sets it.
const (
	// MaxCommandLine is the longest command line accepted, CRLF included
	// (RFC 2449 §4: 255 octets). Longer lines get "-ERR" and the session
	// resynchronises at the next line ending.
	MaxCommandLine = 255
	// MaxSASLLine is the longest SASL response line accepted, CRLF
	// included. RFC 5034 §4 lifts the 255-octet limit for responses to
	// server challenges; 4096 octets is ample for PLAIN and LOGIN.
	MaxSASLLine = 4096
	// MinIdleTimeout is the idle time RFC 1939 §3 requires a server to
	// allow before an autologout timer may fire: 10 minutes.
	MinIdleTimeout = 10 * time.Minute
	// maxProtocolErrors closes a session after this many client mistakes
	// (unknown commands, wrong state, bad arguments). Real clients probe
	// (LAST, XTND, TOP with odd arguments) and must not be hung up on
	// after three; Dovecot allows 20 (CLIENT_MAX_BAD_COMMANDS).
	maxProtocolErrors = 20
	// maxFailedLogins closes a session after this many refused logins
	// (USER/PASS, APOP, AUTH), counted apart from protocol mistakes so
	// that probing commands do not buy a password guesser more tries.
	maxFailedLogins = 3
	// maxUIDLength bounds a unique-id (RFC 1939 §7: 1 to 70 characters).
	maxUIDLength = 70
)

// Defaults for zero Config fields.
const (
	// DefaultIdleTimeout is the autologout timer (RFC 1939 §3: at least 10 minutes).
	DefaultIdleTimeout = MinIdleTimeout
	// DefaultCommandTimeout bounds each write to the client and the TLS
	// handshake: a client that stops reading is dropped after this long.
	DefaultCommandTimeout = time.Minute
	// DefaultMaxLifetime bounds a whole connection.
	DefaultMaxLifetime = 2 * time.Hour
	// DefaultMaxConns bounds the number of concurrent connections.
	DefaultMaxConns = 1000
	// DefaultMaxConnsPerIP bounds concurrent connections from one address.
	DefaultMaxConnsPerIP = 20
	// authTimeout bounds one call to the Authenticator or Maildrop.
	authTimeout = 30 * time.Second
)

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Hostname appears in the greeting and the APOP timestamp.
	Hostname string
	// TLS enables STLS on plain listeners (RFC 2595) and is required by
	// ServeTLS. Nil: no TLS.
	TLS *tls.Config
	// AllowPlaintextAuth allows USER/PASS, APOP and AUTH before TLS from
	// any address. Otherwise they are refused with "-ERR [AUTH]" before
	// TLS unless IsLocal reports the client as local.
	AllowPlaintextAuth bool
	// IsLocal reports whether a client address may authenticate without
	// TLS. Nil: loopback addresses are local.
	IsLocal func(netip.Addr) bool
	// EnableAPOP turns on APOP (RFC 1939 §7) when PlainPassword is set too:
	// the greeting then carries a timestamp.
	EnableAPOP bool
	// PlainPassword returns a user's stored plaintext password for APOP,
	// and ok=false when the stored password is hashed (APOP then fails for
	// that user like a wrong password).
	PlainPassword func(ctx context.Context, user string) (password string, ok bool, err error)
	// IdleTimeout is the autologout timer. RFC 1939 §3 requires at least
	// 10 minutes; shorter values are for tests.
	IdleTimeout time.Duration
	// CommandTimeout bounds each write to the client and the TLS handshake.
	CommandTimeout time.Duration
	// MaxLifetime bounds a whole connection.
	MaxLifetime time.Duration
	// MaxConns and MaxConnsPerIP cap concurrent connections; over a cap the
	// client gets "-ERR [SYS/TEMP] too many connections" and is closed.
	MaxConns, MaxConnsPerIP int
	// ProxyNetworks are trusted balancers (HAProxy send-proxy-v2): their
	// connections must start with a PROXY v1/v2 header, whose source
	// address is then the client's for logins, limits and logs. Empty: no
	// PROXY protocol.
	ProxyNetworks []netip.Prefix
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Now is the clock used for deadlines and the APOP timestamp; nil:
	// time.Now. It must follow real time, since it sets socket deadlines.
	Now func() time.Time
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.IsLocal == nil {
		c.IsLocal = func(a netip.Addr) bool { return a.IsLoopback() }
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
