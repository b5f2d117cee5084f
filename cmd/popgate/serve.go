package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/auth"
	"github.com/popgate/popgate/cmd/popgate/internal/promtext"
	"github.com/popgate/popgate/maildir"
	"github.com/popgate/popgate/pop3"
	"github.com/popgate/popgate/smtp"
	"github.com/popgate/popgate/smtp/aliases"
	"github.com/popgate/popgate/smtp/pickup"
	"github.com/popgate/popgate/smtp/queue"
	"github.com/spf13/afero"
)

// shutdownTimeout bounds the drain at SIGTERM: sessions still running
// after it are cut (a POP3 session cut this way deletes nothing).
const shutdownTimeout = 30 * time.Second

// options are what the process gives assemble besides the configuration:
// tests inject a clock and a logger, and read the bound addresses back.
type options struct {
	now        func() time.Time
	logger     *slog.Logger
	configPath string   // re-read on SIGHUP; "" is the embedded default
	metrics    *metrics // nil: metrics off
}

// listener is one bound socket and the server loop that serves it.
type listener struct {
	name  string // configuration key, e.g. "pop3.listen"
	ln    net.Listener
	serve func(net.Listener) error
}

// services is everything `popgate serve` runs, built by assemble.
type services struct {
	cfg        *Config
	configPath string
	logger     *slog.Logger
	now        func() time.Time
	authSvc    *auth.Service
	store      *maildir.Store
	grants     *acl.Grants
	shared     *acl.Shared                // nil: grants in memory (relay.grants_url = "")
	relay      atomic.Pointer[relayState] // swapped by reload
	report     *relayReport
	metrics    *metrics // nil: metrics off
	queue      *queue.Queue
	pop3       *pop3.Server
	smtp       *smtp.Server
	listeners  []listener
	lookups    lookupServers // policy and socket map servers, each nil when off
	control    *controlServer
	pickup     *pickup.Server // sendmail(1): local socket and maildrop
	pickupLn   net.Listener
	reloadReq  chan struct{} // `newaliases` asks for a reload, as SIGHUP does
}

