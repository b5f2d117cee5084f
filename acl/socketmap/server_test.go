package socketmap

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/internal/lookuptest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// accessMap is the adapter cmd/popgate builds: the sendmail mirror's
// values over real rules and real grants.
type accessMap struct {
	rules  *acl.Rules
	grants *acl.Grants
}

func (m accessMap) Lookup(key string) (string, bool) {
	return acl.SendmailMapValue(m.rules, m.grants, key)
}

func newMap(t testing.TB) (accessMap, *clock) {
	t.Helper()
	rules, err := acl.ParseRulesString("192.168.0 RELAY\nspamford.com REJECT\nTo:gone@example.com ERROR:5.1.1:550 User has left\n")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	g, err := acl.NewGrants(acl.GrantsConfig{TTL: 15 * time.Minute, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	g.LoginSucceeded("alice@example.com", netip.MustParseAddr("198.51.100.7"))
	g.LoginSucceeded("bob@example.com", netip.MustParseAddr("2001:db8::7"))
	return accessMap{rules, g}, c
}

// start serves s on a loopback listener and returns its address.
func start(t testing.TB, s *Server) string {
	t.Helper()
	return lookuptest.Start(t, s)
}

type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, r := lookuptest.Dial(t, addr)
	return &client{t: t, c: c, r: r}
}

// send writes raw bytes and reads one netstring reply.
func (cl *client) send(raw string) string {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
	b, err := readNetstring(cl.r, 1<<16)
	if err != nil {
		cl.t.Fatalf("reading reply to %q: %v", raw, err)
	}
	return string(b)
}

func (cl *client) lookup(req string) string {
	cl.t.Helper()
	return cl.send(string(appendNetstring(nil, req)))
}

func TestSocketmapLookups(t *testing.T) {
	m, clk := newMap(t)
	cl := dial(t, start(t, New(Config{Map: m})))
	cases := []struct{ req, want string }{
		{"access connect:198.51.100.7", "OK RELAY"},
		{"access CONNECT:198.51.100.7", "OK RELAY"},
		{"access connect:ipv6:2001:db8:0:0:0:0:0:7", "OK RELAY"},
		{"access 192.168.0", "OK RELAY"},
		{"access spamford.com", "OK REJECT"},
		{"access to:gone@example.com", "OK ERROR:5.1.1:550 User has left"},
		{"access connect:198.51.100.8", "NOTFOUND "},
		{"access 198.51.100.7", "NOTFOUND "},
		{"access connect:192.168.0.1", "NOTFOUND "}, // sendmail itself walks to "192.168.0"
	}
	for _, c := range cases {
		if got := cl.lookup(c.req); got != c.want {
			t.Errorf("%q: got %q, want %q", c.req, got, c.want)
		}
	}
	clk.t = clk.t.Add(15 * time.Minute)
	if got := cl.lookup("access connect:198.51.100.7"); got != "NOTFOUND " {
		t.Errorf("after expiry: got %q", got)
	}
}

// TestSocketmapBadRequests: well-formed netstrings with bad contents get
// PERM and the connection goes on; broken netstrings get PERM and a
// close, and the server goes on.
func TestSocketmapBadRequests(t *testing.T) {
	m, _ := newMap(t)
	addr := start(t, New(Config{Map: m}))
	cl := dial(t, addr)
	for _, req := range []string{"access", "aliases root", "access ", "access a\x00b", ""} {
		if got := cl.lookup(req); !strings.HasPrefix(got, "PERM ") {
			t.Errorf("%q: got %q, want PERM", req, got)
		}
		if got := cl.lookup("access connect:198.51.100.7"); got != "OK RELAY" {
			t.Fatalf("after %q: got %q", req, got)
		}
	}
	for _, raw := range []string{
		"x:access a,", // no length
		"5:access a,", // wrong length: ',' missing where expected
		":abc,",       // empty length
		"05:hello,",   // leading zero
		"999999:",     // too many digits
		"4097:" + strings.Repeat("a", 4097) + ",", // over the limit
		"GET / HTTP/1.0\r\n\r\n",
	} {
		cl := dial(t, addr)
		if got := cl.send(raw); !strings.HasPrefix(got, "PERM ") {
			t.Errorf("%q: got %q, want PERM", raw, got)
		}
		if _, err := cl.r.ReadByte(); err == nil {
			t.Errorf("%q: connection left open after a broken netstring", raw)
		}
	}
	if got := dial(t, addr).lookup("access connect:198.51.100.7"); got != "OK RELAY" {
		t.Fatalf("server gone after bad clients: %q", got)
	}
}

func TestSocketmapLimits(t *testing.T) {
	m, _ := newMap(t)
	addr := start(t, New(Config{Map: m, MaxConns: 1, IdleTimeout: 50 * time.Millisecond}))
	first := dial(t, addr)
	if got := first.lookup("access connect:198.51.100.7"); got != "OK RELAY" {
		t.Fatal(got)
	}
	second := dial(t, addr)
	if _, err := second.r.ReadByte(); err == nil {
		t.Fatal("connection over the limit was served")
	}
	// The first connection idles out, which frees its slot.
	if _, err := first.r.ReadByte(); err == nil {
		t.Fatal("idle connection not closed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(appendNetstring(nil, "access connect:198.51.100.7")); err == nil {
			if b, err := readNetstring(bufio.NewReader(c), 100); err == nil {
				if string(b) != "OK RELAY" {
					t.Fatalf("got %q", b)
				}
				c.Close()
				return
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the freed slot was never reused")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadNetstring(t *testing.T) {
	good := map[string]string{"0:,": "", "3:abc,": "abc", "12:hello world!,": "hello world!"}
	for in, want := range good {
		got, err := readNetstring(bufio.NewReader(strings.NewReader(in)), 100)
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q %v", in, got, err)
		}
		if back := string(appendNetstring(nil, want)); back != in {
			t.Errorf("appendNetstring(%q) = %q", want, back)
		}
	}
	for _, in := range []string{"", "3", "3:ab", "3:abc", "3:abcd", "-1:,", "a:", "101:" + strings.Repeat("x", 101) + ","} {
		if got, err := readNetstring(bufio.NewReader(strings.NewReader(in)), 100); err == nil {
			t.Errorf("%q: got %q, want an error", in, got)
		}
	}
}
