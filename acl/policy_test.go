package acl

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeClock is an injected clock for grant expiry.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 11, 25, 14, 45, 0, 0, time.UTC)

const policyAccess = `192.168.0		RELAY
spamford.com		REJECT
ok.spamford.com		OK
Connect:relay.partner.example	RELAY
To:friend.example	RELAY
To:blocked@example.com	REJECT
To:gone@		ERROR:5.1.1:"550 User has left"
To:busy.example		ERROR:4.2.1:451 Try again later
From:spammer@aol.com	REJECT
From:cyberspammer.com	DISCARD
From:bounce@		OK
From:slow.example	ERROR:4.7.0:421 Slow down
Connect:10.9		REJECT
Connect:10.9.8		ERROR:4.3.2:"421 Not now"
IPv6:2001:db8:1		RELAY
`

func newTestPolicy(t *testing.T, trusted []string) (*Policy, *Grants, *fakeClock) {
	t.Helper()
	rules, err := ParseRulesString(policyAccess)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	grants, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute, Now: clock.Now,
		NeverGrant: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	var nets []netip.Prefix
	for _, s := range trusted {
		nets = append(nets, netip.MustParsePrefix(s))
	}
	p := NewPolicy(Config{LocalDomains: []string{"Example.com", "example.net"}, TrustedNetworks: nets, Rules: rules, Grants: grants})
	return p, grants, clock
}

type policyCase struct {
	name     string
	req      Request
	action   Action
	code     int
	enhanced string
	reason   string // substring of Reason
}

