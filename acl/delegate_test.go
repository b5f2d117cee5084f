package acl

import (
	"net/netip"
	"testing"
	"time"
)

func TestCheckRelayClient(t *testing.T) {
	p, grants, clock := newTestPolicy(t, []string{"10.1.0.0/16"})
	grants.LoginSucceeded("alice@example.com", netip.MustParseAddr("198.51.100.7"))
	ip := netip.MustParseAddr
	cases := []struct {
		name   string
		req    Request
		action Action
		code   int
	}{
		{"granted client", Request{IP: ip("198.51.100.7"), To: "x@remote.example"}, Relay, 0},
		{"granted client, local recipient still relays", Request{IP: ip("198.51.100.7"), To: "x@example.com"}, Relay, 0},
		{"RELAY network", Request{IP: ip("192.168.0.9"), To: "x@remote.example"}, Relay, 0},
		{"trusted network", Request{IP: ip("10.1.2.3"), To: "x@remote.example"}, Relay, 0},
		{"RELAY host name", Request{IP: ip("198.51.100.99"), Hostname: "relay.partner.example", To: "x@remote.example"}, Relay, 0},
		{"To: RELAY domain", Request{IP: ip("198.51.100.99"), To: "x@friend.example"}, Relay, 0},
		{"unknown client: DUNNO", Request{IP: ip("198.51.100.99"), To: "x@remote.example"}, Accept, 0},
		{"Connect REJECT", Request{IP: ip("10.9.1.1"), To: "x@remote.example"}, Reject, 554},
		{"Connect ERROR 4xx", Request{IP: ip("10.9.8.1"), To: "x@remote.example"}, TempFail, 421},
		{"host REJECT", Request{IP: ip("198.51.100.99"), Hostname: "mail.spamford.com", To: "x@remote.example"}, Reject, 554},
		{"To: ERROR", Request{IP: ip("198.51.100.7"), To: "x@busy.example"}, TempFail, 451},
		{"To: REJECT address", Request{IP: ip("198.51.100.7"), To: "blocked@example.com"}, Reject, 550},
		{"routing trick never relays by To:", Request{IP: ip("198.51.100.99"), To: "x%evil.example@friend.example"}, Accept, 0},
		{"no recipient: connect only", Request{IP: ip("198.51.100.7")}, Accept, 0},
	}
	for _, c := range cases {
		d := p.CheckRelayClient(c.req)
		if d.Action != c.action || d.Code != c.code {
			t.Errorf("%s: got %v %d (%s), want %v %d", c.name, d.Action, d.Code, d.Reason, c.action, c.code)
		}
	}
	clock.Advance(15 * time.Minute)
	if d := p.CheckRelayClient(Request{IP: ip("198.51.100.7"), To: "x@remote.example"}); d.Action != Accept {
		t.Errorf("expired grant: got %v (%s), want accept (DUNNO)", d.Action, d.Reason)
	}
}

func TestSendmailMapValue(t *testing.T) {
	rules, err := ParseRulesString("192.168.0 RELAY\nConnect:198.51.100.7 REJECT\nSpamford.COM REJECT\nIPv6:2001:db8::5 RELAY\n")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	grants, err := NewGrants(GrantsConfig{TTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	grants.LoginSucceeded("a@example.com", netip.MustParseAddr("198.51.100.7"))
	grants.LoginSucceeded("b@example.com", netip.MustParseAddr("198.51.100.8"))
	grants.LoginSucceeded("c@example.com", netip.MustParseAddr("2001:db8::1:0:0:9"))
	want := map[string]string{}
	for _, e := range Entries(rules, grants.List(), FlavorSendmail) {
		want[e.Key] = e.Value
	}
	// Every key the mirror writes answers the same value.
	for k, v := range want {
		if got, ok := SendmailMapValue(rules, grants, k); !ok || got != v {
			t.Errorf("%s: got %q %v, want %q", k, got, ok, v)
		}
	}
	if len(want) != 6 {
		t.Fatalf("mirror entries: %v", want)
	}
	for _, k := range []string{
		"CONNECT:198.51.100.8",              // case-folded like makemap
		"connect:ipv6:2001:db8:0:0:1:0:0:9", // full form
	} {
		if got, ok := SendmailMapValue(rules, grants, k); !ok || got != "RELAY" {
			t.Errorf("%s: got %q %v, want RELAY", k, got, ok)
		}
	}
	for _, k := range []string{
		"connect:198.51.100.9", "198.51.100.8", "connect:ipv6:2001:db8::1:0:0:9",
		"connect:198.051.100.8", "connect:", "connect:ipv6:", "from:x@y", "",
	} {
		if got, ok := SendmailMapValue(rules, grants, k); ok {
			t.Errorf("%s: got %q, want not found", k, got)
		}
	}
	clock.Advance(time.Minute)
	if _, ok := SendmailMapValue(rules, grants, "connect:198.51.100.8"); ok {
		t.Error("expired grant still answered")
	}
	if v, ok := SendmailMapValue(rules, grants, "connect:198.51.100.7"); !ok || v != "REJECT" {
		t.Errorf("static rule must stand over a grant: %q %v", v, ok)
	}
	if _, ok := SendmailMapValue(nil, nil, "connect:198.51.100.7"); ok {
		t.Error("nil rules and grants found something")
	}
}
