package acl

import (
	"net/netip"
	"testing"
	"time"
)

func TestSharedWireRoundTrip(t *testing.T) {
	gr := Grant{IP: netip.MustParseAddr("2001:db8::7"), User: "alice@example.com",
		Granted: time.UnixMilli(946684800123), Expires: time.UnixMilli(946685700123)}
	got, revoked, err := decodeMessage(encodeGrantMessage(gr))
	if err != nil || revoked.IsValid() || !sameGrant(got, gr) {
		t.Fatalf("grant message: %+v %v %v", got, revoked, err)
	}
	if got, err := decodeValue(gr.IP, encodeValue(gr)); err != nil || !sameGrant(got, gr) {
		t.Fatalf("value: %+v %v", got, err)
	}
	if _, revoked, err := decodeMessage(encodeRevokeMessage(gr.IP)); err != nil || revoked != gr.IP {
		t.Fatalf("revoke message: %v %v", revoked, err)
	}
	if k := sharedKey(netip.MustParseAddr("192.0.2.7")); k != "popgate:grant:192.0.2.7" {
		t.Errorf("key %q", k)
	}
}

func TestSharedWireRefuses(t *testing.T) {
	for _, m := range []string{
		``, `null`, `[]`, `{"op":"grant"}`,
		`{"op":"grant","ip":"192.0.2.1","user":"a@b","granted":2,"expires":1}`,
		`{"op":"grant","ip":"192.0.2.1","user":"","granted":1,"expires":2}`,
		`{"op":"grant","ip":"fe80::1%eth0","user":"a@b","granted":1,"expires":2}`,
		`{"op":"grant","ip":"192.0.2.0/24","user":"a@b","granted":1,"expires":2}`,
		`{"op":"revoke","ip":"192.0.2.1","user":"a@b"}`,
		`{"op":"revoke"}`,
		`{"op":"grant","ip":"192.0.2.1","user":"a@b","granted":1,"expires":2,"extra":1}x`,
		`{"op":"grant","ip":"192.0.2.1","user":"` + string(make([]byte, 400)) + `","granted":1,"expires":2}`,
	} {
		if gr, revoked, err := decodeMessage(m); err == nil {
			t.Errorf("%q accepted: %+v %v", m, gr, revoked)
		}
	}
	if _, err := decodeValue(netip.MustParseAddr("192.0.2.1"), `{"op":"grant","ip":"192.0.2.1","user":"a@b","granted":1,"expires":2}`); err == nil {
		t.Error("a message accepted as a key's value")
	}
}

// FuzzDecodeMessage: whatever arrives on the channel, decoding does not
// panic, and what it accepts is a bounded, zone-free grant that encodes
// back to itself, or a revocation.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(`{"op":"grant","ip":"192.0.2.7","user":"alice@example.com","granted":946684800000,"expires":946685700000}`)
	f.Add(`{"op":"revoke","ip":"2001:db8::1"}`)
	f.Add(`{"op":"grant","ip":"::ffff:192.0.2.7","user":"x","granted":1,"expires":2}`)
	f.Fuzz(func(t *testing.T, m string) {
		gr, revoked, err := decodeMessage(m)
		if err != nil {
			return
		}
		if revoked.IsValid() {
			if revoked.Zone() != "" || revoked.Is4In6() {
				t.Fatalf("revocation of %v", revoked)
			}
			return
		}
		if gr.IP.Zone() != "" || gr.IP.Is4In6() || gr.User == "" || len(gr.User) > maxSharedUser || !gr.Granted.Before(gr.Expires) {
			t.Fatalf("accepted %+v", gr)
		}
		again, _, err := decodeMessage(encodeGrantMessage(gr))
		if err != nil || !sameGrant(again, gr) {
			t.Fatalf("round trip of %+v: %+v %v", gr, again, err)
		}
	})
}
