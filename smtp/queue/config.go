package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/afero"
)

// Defaults and protocol limits.
const (
	// DefaultMinRetry is the first retry interval; it doubles per attempt.
	DefaultMinRetry = 5 * time.Minute
	// DefaultMaxAge is how long a message is retried before it bounces
	// (RFC 5321 §4.5.4.1: give up after at least 4-5 days).
	DefaultMaxAge = 120 * time.Hour
	// DefaultMaxConcurrent caps simultaneous outbound connections.
	DefaultMaxConcurrent = 20
	// DefaultMaxPerDestination caps simultaneous connections per
	// destination (smarthost or recipient domain).
	DefaultMaxPerDestination = 4
	// DefaultPort is the SMTP relay port (RFC 5321 §4.5.4.2).
	DefaultPort = "25"

	// commandTimeout bounds the wait for each reply, including the
	// greeting (RFC 5321 §4.5.3.2: 5 minutes for most commands).
	commandTimeout = 5 * time.Minute
	// dataTimeout bounds the wait for the reply after the final dot
	// (RFC 5321 §4.5.3.2.6: 10 minutes).
	dataTimeout = 10 * time.Minute
	// dialTimeout bounds one TCP connect.
	dialTimeout = 30 * time.Second
	// shutdownGrace is how long Run lets in-flight deliveries finish after
	// its context is done before it cuts their connections.
	shutdownGrace = 10 * time.Second
	// maxIdleWait makes the loop re-check its schedule at least this often,
	// so a jump of the wall clock is noticed.
	maxIdleWait = time.Minute
	// maxHeaderBytes bounds the original header copied into a DSN.
	maxHeaderBytes = 64 << 10
)

// TLS modes for Config.SmarthostTLS.
const (
	TLSRequired      = "required"
	TLSOpportunistic = "opportunistic"
	TLSNone          = "none"
)

// Auth holds smarthost credentials for AUTH PLAIN (RFC 4616).
type Auth struct {
	Username string
	Password string
}

// Resolver is the part of net.Resolver the queue needs to route mail.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Bouncer takes delivery status notifications back into the mail system:
// local delivery for a local sender, the queue for a remote one. from is
// always the null sender "".
type Bouncer interface {
	Inject(ctx context.Context, from string, to []string, r io.Reader) error
}

// Config configures a Queue. Zero values take the documented defaults.
type Config struct {
	// Dir is the spool directory (data_dir/queue); created if missing.
	Dir string
	// Fs holds Dir; nil means the real filesystem.
	Fs afero.Fs
	// Hostname is sent in EHLO and names the reporting MTA in DSNs.
	Hostname string

	// Smarthost ("host:port") receives all mail; empty means MX delivery.
	Smarthost string
	// SmarthostAuth, if set, is used with AUTH PLAIN, only over TLS.
	SmarthostAuth *Auth
	// SmarthostTLS is TLSRequired, TLSOpportunistic (default) or TLSNone.
	SmarthostTLS string
	// Routes send the mail of some domains to a fixed "host:port" instead
	// of the domain's MX or the smarthost, as sendmail's mailertable does:
	// a key "example.net" is that domain only, ".example.net" any domain
	// below it (the longest match wins). The host is dialled as it is, with
	// opportunistic TLS and never the smarthost's credentials.
	Routes map[string]string
	// TLSConfig is the base client TLS configuration (roots, versions).
	TLSConfig *tls.Config

	// MinRetry is the first retry interval (default 5m), doubling after
	// every attempt.
	MinRetry time.Duration
	// MaxAge is how long a message is retried before it bounces
	// (default 120h).
	MaxAge time.Duration
	// WarnAfter, if positive, sends one "delayed" DSN once a message has
	// waited that long.
	WarnAfter time.Duration

	// MaxConcurrent caps simultaneous deliveries (default 20).
	MaxConcurrent int
	// MaxPerDestination caps simultaneous connections to one
	// destination (default 4).
	MaxPerDestination int

	// Resolver looks up MX and host addresses; nil means net.DefaultResolver.
	Resolver Resolver
	// Dial opens connections; nil means a net.Dialer with a timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Port is the port used for MX hosts (default "25").
	Port string

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives queue events; nil discards them.
	Logger *slog.Logger
	// Bouncer takes DSNs back into the mail system. Required.
	Bouncer Bouncer
}

// withDefaults checks cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Dir == "" {
		return cfg, errors.New("queue: config: Dir is empty")
	}
	if cfg.Bouncer == nil {
		return cfg, errors.New("queue: config: Bouncer is nil")
	}
	if cfg.Fs == nil {
		cfg.Fs = afero.NewOsFs()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if err := validateLine(cfg.Hostname); err != nil {
		return cfg, fmt.Errorf("queue: config: hostname: %w", err)
	}
	switch cfg.SmarthostTLS {
	case "":
		cfg.SmarthostTLS = TLSOpportunistic
	case TLSRequired, TLSOpportunistic, TLSNone:
	default:
		return cfg, fmt.Errorf("queue: config: smarthost TLS mode %q: want %q, %q or %q",
			cfg.SmarthostTLS, TLSRequired, TLSOpportunistic, TLSNone)
	}
	if cfg.Smarthost != "" {
		if _, _, err := net.SplitHostPort(cfg.Smarthost); err != nil {
			return cfg, fmt.Errorf("queue: config: smarthost %q: %w", cfg.Smarthost, err)
		}
	}
	if err := CheckRoutes(cfg.Routes); err != nil {
		return cfg, err
	}
	if cfg.SmarthostAuth != nil {
		if cfg.Smarthost == "" {
			return cfg, errors.New("queue: config: smarthost auth without a smarthost")
		}
		if cfg.SmarthostTLS == TLSNone {
			return cfg, errors.New("queue: config: smarthost auth needs TLS (credentials are never sent in clear)")
		}
	}
	if cfg.MinRetry < 0 || cfg.MaxAge < 0 || cfg.WarnAfter < 0 {
		return cfg, errors.New("queue: config: negative duration")
	}
	if cfg.MinRetry == 0 {
		cfg.MinRetry = DefaultMinRetry
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxConcurrent < 0 || cfg.MaxPerDestination < 0 {
		return cfg, errors.New("queue: config: negative concurrency limit")
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxPerDestination == 0 {
		cfg.MaxPerDestination = DefaultMaxPerDestination
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		cfg.Dial = d.DialContext
	}
	if cfg.Port == "" {
		cfg.Port = DefaultPort
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