func (c policyCase) check(t *testing.T, d Decision) {
	t.Helper()
	if d.Action != c.action || d.Code != c.code || (c.enhanced != "" && d.Enhanced != c.enhanced) || !strings.Contains(d.Reason, c.reason) {
		t.Errorf("%s: got %v %d %s %q (%s), want %v %d %s (reason containing %q)",
			c.name, d.Action, d.Code, d.Enhanced, d.Text, d.Reason, c.action, c.code, c.enhanced, c.reason)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestCheckRcpt(t *testing.T) {
	p, grants, _ := newTestPolicy(t, []string{"127.0.0.0/8", "::1/128"})
	grants.LoginSucceeded("alice@example.com", ip("198.51.100.7"))
	grants.LoginSucceeded("bob@example.com", ip("2001:db8:99::5"))
	remote := ip("198.51.100.200")
	cases := []policyCase{
		{name: "local recipient from anywhere", req: Request{IP: remote, To: "carol@example.com"}, action: Accept, reason: "local domain example.com"},
		{name: "local domain case-insensitive", req: Request{IP: remote, To: "carol@EXAMPLE.NET"}, action: Accept},
		{name: "remote recipient denied", req: Request{IP: remote, To: "x@elsewhere.org"}, action: Reject, code: 554, enhanced: "5.7.1", reason: "no rule: relaying denied"},
		{name: "empty recipient", req: Request{IP: remote, To: ""}, action: Reject, code: 553},
		{name: "invalid IP denied", req: Request{To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "unspecified IP denied", req: Request{IP: ip("0.0.0.0"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "trusted loopback", req: Request{IP: ip("127.0.0.1"), To: "x@elsewhere.org"}, action: Relay, reason: "trusted network 127.0.0.0/8"},
		{name: "trusted mapped loopback", req: Request{IP: ip("::ffff:127.0.0.5"), To: "x@elsewhere.org"}, action: Relay, reason: "trusted network"},
		{name: "trusted v6 loopback", req: Request{IP: ip("::1"), To: "x@elsewhere.org"}, action: Relay, reason: "trusted network ::1/128"},
		{name: "RELAY network", req: Request{IP: ip("192.168.0.44"), To: "x@elsewhere.org"}, action: Relay, reason: `access rule "192.168.0 RELAY" (line 1)`},
		{name: "RELAY network mapped", req: Request{IP: ip("::ffff:192.168.0.44"), To: "x@elsewhere.org"}, action: Relay, reason: "192.168.0 RELAY"},
		{name: "neighbour network denied", req: Request{IP: ip("192.168.1.44"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "RELAY IPv6 network", req: Request{IP: ip("2001:db8:1::77"), To: "x@elsewhere.org"}, action: Relay, reason: "IPv6:2001:db8:1 RELAY"},
		{name: "RELAY host name", req: Request{IP: remote, Hostname: "mx.relay.partner.example", To: "x@elsewhere.org"}, action: Relay, reason: "relay.partner.example"},
		{name: "OK host is not RELAY", req: Request{IP: remote, Hostname: "ok.spamford.com", To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "unresolved host form ignored", req: Request{IP: remote, Hostname: "[198.51.100.200]", To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "To: RELAY domain", req: Request{IP: remote, To: "x@friend.example"}, action: Relay, reason: "To:friend.example RELAY"},
		{name: "To: RELAY subdomain", req: Request{IP: remote, To: "x@mx.friend.example"}, action: Relay, reason: "To:friend.example RELAY"},
		{name: "To: RELAY with percent hack", req: Request{IP: remote, To: "x%victim.org@friend.example"}, action: Reject, code: 554},
		{name: "SMTP AUTH", req: Request{IP: remote, To: "x@elsewhere.org", AuthUser: "bob@example.com"}, action: Relay, reason: "SMTP AUTH as bob@example.com"},
		{name: "POP grant", req: Request{IP: ip("198.51.100.7"), To: "x@elsewhere.org"}, action: Relay, reason: "POP3 grant for alice@example.com until 2026-11-25T15:00:00Z"},
		{name: "POP grant mapped", req: Request{IP: ip("::ffff:198.51.100.7"), To: "x@elsewhere.org"}, action: Relay, reason: "POP3 grant"},
		{name: "POP grant IPv6", req: Request{IP: ip("2001:db8:99::5"), To: "x@elsewhere.org"}, action: Relay, reason: "bob@example.com"},
		{name: "percent hack on local domain", req: Request{IP: remote, To: "x%victim.org@example.com"}, action: Reject, code: 554},
		{name: "bang path on local domain", req: Request{IP: remote, To: "victim.org!x@example.com"}, action: Reject, code: 554},
		{name: "quoted at on local domain", req: Request{IP: remote, To: "x@victim.org@example.com"}, action: Reject, code: 554},
		{name: "IP literal never local", req: Request{IP: remote, To: "x@[192.0.2.1]"}, action: Reject, code: 554},
		{name: "IPv6 literal never local", req: Request{IP: remote, To: "x@[ipv6:2001:db8::1]"}, action: Reject, code: 554},
		{name: "address without domain", req: Request{IP: remote, To: "postmaster"}, action: Reject, code: 554},
		{name: "To: REJECT local user", req: Request{IP: ip("127.0.0.1"), To: "blocked@example.com"}, action: Reject, code: 550, enhanced: "5.2.1", reason: "To:blocked@example.com REJECT"},
		{name: "To: user@ local", req: Request{IP: remote, To: "gone@example.net"}, action: Reject, code: 550, enhanced: "5.1.1", reason: "To:gone@"},
		{name: "To: user@ not for remote domains", req: Request{IP: ip("127.0.0.1"), To: "gone@elsewhere.org"}, action: Relay},
		{name: "untagged REJECT domain blocks recipients too", req: Request{IP: ip("127.0.0.1"), To: "x@mail.spamford.com"}, action: Reject, code: 550, enhanced: "5.2.1", reason: "spamford.com REJECT"},
		{name: "OK recipient domain is not RELAY", req: Request{IP: remote, To: "x@ok.spamford.com"}, action: Reject, code: 554, reason: "relaying denied"},
		{name: "To: temp error even for AUTH", req: Request{IP: remote, To: "x@busy.example", AuthUser: "bob"}, action: TempFail, code: 451, enhanced: "4.2.1"},
	}
	for _, c := range cases {
		c.check(t, p.CheckRcpt(c.req))
	}
	grantDecision := p.CheckRcpt(Request{IP: ip("198.51.100.7"), To: "x@elsewhere.org"})
	if grantDecision.GrantUser != "alice@example.com" || !grantDecision.GrantTime.Equal(t0) {
		t.Errorf("grant decision carries %q %v", grantDecision.GrantUser, grantDecision.GrantTime)
	}
}

func TestCheckRcptGrantExpiresMidSession(t *testing.T) {
	p, grants, clock := newTestPolicy(t, nil)
	client := ip("127.0.0.2")
	grants.LoginSucceeded("alice@example.com", client)
	req := Request{IP: client, To: "x@elsewhere.org"}
	clock.Advance(15*time.Minute - time.Nanosecond)
	if d := p.CheckRcpt(req); d.Action != Relay {
		t.Fatalf("just before expiry: %v %s", d.Action, d.Reason)
	}
	clock.Advance(time.Nanosecond)
	if d := p.CheckRcpt(req); d.Action != Reject || d.Code != 554 {
		t.Fatalf("at expiry: %v %s", d.Action, d.Reason)
	}
}

func TestCheckRcptNoTrustedNetworks(t *testing.T) {
	// trusted_networks = [] makes loopback a remote client like any other.
	p, grants, _ := newTestPolicy(t, nil)
	cases := []policyCase{
		{name: "loopback is remote", req: Request{IP: ip("127.0.0.1"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "v6 loopback is remote", req: Request{IP: ip("::1"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "other loopback is remote", req: Request{IP: ip("127.0.0.3"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "local still accepted", req: Request{IP: ip("127.0.0.1"), To: "y@example.com"}, action: Accept},
	}
	for _, c := range cases {
		c.check(t, p.CheckRcpt(c.req))
	}
	grants.LoginSucceeded("alice@example.com", ip("127.0.0.2"))
	policyCase{name: "granted loopback", req: Request{IP: ip("127.0.0.2"), To: "x@elsewhere.org"}, action: Relay, reason: "POP3 grant"}.
		check(t, p.CheckRcpt(Request{IP: ip("127.0.0.2"), To: "x@elsewhere.org"}))
	policyCase{name: "other loopback still remote", action: Reject, code: 554}.
		check(t, p.CheckRcpt(Request{IP: ip("127.0.0.3"), To: "x@elsewhere.org"}))
}

func TestPolicyWithoutRulesOrGrants(t *testing.T) {
	p := NewPolicy(Config{LocalDomains: []string{"example.com"}})
	cases := []policyCase{
		{name: "remote denied", req: Request{IP: ip("127.0.0.1"), To: "x@elsewhere.org"}, action: Reject, code: 554},
		{name: "local accepted", req: Request{IP: ip("127.0.0.1"), To: "x@example.com"}, action: Accept},
		{name: "auth relays", req: Request{IP: ip("127.0.0.1"), To: "x@elsewhere.org", AuthUser: "a"}, action: Relay},
	}
	for _, c := range cases {
		c.check(t, p.CheckRcpt(c.req))
	}
	if d := p.CheckConnect(Request{IP: ip("10.9.1.1")}); d.Action != Accept {
		t.Errorf("connect without rules: %v", d.Action)
	}
	if d := p.CheckFrom(Request{From: "spammer@aol.com"}); d.Action != Accept {
		t.Errorf("from without rules: %v", d.Action)
	}
	// A mapped trusted prefix still matches plain IPv4 clients.
	p = NewPolicy(Config{TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}})
	policyCase{name: "mapped trusted prefix", action: Relay, reason: "trusted network 10.0.0.0/8"}.
		check(t, p.CheckRcpt(Request{IP: ip("10.1.2.3"), To: "x@elsewhere.org"}))
}

func TestCheckConnect(t *testing.T) {
	p, _, _ := newTestPolicy(t, nil)
	cases := []policyCase{
		{name: "unknown client", req: Request{IP: ip("198.51.100.1")}, action: Accept, reason: "no rule"},
		{name: "no IP", req: Request{}, action: Accept},
		{name: "REJECT host", req: Request{IP: ip("198.51.100.1"), Hostname: "mail.spamford.com"}, action: Reject, code: 554, enhanced: "5.7.1", reason: `"spamford.com REJECT" (line 2)`},
		{name: "OK beats less specific REJECT", req: Request{IP: ip("198.51.100.1"), Hostname: "mx.ok.spamford.com"}, action: Accept, reason: "ok.spamford.com OK"},
		{name: "host found first, IP not consulted", req: Request{IP: ip("10.9.1.1"), Hostname: "ok.spamford.com"}, action: Accept, reason: "ok.spamford.com"},
		{name: "REJECT network", req: Request{IP: ip("10.9.1.1")}, action: Reject, code: 554, reason: "Connect:10.9 REJECT"},
		{name: "REJECT network mapped", req: Request{IP: ip("::ffff:10.9.1.1")}, action: Reject, code: 554},
		{name: "ERROR temp more specific", req: Request{IP: ip("10.9.8.1")}, action: TempFail, code: 421, enhanced: "4.3.2", reason: "Connect:10.9.8"},
		{name: "RELAY network accepted", req: Request{IP: ip("192.168.0.3")}, action: Accept, reason: "192.168.0 RELAY"},
	}
	for _, c := range cases {
		c.check(t, p.CheckConnect(c.req))
	}
	d := p.CheckConnect(Request{IP: ip("10.9.8.1")})
	if d.Text != "Not now" {
		t.Errorf("ERROR text = %q", d.Text)
	}
}

func TestCheckFrom(t *testing.T) {
	p, _, _ := newTestPolicy(t, nil)
	cases := []policyCase{
		{name: "null sender", req: Request{From: ""}, action: Accept, reason: "null sender"},
		{name: "unknown sender", req: Request{From: "a@b.example"}, action: Accept, reason: "no rule"},
		{name: "full address REJECT", req: Request{From: "spammer@aol.com"}, action: Reject, code: 550, enhanced: "5.7.1", reason: "From:spammer@aol.com REJECT"},
		{name: "other aol user", req: Request{From: "friend@aol.com"}, action: Accept},
		{name: "domain DISCARD", req: Request{From: "x@mail.cyberspammer.com"}, action: Discard, reason: "From:cyberspammer.com"},
		{name: "untagged domain REJECT", req: Request{From: "x@spamford.com"}, action: Reject, code: 550},
		{name: "user@ beats domain", req: Request{From: "bounce@spamford.com"}, action: Accept, reason: "From:bounce@ OK"},
		{name: "temp error", req: Request{From: "x@slow.example"}, action: TempFail, code: 421, enhanced: "4.7.0"},
		{name: "IP literal sender", req: Request{From: "x@[10.9.1.1]"}, action: Accept},
	}
	for _, c := range cases {
		c.check(t, p.CheckFrom(c.req))
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Accept: "accept", Relay: "relay", Reject: "reject", TempFail: "tempfail", Discard: "discard", 0: "Action(0)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q", int(a), a.String())
		}
	}
}

// TestPolicyConcurrent runs decisions while grants come and go; the race
// detector checks the sharing.
func TestPolicyConcurrent(t *testing.T) {
	p, grants, _ := newTestPolicy(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
			grants.LoginSucceeded("u", a)
			if i%3 == 0 {
				grants.Revoke(a)
			}
		}
	}()
	for i := range 2000 {
		a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		d := p.CheckRcpt(Request{IP: a, To: "x@elsewhere.org"})
		if d.Action != Relay && d.Action != Reject {
			t.Fatalf("decision %v", d.Action)
		}
	}
	<-done
	if d := p.CheckRcpt(Request{IP: netip.AddrFrom4([4]byte{100, 64, 0, 1}), To: "x@elsewhere.org"}); d.Action != Relay {
		t.Errorf("granted client refused: %s", d.Reason)
	}
	if d := p.CheckRcpt(Request{IP: netip.AddrFrom4([4]byte{100, 64, 0, 3}), To: "x@elsewhere.org"}); d.Action != Reject {
		t.Errorf("revoked client relayed: %s", d.Reason)
	}
}

func TestTrusted(t *testing.T) {
	p := NewPolicy(Config{TrustedNetworks: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("::ffff:198.51.100.7/128"),
	}})
	for ip, want := range map[string]bool{
		"192.0.2.9": true, "::ffff:192.0.2.9": true, "198.51.100.7": true,
		"192.0.3.1": false, "198.51.100.8": false, "2001:db8::1": false,
	} {
		if got := p.Trusted(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", ip, got, want)
		}
	}
	if NewPolicy(Config{}).Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("no trusted networks: nobody is trusted")
	}
}
