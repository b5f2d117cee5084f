package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// listener wraps a TCP listener: PROXY header handling for trusted proxies,
// connection limits (total and per client IP), implicit TLS and the
// connect-time Policy check all happen in a goroutine per connection, so a
// slow client never blocks Accept. go-smtp only sees connections that passed.
type listener struct {
	srv   *Server
	kind  ListenerKind
	inner net.Listener
	ready chan net.Conn

	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error
}

var _ net.Listener = (*listener)(nil)

func (s *Server) wrapListener(l net.Listener, kind ListenerKind) *listener {
	pl := &proxyproto.Listener{
		Listener:          l,
		ConnPolicy:        s.proxyPolicy,
		ReadHeaderTimeout: proxyHeaderTimeout,
	}
	wl := &listener{
		srv:   s,
		kind:  kind,
		inner: pl,
		ready: make(chan net.Conn, acceptBacklog),
		done:  make(chan struct{}),
	}
	go wl.run()
	return wl
}

// proxyPolicy requires a PROXY v1/v2 header from configured proxy networks
// (a proxy that forgot it must not make every client look like the proxy,
// which may be a trusted network) and SKIPs header parsing for everyone
// else. SMTP is server-speaks-first, so REJECT or IGNORE, which read before
// the greeting, would stall every direct client for the header timeout; an
// untrusted peer's header is instead refused by trackedConn on first read.
func (s *Server) proxyPolicy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	if s.trustedProxy(addrOf(o.Upstream)) {
		return proxyproto.REQUIRE, nil
	}
	return proxyproto.SKIP, nil
}

func (s *Server) trustedProxy(ip netip.Addr) bool {
	for _, p := range s.cfg.ProxyNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *listener) run() {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.fail(err)
			return
		}
		delay = 0
		go l.prepare(c)
	}
}

func (l *listener) fail(err error) {
	l.errMu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.errMu.Unlock()
	l.closeOnce.Do(func() { close(l.done) })
}

