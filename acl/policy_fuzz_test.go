package acl

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheckRcptNeverOpenRelay feeds arbitrary clients and recipients to a
// policy whose only relay permission is a RELAY rule for 192.168.0: no
// trusted networks, no grants, no AUTH. Whatever the input, a recipient
// is relayed only for a client in 192.168.0.0/24, and accepted as local
// only when it is plainly user@example.com.
func FuzzCheckRcptNeverOpenRelay(f *testing.F) {
	rules, err := ParseRulesString("192.168.0 RELAY\nspamford.com REJECT\nok.spamford.com OK\nTo:blocked@ REJECT\nConnect:trusted.example OK\n")
	if err != nil {
		f.Fatal(err)
	}
	p := NewPolicy(Config{LocalDomains: []string{"example.com"}, Rules: rules})
	f.Add([]byte{127, 0, 0, 1}, "ok.spamford.com", "x@elsewhere.org")
	f.Add([]byte{192, 168, 0, 5}, "", "x@elsewhere.org")
	f.Add([]byte{192, 168, 1, 5}, "", "x%y@example.com")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 168, 0, 1}, "", "x@[192.168.0.1]")
	f.Add([]byte{}, "trusted.example", "a@b@example.com")
	f.Add([]byte{10, 0, 0, 1}, "[10.0.0.1]", "@a:b@example.com")
	f.Fuzz(func(t *testing.T, rawIP []byte, host, to string) {
		ip, _ := netip.AddrFromSlice(rawIP)
		d := p.CheckRcpt(Request{IP: ip, Hostname: host, To: to})
		switch d.Action {
		case Relay:
			if !netip.MustParsePrefix("192.168.0.0/24").Contains(ip.Unmap()) {
				t.Fatalf("open relay: %v %q → %q: %s", ip, host, to, d.Reason)
			}
		case Accept:
			at := strings.LastIndexByte(to, '@')
			if at < 0 || !strings.EqualFold(to[at+1:], "example.com") || strings.ContainsAny(to[:at], "%!@:") {
				t.Fatalf("accepted as local: %q: %s", to, d.Reason)
			}
		case Reject, TempFail:
			if d.Code < 400 || d.Code > 599 || d.Enhanced == "" || d.Reason == "" {
				t.Fatalf("bad refusal %+v", d)
			}
		default:
			t.Fatalf("unexpected action %v", d.Action)
		}
	})
}