// assemble builds every service from cfg and binds every listener; it is
// the one place that knows how the packages fit together. On error,
// whatever was bound is closed again.
func assemble(cfg *Config, opt options) (_ *services, err error) {
	now, logger := opt.now, opt.logger
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &services{cfg: cfg, logger: logger, now: now, configPath: opt.configPath, metrics: opt.metrics,
		reloadReq: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			s.closeListeners()
			if s.queue != nil {
				_ = s.queue.Close()
			}
			if s.grants != nil {
				_ = s.grants.Close()
			}
		}
	}()
	fs := afero.NewOsFs()
	for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "state")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.mailDir(), 0o700); err != nil {
		return nil, fmt.Errorf("mail_dir: %w", err)
	}
	if err := ensureUsersFile(cfg); err != nil {
		return nil, err
	}
	tlsConf, err := loadTLS(cfg, now(), logger)
	if err != nil {
		return nil, err
	}

	users, err := auth.NewUsers(fs, cfg.usersFile(), now, logger.With("part", "users"))
	if err != nil {
		return nil, err
	}
	s.authSvc = auth.NewService(users, auth.NewLimiter(auth.DefaultLimiterConfig(), now), logger.With("part", "auth"))
	instance, err := instanceID(fs, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.store = maildir.NewStore(fs, cfg.mailDir(), maildir.Options{
		Hostname: cfg.Hostname,
		Instance: instance,
		Now:      now,
		LeaseTTL: cfg.POP3.LockLease.Duration,
		Logger:   logger.With("part", "maildir"),
	})

	localDomains := map[string]bool{}
	for _, d := range cfg.Domains {
		localDomains[strings.ToLower(strings.TrimSuffix(d, "."))] = true
	}
	isLocal := func(d string) bool { return localDomains[d] }
	s.grants, err = acl.NewGrants(acl.GrantsConfig{
		TTL:        cfg.Relay.PopTTL.Duration,
		NeverGrant: prefixes(cfg.Relay.NeverGrant),
		StatePath:  filepath.Join(cfg.DataDir, "state", "grants"),
		Fs:         fs,
		Now:        now,
		Logger:     logger.With("part", "grants"),
	})
	if err != nil {
		return nil, err
	}
	if cfg.Relay.GrantsURL != "" {
		if s.shared, err = shareGrants(cfg, s.grants, now, logger); err != nil {
			return nil, err
		}
	}
	s.report = newRelayReport(filepath.Join(cfg.DataDir, "state", "relay-report.json"), now, logger.With("part", "report"))
	rs, err := s.buildRelay(cfg)
	if err != nil {
		return nil, err
	}
	s.relay.Store(rs)
	rcpts := &recipients{users: s.authSvc, aliases: func() *aliases.Map { return s.relay.Load().aliases }, isLocal: isLocal, logger: logger.With("part", "aliases")}

	b := &bouncer{rcpts: rcpts, store: s.store, queue: func() *queue.Queue { return s.queue }, log: logger.With("part", "bounce")}
	s.queue, err = queue.New(queue.Config{
		Dir:       filepath.Join(cfg.DataDir, "queue"),
		Fs:        fs,
		Hostname:  cfg.Hostname,
		Smarthost: cfg.Queue.Smarthost,
		Routes:    cfg.Queue.Routes,
		MinRetry:  cfg.Queue.MinRetry.Duration,
		MaxAge:    cfg.Queue.MaxAge.Duration,
		Now:       now,
		Logger:    logger.With("part", "queue"),
		Bouncer:   b,
	})
	if err != nil {
		return nil, err
	}

	s.pop3 = pop3.NewServer(pop3.Config{
		Hostname:           cfg.Hostname,
		TLS:                tlsConf,
		AllowPlaintextAuth: cfg.POP3.AllowPlaintextAuth,
		EnableAPOP:         cfg.POP3.EnableAPOP,
		PlainPassword: func(_ context.Context, user string) (string, bool, error) {
			pw, ok := s.authSvc.PlainPassword(user)
			return pw, ok, nil
		},
		IdleTimeout:   cfg.POP3.IdleTimeout.Duration,
		MaxConns:      cfg.POP3.MaxConnections,
		MaxConnsPerIP: cfg.POP3.MaxConnectionsIP,
		ProxyNetworks: prefixes(cfg.Relay.ProxyProtocol),
		Logger:        logger,
		// No injected clock: pop3 sets socket deadlines from its clock,
		// and those must follow real time.
	}, popAuth{s.authSvc}, maildrop{s.store}, s.grants)

	s.smtp, err = smtp.NewServer(smtp.Config{
		Hostname:           cfg.Hostname,
		LocalDomains:       cfg.Domains,
		TLS:                tlsConf,
		MaxMessageBytes:    cfg.SMTP.MaxMessageBytes,
		MaxRecipients:      cfg.SMTP.MaxRecipients,
		ReadTimeout:        cfg.SMTP.Timeout.Duration,
		WriteTimeout:       cfg.SMTP.Timeout.Duration,
		MaxConns:           cfg.SMTP.MaxConnections,
		MaxConnsPerIP:      cfg.SMTP.MaxConnectionsIP,
		AllowPlaintextAuth: cfg.SMTP.AllowPlaintextAuth,
		SenderCheck:        smtp.SenderCheck(strings.ToLower(cfg.SMTP.SenderCheck)),
		ProxyNetworks:      prefixes(cfg.Relay.ProxyProtocol),
		TempDir:            filepath.Join(cfg.DataDir, "state"),
		Logger:             logger,
		Now:                now,
		BareNewline:        smtp.BareNewline(cfg.SMTP.BareNewline),

		// Asked per client, so a reload's trusted_networks apply at once.
		TrustedClient: func(ip netip.Addr) bool { return s.relay.Load().policy.Trusted(ip) },
	}, smtp.Deps{
		Policy:        smtpPolicy{policy: func() *acl.Policy { return s.relay.Load().policy }, report: s.report},
		Recipients:    rcpts,
		Deliverer:     deliverer{s.store},
		Spooler:       spooler{s.queue},
		Authenticator: smtpAuth{s.authSvc},
		SenderOwner:   rcpts,
		Storage: &diskSpace{
			paths:   []string{filepath.Join(cfg.DataDir, "mail"), filepath.Join(cfg.DataDir, "queue"), filepath.Join(cfg.DataDir, "state")},
			reserve: cfg.minFreeBytes(),
			free:    freeBytes,
		},
	})
	if err != nil {
		return nil, err
	}
	s.lookups = s.newLookupServers()
	if err := s.bind(tlsConf); err != nil {
		return nil, err
	}
	s.control, err = listenControl(cfg.controlSocket(), s.controlHandlers(), logger.With("part", "control"))
	if err != nil {
		return nil, err
	}
	if err := s.listenPickup(rcpts); err != nil {
		return nil, err
	}
	return s, nil
}

