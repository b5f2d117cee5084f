package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// Server is a POP3 server. Create it with NewServer, run listeners with
// Serve and ServeTLS, stop it with Shutdown.
type Server struct {
	cfg  Config
	auth Authenticator
	drop Maildrop
	obs  LoginObserver

	nextID   atomic.Uint64
	shutting atomic.Bool

	// ctx is the parent of every Authenticator and Maildrop call; cancel
	// ends them when Shutdown runs out of time.
	ctx    context.Context
	cancel context.CancelFunc

	// writers and bufs are shared by sessions while they reply, so an
	// idle session holds no output buffer.
	writers sync.Pool // *bufio.Writer of writerSize
	bufs    sync.Pool // *[]byte for reading message bodies

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	perIP     map[netip.Addr]int
	total     int
	wg        sync.WaitGroup
}

// NewServer returns a server that authenticates with auth, opens mailboxes
// from drop and tells obs (which may be nil) about successful logins.
func NewServer(cfg Config, auth Authenticator, drop Maildrop, obs LoginObserver) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ctx:       ctx,
		cancel:    cancel,
		cfg:       cfg.withDefaults(),
		auth:      auth,
		drop:      drop,
		obs:       obs,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		perIP:     make(map[netip.Addr]int),
	}
	s.writers.New = func() any { return bufio.NewWriterSize(nil, writerSize) }
	s.bufs.New = func() any { b := make([]byte, 32*1024); return &b }
	return s
}

// Serve accepts plain connections on l (STLS is offered when Config.TLS
// is set) until Shutdown, when it returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, false)
}

// ServeTLS accepts implicit-TLS connections (RFC 8314, port 995) on l.
// Config.TLS must be set. Each accepted connection is wrapped with
// tls.Server after its client address is taken, so a PROXY-protocol
// listener's ClientAddr still counts.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("pop3: ServeTLS needs Config.TLS")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	l = s.withProxy(l)
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("pop3: accept: %w", err)
		}
		backoff = 0
		if pc, ok := c.(*proxyproto.Conn); ok {
			go s.acceptProxied(pc, implicitTLS)
			continue
		}
		s.accept(c, implicitTLS)
	}
}

// clientIP is the address a connection comes from: ClientAddr when the
// connection knows better (PROXY protocol), otherwise RemoteAddr.
func clientIP(c net.Conn) netip.Addr {
	if ca, ok := c.(clientAddresser); ok {
		return ca.ClientAddr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// accept admits c within the connection caps and starts its session.
func (s *Server) accept(c net.Conn, implicitTLS bool) {
	ip := clientIP(c)
	id := s.nextID.Add(1)
	logger := s.cfg.Logger.With("proto", "pop3", "remote", ip, "conn", id)

	var conn net.Conn = c
	if implicitTLS {
		conn = tls.Server(c, s.cfg.TLS)
	}

	s.mu.Lock()
	if s.shutting.Load() {
		// Accepted just as Shutdown closed the listener: no new session,
		// and no wg.Add racing with Shutdown's Wait.
		s.mu.Unlock()
		conn.Close()
		return
	}
	over := s.total >= s.cfg.MaxConns || s.perIP[ip] >= s.cfg.MaxConnsPerIP
	s.wg.Add(1)
	if over {
		s.mu.Unlock()
		logger.Warn("pop3 connection refused", "reason", "too many connections")
		go func() {
			defer s.wg.Done()
			conn.SetDeadline(s.cfg.Now().Add(s.cfg.CommandTimeout))
			conn.Write([]byte("-ERR [" + CodeSysTemp + "] too many connections\r\n"))
			conn.Close()
		}()
		return
	}
	s.total++
	s.perIP[ip]++
	sess := newSession(s, conn, ip, logger, implicitTLS)
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.release(sess)
		sess.serve()
	}()
}

// release gives back sess's connection slots; it may be called twice (at
// the end of the conversation and when the goroutine exits).
func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	s.total--
	if s.perIP[sess.ip]--; s.perIP[sess.ip] <= 0 {
		delete(s.perIP, sess.ip)
	}
}

// Shutdown stops accepting connections, closes idle sessions without
// applying their deletions (RFC 1939 §6: only QUIT enters UPDATE), lets
// busy sessions finish their current command and then closes them, and
// waits for all of them until ctx is done, when it closes the remaining
// connections and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.interruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for sess := range s.sessions {
			sess.raw.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
