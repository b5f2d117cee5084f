package pop3

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// dialProxied connects as a balancer would and sends header first.
func (e *env) dialProxied(t *testing.T, h *proxyproto.Header) *client {
	t.Helper()
	c := e.dial(t)
	if h != nil {
		if _, err := h.WriteTo(c.Conn); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func trustLoopback(c *Config) {
	c.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	c.AllowPlaintextAuth = true // the clients are remote now
}

// TestProxyClientAddress: behind a trusted balancer the header's source is
// the address a login reports (and so the one granted relaying), for v2
// (HAProxy send-proxy-v2) and v1 (send-proxy).
func TestProxyClientAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, trustLoopback)
	server := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110}
	for _, tc := range []struct {
		version byte
		src     string
	}{{2, "198.51.100.9"}, {1, "198.51.100.10"}, {2, "2001:db8::7"}} {
		src := &net.TCPAddr{IP: net.ParseIP(tc.src), Port: 40000}
		dst := server
		if src.IP.To4() == nil {
			dst = &net.TCPAddr{IP: net.IPv6loopback, Port: 110}
		}
		c := e.dialProxied(t, proxyproto.HeaderProxyFromAddrs(tc.version, src, dst))
		login(c, "bob@example.com", "pass word")
		if got, want := <-e.obs.ch, "bob@example.com "+tc.src; got != want {
			t.Errorf("v%d: observer got %q, want %q", tc.version, got, want)
		}
		run(c, []step{{"QUIT", "+OK", nil}})
	}
	if logs := e.logs.String(); !strings.Contains(logs, "remote=198.51.100.9") {
		t.Errorf("logs do not name the client address:\n%s", logs)
	}
}

// TestProxyHeaderRequiredFromBalancer: a trusted balancer that sends no
// header, or a LOCAL (health check) header, is not served: otherwise its
// own address would log in and be granted.
func TestProxyHeaderRequiredFromBalancer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, trustLoopback)
	c := e.dial(t)
	c.Send("USER alice@example.com")
	c.Closed()

	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	e.dialProxied(t, local).Closed()

	if logs := e.logs.String(); !strings.Contains(logs, "pop3 proxy header missing") {
		t.Errorf("no log of the missing header:\n%s", logs)
	}
	// The server goes on.
	ok := e.dialProxied(t, proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110}))
	run(ok, []step{{"", "+OK", nil}, {"QUIT", "+OK", nil}})
}

// TestProxyHeaderFromUntrustedPeer: a direct client is served as itself
// even when balancers are configured, and one that sends a PROXY header
// to choose its address is refused.
func TestProxyHeaderFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	c := e.dial(t)
	login(c, "alice@example.com", "secret")
	if got := <-e.obs.ch; got != "alice@example.com 127.0.0.1" {
		t.Fatalf("observer got %q, want the peer's own address", got)
	}

	liar := e.dial(t)
	run(liar, []step{
		{"", "+OK", nil},
		{"PROXY TCP4 198.51.100.9 127.0.0.1 40000 110", "-ERR PROXY header not accepted", nil},
		{"", "<closed>", nil},
	})
	if logs := e.logs.String(); !strings.Contains(logs, "pop3 proxy header from untrusted peer") {
		t.Errorf("no log of the refused header:\n%s", logs)
	}
}
