package pop3

import (
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout bounds reading the PROXY header a trusted balancer
// sends first; HAProxy sends it with the connection, so this only trips on
// a broken balancer.
const proxyHeaderTimeout = 5 * time.Second

// withProxy wraps l so that connections from Config.ProxyNetworks must
// start with a PROXY v1 or v2 header (HAProxy send-proxy / send-proxy-v2)
// whose source becomes the client address; a trusted balancer that forgot
// it must not make every client look like the balancer. Everyone else is
// served as is: POP3 is server-speaks-first, so waiting for an optional
// header would stall every direct client.
func (s *Server) withProxy(l net.Listener) net.Listener {
	if len(s.cfg.ProxyNetworks) == 0 {
		return l
	}
	return &proxyproto.Listener{
		Listener:          l,
		ConnPolicy:        s.proxyPolicy,
		ReadHeaderTimeout: proxyHeaderTimeout,
	}
}

func (s *Server) proxyPolicy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
		for _, p := range s.cfg.ProxyNetworks {
			if p.Contains(ap.Addr().Unmap()) {
				return proxyproto.REQUIRE, nil
			}
		}
	}
	return proxyproto.SKIP, nil
}

// balancedConn is a connection from a trusted balancer, carrying the
// client address its PROXY header gave.
type balancedConn struct {
	net.Conn
	client netip.Addr
}

// ClientAddr is the client's own address, from the PROXY header.
func (c *balancedConn) ClientAddr() netip.Addr { return c.client }

// acceptProxied reads pc's PROXY header (off the accept loop: a slow
// balancer must not hold up other clients) and admits the connection
// under the client's address. A missing or unusable header, or a LOCAL
// command (a balancer's health check), closes it: serving it under the
// balancer's own address could grant the balancer relaying.
func (s *Server) acceptProxied(pc *proxyproto.Conn, implicitTLS bool) {
	peer := pc.Raw().RemoteAddr().String()
	h := pc.ProxyHeader()
	if h == nil {
		s.cfg.Logger.Warn("pop3 proxy header missing", "proto", "pop3", "proxy", peer)
		pc.Close()
		return
	}
	if h.Command.IsLocal() {
		s.cfg.Logger.Debug("pop3 proxy health check", "proto", "pop3", "proxy", peer)
		pc.Close()
		return
	}
	ap, err := netip.ParseAddrPort(h.SourceAddr.String())
	if h.SourceAddr == nil || err != nil {
		s.cfg.Logger.Warn("pop3 proxy header without a client address", "proto", "pop3", "proxy", peer)
		pc.Close()
		return
	}
	s.accept(&balancedConn{Conn: pc, client: ap.Addr().Unmap()}, implicitTLS)
}