func loadAliases(path string, logger *slog.Logger) (*aliases.Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users.aliases: %w", err)
	}
	defer f.Close()
	m, err := aliases.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("users.aliases %s: %w", path, err)
	}
	m.Logger = logger.With("part", "aliases")
	m.ReadInclude = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	return m, nil
}

// bindSet is one configuration key's listeners and what serves them.
type bindSet struct {
	key   string
	addrs []string
	serve func(net.Listener) error
}

// bind opens every configured listener, so that a port in use is an error
// at start, before anything is served.
func (s *services) bind(tlsConf *tls.Config) error {
	sets := []bindSet{
		{"pop3.listen", s.cfg.POP3.Listen, s.pop3.Serve},
		{"pop3.listen_tls", s.cfg.POP3.ListenTLS, s.pop3.ServeTLS},
		{"smtp.listen", s.cfg.SMTP.Listen, s.smtp.ServeMX},
		{"smtp.submission", s.cfg.SMTP.Submission, s.smtp.ServeSubmission},
		{"smtp.submissions", s.cfg.SMTP.Submissions, s.smtp.ServeSubmissions},
	}
	sets = append(sets, s.lookups.bindSets(s.cfg)...)
	for _, set := range sets {
		for _, addr := range set.addrs {
			ln, err := listenAddr(addr)
			if err != nil {
				return fmt.Errorf("%s: %w", set.key, err)
			}
			s.listeners = append(s.listeners, listener{name: set.key, ln: ln, serve: set.serve})
		}
	}
	return nil
}

func (s *services) closeListeners() {
	for _, l := range s.listeners {
		l.ln.Close()
	}
	if s.control != nil {
		s.control.close()
	}
	if s.pickupLn != nil {
		s.pickupLn.Close()
	}
}