// Accept returns the next connection that passed limits and policy.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open.
func (l *listener) Close() error {
	err := l.inner.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// Addr is the underlying listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// prepare turns an accepted connection into one for go-smtp, or closes it.
func (l *listener) prepare(c net.Conn) {
	s := l.srv
	id := s.connSeq.Add(1)
	peer := addrOf(c.RemoteAddr())
	trusted := false
	if pc, ok := c.(*proxyproto.Conn); ok {
		// Reading the header happens here, off the accept loop.
		trusted = true
		h := pc.ProxyHeader()
		if h == nil {
			s.log.Warn("smtp proxy header missing", "proxy", peer.String(), "listener", string(l.kind))
			_ = c.Close()
			return
		}
		if h.Command.IsLocal() {
			// A LOCAL header (the balancer's own health check) names no
			// client: served, it would run under the balancer's address,
			// which may be a trusted network. Accepting the connection is
			// all a layer-4 check needs.
			s.log.Debug("smtp proxy health check", "proxy", peer.String(), "listener", string(l.kind))
			_ = c.Close()
			return
		}
		peer = addrOf(pc.RemoteAddr())
	}
	log := s.log.With("proto", "smtp", "listener", string(l.kind), "remote", peer.String(), "conn", id)

	if reason := s.limits.acquire(peer); reason != "" {
		log.Warn("smtp connection refused", "reason", reason)
		if l.kind != ListenerSubmissions { // no reply before a TLS handshake
			_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			// RFC 5321 §3.8: 421 and close when the service is unavailable.
			_, _ = fmt.Fprintf(c, "421 4.7.0 %s Too many connections, try again later\r\n", s.cfg.Hostname)
		}
		_ = c.Close()
		return
	}
	tc := &trackedConn{Conn: c, ip: peer, checkProxy: !trusted, log: log, end: time.Now().Add(s.cfg.MaxSessionTime)}
	_ = tc.SetReadDeadline(time.Time{})
	tc.release = func() {
		s.untrack(tc)
		s.limits.release(peer)
	}
	if !s.track(tc) {
		_ = tc.Close()
		return
	}

	var conn net.Conn = tc
	if l.kind == ListenerSubmissions {
		tlsConn := tls.Server(tc, s.cfg.TLS)
		_ = tlsConn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		if err := tlsConn.Handshake(); err != nil {
			log.Info("smtp tls handshake failed", "err", err)
			_ = tlsConn.Close()
			return
		}
		_ = tlsConn.SetDeadline(time.Time{})
		conn = tlsConn
	}

	v := s.deps.Policy.CheckConnect(Client{IP: peer, TLS: l.kind == ListenerSubmissions, Listener: l.kind})
	switch v.Action {
	case ActionReject, ActionTempFail:
		// RFC 5321 §3.1: a server may answer 554 instead of 220 and close.
		e := verdictError(v, 554, "5.7.1", "Access denied")
		log.Info("smtp connection rejected", "reason", v.Reason, "code", e.Code)
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		_, _ = fmt.Fprintf(conn, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		_ = conn.Close()
		return
	case ActionDiscard:
		tc.discard = true
	}
	log.Debug("smtp connection accepted")

	select {
	case l.ready <- conn:
	case <-l.done:
		_ = conn.Close()
	}
}

// addrOf extracts the IP of a TCP address (IPv4-mapped IPv6 unmapped).
func addrOf(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// proxySignatures start a PROXY v1 and v2 header.
var proxySignatures = [][]byte{
	[]byte("PROXY "),
	{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A},
}

// httpVerbs start HTTP requests, which never begin an SMTP session.
var httpVerbs = [][]byte{
	[]byte("GET "), []byte("POST "), []byte("HEAD "), []byte("PUT "),
	[]byte("CONNECT "), []byte("OPTIONS "), []byte("DELETE "),
}

// errHTTPRequest closes a connection whose first command is HTTP.
var errHTTPRequest = errors.New("smtp: HTTP request on SMTP port")

// errUntrustedProxy closes a connection that sent a PROXY header without
// being a trusted proxy.
var errUntrustedProxy = errors.New("smtp: PROXY header from untrusted peer")

// trackedConn is the connection under go-smtp (and under TLS): it owns the
// per-IP slot, the client IP used for decisions, the per-connection error
// count, and can close itself right after the next reply is written.
type trackedConn struct {
	net.Conn
	ip         netip.Addr
	log        *slog.Logger
	discard    bool      // connect-time Policy said Discard
	checkProxy bool      // untrusted peer: refuse a PROXY header
	end        time.Time // MaxSessionTime: no read deadline goes beyond it

	readOnce        sync.Once
	errors          atomic.Int32
	authed          atomic.Bool // SMTP AUTH succeeded in the current TLS state
	closeAfterWrite atomic.Bool
	releaseOnce     sync.Once
	release         func()
}

// Read inspects the client's first bytes: a PROXY header from an untrusted
// peer, or an HTTP request (a browser or scanner on the SMTP port), gets
// go-smtp's single "421 4.4.0" reply and the connection closes.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		var bad error
		c.readOnce.Do(func() { bad = c.checkFirst(b[:n]) })
		if bad != nil {
			return 0, bad
		}
	}
	return n, err
}

func (c *trackedConn) checkFirst(p []byte) error {
	if c.checkProxy {
		for _, sig := range proxySignatures {
			k := min(len(p), len(sig))
			if k >= 5 && bytes.Equal(p[:k], sig[:k]) {
				c.log.Warn("smtp proxy header from untrusted peer")
				return errUntrustedProxy
			}
		}
	}
	for _, verb := range httpVerbs {
		if bytes.HasPrefix(p, verb) {
			c.log.Warn("smtp http request refused")
			return errHTTPRequest
		}
	}
	return nil
}

// SetReadDeadline clamps every read deadline to the session's end.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

// SetDeadline clamps the read side to the session's end.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *trackedConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.end) {
		return c.end
	}
	return t
}

// Write writes, then closes the connection when a fatal reply was queued.
func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.closeAfterWrite.Load() {
		_ = c.Close()
	}
	return n, err
}

// Close closes once and frees the connection's slot.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// trackedOf finds the trackedConn under a go-smtp connection.
func trackedOf(c net.Conn) *trackedConn {
	for c != nil {
		switch t := c.(type) {
		case *trackedConn:
			return t
		case *tls.Conn:
			c = t.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// connLimiter counts open connections in total and per client IP.
type connLimiter struct {
	mu       sync.Mutex
	max      int
	maxPerIP int
	total    int
	perIP    map[netip.Addr]int
}

func newConnLimiter(total, perIP int) *connLimiter {
	return &connLimiter{max: total, maxPerIP: perIP, perIP: make(map[netip.Addr]int)}
}

// acquire takes a slot for ip, or returns why it cannot.
func (l *connLimiter) acquire(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return "too many connections"
	}
	if l.perIP[ip] >= l.maxPerIP {
		return "too many connections from this IP"
	}
	l.total++
	l.perIP[ip]++
	return ""
}

func (l *connLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}
