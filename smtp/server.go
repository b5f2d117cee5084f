package smtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	gosmtp "github.com/emersion/go-smtp"
)

// ErrServerClosed is returned by the Serve methods after Shutdown.
var ErrServerClosed = errors.New("smtp: server closed")

// Server is popgate's SMTP server: one go-smtp server per listener role
// (MX, submission, submissions) sharing limits, policy and delivery.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	local  map[string]bool // normalised local domains
	limits *connLimiter

	servers map[ListenerKind]*gosmtp.Server

	// plaintextAuthOK says whether a client may AUTH without TLS; by
	// default loopback clients or everyone when AllowPlaintextAuth is set.
	// Tests replace it to make loopback count as remote.
	plaintextAuthOK func(netip.Addr) bool

	connSeq atomic.Uint64
	bufs    sync.Pool // *dataBufs
	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{} // open connections, for a forced shutdown
	lns     []*listener
}

// NewServer checks cfg and deps and builds a Server. Zero Config fields
// take the Default* values. Authenticator and SenderOwner are needed for
// AUTH; without them the submission listeners offer no AUTH.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	switch {
	case deps.Policy == nil:
		return nil, errors.New("smtp: new server: Policy is required")
	case deps.Recipients == nil:
		return nil, errors.New("smtp: new server: Recipients is required")
	case deps.Deliverer == nil:
		return nil, errors.New("smtp: new server: Deliverer is required")
	case deps.Spooler == nil:
		return nil, errors.New("smtp: new server: Spooler is required")
	case (deps.Authenticator == nil) != (deps.SenderOwner == nil):
		return nil, errors.New("smtp: new server: Authenticator and SenderOwner go together")
	case cfg.BareNewline != BareNewlineReject && cfg.BareNewline != BareNewlineNormalize:
		return nil, fmt.Errorf("smtp: new server: bare newline policy %q is neither %q nor %q",
			cfg.BareNewline, BareNewlineReject, BareNewlineNormalize)
	case cfg.SenderCheck != SenderCheckOwner && cfg.SenderCheck != SenderCheckLocalDomains && cfg.SenderCheck != SenderCheckAny:
		return nil, fmt.Errorf("smtp: new server: unknown sender check %q", cfg.SenderCheck)
	case strings.ContainsAny(cfg.Hostname, " \t\r\n()\\"):
		return nil, fmt.Errorf("smtp: new server: bad hostname %q", cfg.Hostname)
	}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     cfg.Logger,
		local:   make(map[string]bool, len(cfg.LocalDomains)),
		limits:  newConnLimiter(cfg.MaxConns, cfg.MaxConnsPerIP),
		servers: make(map[ListenerKind]*gosmtp.Server, 3),
		conns:   make(map[*trackedConn]struct{}),
		bufs:    sync.Pool{New: newDataBufs},
	}
	for _, d := range cfg.LocalDomains {
		n, err := NormalizeDomain(d)
		if err != nil {
			return nil, fmt.Errorf("smtp: new server: local domain %q: %w", d, err)
		}
		s.local[n] = true
	}
	s.plaintextAuthOK = func(ip netip.Addr) bool {
		return cfg.AllowPlaintextAuth || ip.IsLoopback()
	}
	for _, k := range []ListenerKind{ListenerMX, ListenerSubmission, ListenerSubmissions} {
		s.servers[k] = s.newGoSMTP(k)
	}
	return s, nil
}

// newGoSMTP configures one go-smtp server. Every limit is set explicitly:
// go-smtp's zero values mean "unlimited".
func (s *Server) newGoSMTP(kind ListenerKind) *gosmtp.Server {
	gs := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return s.newSession(c, kind)
	}))
	gs.Domain = s.cfg.Hostname
	gs.TLSConfig = s.cfg.TLS
	gs.LMTP = false
	gs.MaxMessageBytes = s.cfg.MaxMessageBytes
	gs.MaxRecipients = s.cfg.MaxRecipients
	// The wire (wire.go) enforces MaxLineLength on command lines only;
	// go-smtp's own limit would apply to message text too.
	gs.MaxLineLength = 0
	gs.WrapText = s.newWire
	gs.ReadTimeout = s.cfg.ReadTimeout
	gs.WriteTimeout = s.cfg.WriteTimeout
	// go-smtp's switch is server-wide; the session decides per client
	// (TLS, loopback, AllowPlaintextAuth) by offering mechanisms or not.
	gs.AllowInsecureAuth = true
	gs.EnableSMTPUTF8 = true    // RFC 6531: addresses are UTF-8 aware
	gs.EnableBINARYMIME = false // the queue relays as DATA; no binary
	gs.EnableREQUIRETLS = false
	gs.EnableDSN = false
	gs.EnableRRVS = false
	gs.EnableDELIVERBY = false
	gs.EnableMTPRIORITY = false
	gs.Debug = nil
	gs.ErrorLog = errorLog{s.log.With("proto", "smtp", "listener", string(kind))}
	return gs
}

// ServeMX serves inbound mail (port 25 role) on l until Shutdown: mail for
// local domains from anyone, relay only when the Policy allows. STARTTLS is
// offered when Config.TLS is set; AUTH is not offered.
func (s *Server) ServeMX(l net.Listener) error { return s.serve(l, ListenerMX) }

// ServeSubmission serves message submission (port 587 role) on l:
// STARTTLS, and AUTH PLAIN/LOGIN once TLS is up (or from loopback, or
// always with AllowPlaintextAuth).
func (s *Server) ServeSubmission(l net.Listener) error { return s.serve(l, ListenerSubmission) }

// ServeSubmissions serves submission over implicit TLS (port 465 role,
// RFC 8314) on l, which must be a plain TCP listener; Config.TLS is required.
func (s *Server) ServeSubmissions(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("smtp: serve submissions: Config.TLS is required")
	}
	return s.serve(l, ListenerSubmissions)
}

func (s *Server) serve(l net.Listener, kind ListenerKind) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	wl := s.wrapListener(l, kind)
	s.lns = append(s.lns, wl)
	s.mu.Unlock()
	s.log.Info("smtp listening", "listener", string(kind), "addr", l.Addr().String())
	if err := s.servers[kind].Serve(wl); err != nil {
		return fmt.Errorf("smtp: serve %s %s: %w", kind, l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting, then waits for sessions to end until ctx is
// done; then it closes the remaining connections and returns ctx's error.
// A message whose DATA is being delivered finishes first unless ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	lns := s.lns
	s.mu.Unlock()
	for _, l := range lns {
		_ = l.Close() // go-smtp closes them too, unless Serve had not registered yet
	}

	var wg sync.WaitGroup
	errs := make([]error, 0, len(s.servers))
	var emu sync.Mutex
	for kind, gs := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := gs.Shutdown(ctx)
			if err != nil && !errors.Is(err, net.ErrClosed) && !isClosedListener(err) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("smtp: shutdown %s: %w", kind, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// go-smtp's Close is a no-op after Shutdown: close what is left.
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Conn.Close()
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// track registers an open connection; it returns false after Shutdown.
func (s *Server) track(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// isClosedListener reports the error of closing an already closed listener.
func isClosedListener(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection")
}

// isLocal reports whether a normalised domain is one of ours.
func (s *Server) isLocal(domain string) bool { return s.local[domain] }

// errorLog adapts go-smtp's Printf logger to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Warn("smtp server error", "err", fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...any) {
	e.log.Warn("smtp server error", "err", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