// addr returns the bound address of the first listener for key, for tests.
func (s *services) addr(key string) string {
	for _, l := range s.listeners {
		if l.name == key {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// shareGrants connects the grants to the store of relay.grants_url. The
// store need not be up: sharing starts when it answers.
func shareGrants(cfg *Config, g *acl.Grants, now func() time.Time, logger *slog.Logger) (*acl.Shared, error) {
	var password string
	if f := cfg.Relay.GrantsPasswordFile; f != "" {
		var err error
		if password, err = readPasswordFile(f); err != nil {
			return nil, fmt.Errorf("relay.grants_password_file: %w", err)
		}
	}
	return acl.NewShared(g, cfg.Relay.GrantsURL, password, acl.SharedConfig{Now: now, Logger: logger.With("part", "grants")})
}

// run serves until ctx is done, then drains in order: stop accepting,
// let sessions finish (bounded), stop the queue and the mirror, and write
// the grants state.
func (s *services) run(ctx context.Context, reload <-chan os.Signal) error {
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go s.grants.Start(bg)
	if s.shared != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.shared.Run(bg)
		}()
	}
	errc := make(chan error, len(s.listeners)+3)
	for _, l := range s.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.serve(l.ln); err != nil && !errors.Is(err, pop3.ErrServerClosed) &&
				!errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("%s %s: %w", l.name, l.ln.Addr(), err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.queue.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("queue: %w", err)
		}
	}()
	mirrors := s.startMirror(bg, s.relay.Load(), nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.report.run(bg)
	}()
	go s.control.serve(bg)
	s.runPickup(bg, &wg, errc)

	// SIGHUP and `newaliases` (control "reload") reload the same way.
	doReload := func() {
		if err := s.reload(); err != nil {
			s.logger.Error("reload rejected, the running configuration stays", "err", err)
			return
		}
		mirrors = s.startMirror(bg, s.relay.Load(), mirrors)
		s.logger.Info("reload done")
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case runErr = <-errc:
			s.logger.Error("popgate stopping", "err", runErr)
			break loop
		case <-reload:
			doReload()
		case <-s.reloadReq:
			doReload()
		}
	}
	s.logger.Info("popgate draining")
	drain, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = s.pop3.Shutdown(drain)
	_ = s.smtp.Shutdown(drain)
	s.closePickup(drain)
	s.lookups.close()
	s.control.close()
	stopBG()
	wg.Wait()
	mirrors.wait()
	if err := s.queue.Close(); err != nil {
		s.logger.Error("queue close", "err", err)
	}
	if err := s.grants.Close(); err != nil {
		s.logger.Error("grants state not written", "err", err)
	}
	s.logger.Info("popgate stopped")
	return runErr
}

// serveCommand runs every listener until SIGINT or SIGTERM.
func serveCommand(ctx context.Context, e *env, args []string) error {
	cfg, path, _, err := commandConfig(e, "serve", args, 0, 0)
	if err != nil {
		return err
	}
	reg := promtext.NewRegistry()
	var m *metrics
	if cfg.Metrics.Listen != "" {
		m = newMetrics(reg)
	}
	logger := slog.New(m.handler(newLogger(e.stderr, cfg.Log).Handler()))
	s, err := assemble(cfg, options{logger: logger, configPath: path, metrics: m})
	if err != nil {
		return err
	}
	if err := m.instrument(s); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "popgate %s serving %s (data in %s)\n", version, strings.Join(cfg.Domains, ", "), cfg.DataDir)
	for _, l := range s.listeners {
		fmt.Fprintf(e.stdout, "  %-17s %s\n", l.name, l.ln.Addr())
	}
	fmt.Fprintf(e.stdout, "  control socket    %s\n", cfg.controlSocket())
	fmt.Fprintf(e.stdout, "  sendmail socket   %s (maildrop %s)\n", cfg.sendmailSocket(), cfg.maildropDir())
	if cfg.Metrics.Listen != "" {
		ln, err := serveMetrics(ctx, cfg.Metrics.Listen, reg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "  %-17s http://%s/metrics\n", "metrics", ln.Addr())
	}
	// Started as root to bind low ports: hand the data over, then drop
	// privileges for good before serving any connection.
	if cfg.Process.User != "" {
		if err := handOverDataDir(cfg, cfg.Process.User, cfg.Process.Group); err != nil {
			return err
		}
		if err := dropPrivileges(cfg.Process.User, cfg.Process.Group); err != nil {
			return err
		}
	}
	if err := sdNotify("READY=1"); err != nil {
		logger.Warn("sd_notify failed", "err", err)
	}
	go func() { <-ctx.Done(); _ = sdNotify("STOPPING=1") }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return s.run(ctx, hup)
}
