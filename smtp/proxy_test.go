package smtp

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/popgate/popgate/smtp/smtptest"
)

func proxyHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		&net.TCPAddr{IP: net.ParseIP(src), Port: 40000},
		&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyProtocolFromTrustedPeer(t *testing.T) {
	t.Parallel()
	for _, version := range []byte{1, 2} {
		t.Run(string('0'+version), func(t *testing.T) {
			t.Parallel()
			e := startServer(t, func(e *env) {
				e.cfg.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
				// The PROXY source is granted; the proxy itself is not.
				e.policy.relayIPs[netip.MustParseAddr("203.0.113.7")] = true
			})
			c := dialFrom(t, "127.0.0.2", e.mx)
			if _, err := c.Write(proxyHeader(t, version, "203.0.113.7")); err != nil {
				t.Fatal(err)
			}
			rc := smtptest.NewClient(t, c)
			if g := rc.Reply(); !strings.HasPrefix(g, "220") {
				t.Fatalf("greeting %q", g)
			}
			rc.Run([]step{
				{Send: "EHLO behind.proxy", Want: "250 "},
				{Send: "MAIL FROM:<x@example.org>", Want: "250"},
				{Send: "RCPT TO:<far@remote.example>", Want: "250"},
				{Send: "DATA", Want: "354"},
				{Send: simpleMsg + ".\r\n", Raw: true, Want: "250"},
			})
			if !e.policy.saw("connect 203.0.113.7") || e.policy.saw("connect 127.0.0.2") {
				t.Fatalf("policy saw %v", e.policy.seen)
			}
			q := e.spooler.all()
			if len(q) != 1 || !strings.HasPrefix(q[0].data, "Received: from behind.proxy ([203.0.113.7])") {
				t.Fatalf("spooled %+v", q)
			}
		})
	}
}

func TestProxyHeaderRequiredFromTrustedPeer(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	c := dialFrom(t, "127.0.0.2", e.mx)
	rc := smtptest.NewClient(t, c)
	rc.Send("EHLO no.header\r\n")
	if got := rc.Reply(); got != "" {
		t.Fatalf("a trusted proxy without header must be dropped, got %q", got)
	}
	e.waitLog(t, "smtp proxy header missing")
	if e.policy.saw("connect 127.0.0.2") {
		t.Fatal("policy consulted with the proxy's own address")
	}
}

// TestProxyLocalHeaderNotServed: a LOCAL header (a balancer's health check)
// carries no client address, so the connection is closed unserved rather
// than run under the balancer's own, possibly trusted, address; a real
// client through the same balancer is served after it.
func TestProxyLocalHeaderNotServed(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.cfg.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	local, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, "127.0.0.2", e.mx)
	if _, err := c.Write(local); err != nil {
		t.Fatal(err)
	}
	rc := smtptest.NewClient(t, c)
	if got := rc.Reply(); got != "" {
		t.Fatalf("a LOCAL header must not be served, got %q", got)
	}
	e.waitLog(t, "smtp proxy health check")
	if e.policy.saw("connect 127.0.0.2") {
		t.Fatal("policy consulted with the balancer's own address")
	}
	c = dialFrom(t, "127.0.0.2", e.mx)
	if _, err := c.Write(proxyHeader(t, 2, "203.0.113.8")); err != nil {
		t.Fatal(err)
	}
	if g := smtptest.NewClient(t, c).Reply(); !strings.HasPrefix(g, "220") {
		t.Fatalf("a client after the health check: greeting %q", g)
	}
}

func TestProxyHeaderFromUntrustedPeerIsRefused(t *testing.T) {
	t.Parallel()
	for _, version := range []byte{1, 2} {
		t.Run(string('0'+version), func(t *testing.T) {
			t.Parallel()
			e := startServer(t, func(e *env) {
				e.cfg.ProxyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
				e.policy.relayIPs[netip.MustParseAddr("203.0.113.7")] = true
			})
			rc, g := e.raw(t, "127.0.0.3", e.mx)
			if !strings.HasPrefix(g, "220") {
				t.Fatalf("greeting %q", g)
			}
			rc.Send(string(proxyHeader(t, version, "203.0.113.7")) + "EHLO spoof\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<far@remote.example>\r\n")
			all := ""
			for r := rc.Reply(); r != ""; r = rc.Reply() {
				all += r
			}
			if strings.Contains(all, "250") {
				t.Fatalf("session went on after a spoofed PROXY header:\n%s", all)
			}
			if e.policy.saw("connect 203.0.113.7") || !e.policy.saw("connect 127.0.0.3") {
				t.Fatalf("policy saw %v", e.policy.seen)
			}
			e.waitLog(t, "smtp proxy header from untrusted peer")
			if len(e.spooler.all()) != 0 {
				t.Fatal("relayed")
			}
		})
	}
}
