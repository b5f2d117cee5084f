package smtp

import (
	"crypto/tls"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for Config fields left zero. Every go-smtp limit is set from
// these explicitly: go-smtp treats zero as "unlimited".
const (
	// DefaultMaxMessageBytes caps DATA/BDAT (advertised as SIZE, RFC 1870).
	DefaultMaxMessageBytes = 25 << 20
	// DefaultMaxRecipients: RFC 5321 §4.5.3.1.8 requires at least 100.
	DefaultMaxRecipients = 100
	// DefaultMaxLineLength bounds command lines (CRLF included): RFC 5321
	// §4.5.3.1.4 allows 512 octets, SMTP extensions add parameters, and
	// Postfix's line_length_limit is 2048. Message text lines have no
	// limit of their own (RFC 5321 §4.5.3.1.6: receivers take longer
	// lines); MaxMessageBytes bounds them.
	DefaultMaxLineLength = 2000
	// DefaultReadTimeout: RFC 5321 §4.5.3.2.7 server timeout of 5 minutes.
	DefaultReadTimeout = 5 * time.Minute
	// DefaultWriteTimeout bounds one reply write to a stalled client.
	DefaultWriteTimeout = 1 * time.Minute
	// DefaultMaxConns bounds simultaneous connections across all listeners.
	DefaultMaxConns = 500
	// DefaultMaxConnsPerIP bounds simultaneous connections from one client IP.
	DefaultMaxConnsPerIP = 20
	// DefaultMaxErrors closes a session after this many failed commands
	// (rejected senders or recipients, failed AUTH, failed DATA).
	DefaultMaxErrors = 10
	// DefaultMaxSessionTime bounds a whole connection, however busy: the
	// per-command ReadTimeout alone lets a client hold a slot forever.
	DefaultMaxSessionTime = time.Hour
	// DefaultMemoryBufferBytes: messages up to this size are buffered in
	// memory before delivery; larger ones spill to a temporary file.
	DefaultMemoryBufferBytes = 1 << 20
)

// Fixed timeouts.
const (
	// tlsHandshakeTimeout bounds the implicit-TLS handshake before greeting.
	tlsHandshakeTimeout = 30 * time.Second
	// proxyHeaderTimeout bounds reading a PROXY header from a trusted proxy.
	proxyHeaderTimeout = 5 * time.Second
	// deliverTimeout bounds Deliver plus Spool for one message: half of the
	// 10 minutes a client waits for the reply to end of data
	// (RFC 5321 §4.5.3.2.6).
	deliverTimeout = 5 * time.Minute
	// acceptBacklog is how many prepared connections wait for go-smtp.
	acceptBacklog = 16
)

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Hostname appears in the greeting and in Received headers.
	Hostname string
	// LocalDomains are the domains delivered to local mailboxes. Any form
	// (U-label, A-label, mixed case, trailing dot) is normalised.
	LocalDomains []string
	// TLS enables STARTTLS on MX and submission and is required for
	// ServeSubmissions. nil: no TLS.
	TLS *tls.Config

	MaxMessageBytes int64
	MaxRecipients   int
	MaxLineLength   int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	MaxConns        int
	MaxConnsPerIP   int
	MaxErrors       int
	// MaxSessionTime is the lifetime of one connection; 0: default.
	MaxSessionTime time.Duration

	// MemoryBufferBytes is the largest message kept in memory while it is
	// delivered; 0: DefaultMemoryBufferBytes.
	MemoryBufferBytes int64
	// TempDir holds temporary files for larger messages; "": os.TempDir().
	TempDir string

	// SenderCheck says which envelope senders an authenticated session may
	// use (553 5.7.1 otherwise); "": SenderCheckOwner.
	SenderCheck SenderCheck

	// AllowPlaintextAuth offers AUTH before TLS to everyone. Loopback
	// clients may always authenticate in plaintext.
	AllowPlaintextAuth bool
	// ProxyNetworks are the peers trusted to send a PROXY v1/v2 header;
	// from them the header is required, from anyone else never parsed.
	ProxyNetworks []netip.Prefix

	// BareNewline is what bare CR and bare LF get in commands and
	// message text; "": BareNewlineReject.
	BareNewline BareNewline
	// TrustedClient reports whether a client address is in a trusted
	// network, for BareNewlineNormalize; nil: none is.
	TrustedClient func(netip.Addr) bool

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for Received headers; nil: time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = DefaultMaxLineLength
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.MaxSessionTime <= 0 {
		c.MaxSessionTime = DefaultMaxSessionTime
	}
	if c.MemoryBufferBytes <= 0 {
		c.MemoryBufferBytes = DefaultMemoryBufferBytes
	}
	if c.BareNewline == "" {
		c.BareNewline = BareNewlineReject
	}
	if c.SenderCheck == "" {
		c.SenderCheck = SenderCheckOwner
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
