package acl

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestSharedWireRoundTrip(t *testing.T) {
	gr := Grant{IP: netip.MustParseAddr("2001:db8::7"), User: "alice@example.com",
		Granted: time.UnixMilli(946684800123), Expires: time.UnixMilli(946685700123)}
	got, rv, err := decodeMessage(encodeGrantMessage(gr))
	if err != nil || rv.IP.IsValid() || !sameGrant(got, gr) {
		t.Fatalf("grant message: %+v %v %v", got, rv, err)
	}
	if got, err := decodeValue(gr.IP, encodeValue(gr)); err != nil || !sameGrant(got, gr) {
		t.Fatalf("value: %+v %v", got, err)
	}
	at := time.UnixMilli(946684900456)
	if _, rv, err := decodeMessage(encodeRevokeMessage(revocation{IP: gr.IP, At: at})); err != nil || rv.IP != gr.IP || !rv.At.Equal(at) {
		t.Fatalf("revoke message: %+v %v", rv, err)
	}
	if k := sharedKey(netip.MustParseAddr("192.0.2.7")); k != "popgate:grant:192.0.2.7" {
		t.Errorf("key %q", k)
	}
	if k := sharedTombKey(netip.MustParseAddr("2001:db8::1")); k != "popgate:revoked:2001:db8::1" {
		t.Errorf("tombstone key %q", k)
	}
}

// TestSharedWireCompatible: a revocation from a popgate that predates
// tombstones (no "revoked") covers every grant; one with a time covers
// only grants made at or before it; and what this version sends is what
// the previous version's decoder accepted (it ignores unknown fields).
func TestSharedWireCompatible(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	old := Grant{IP: ip, User: "a@example.com", Granted: time.UnixMilli(1000), Expires: time.UnixMilli(9000)}
	later := Grant{IP: ip, User: "a@example.com", Granted: time.UnixMilli(2001), Expires: time.UnixMilli(9000)}

	_, rv, err := decodeMessage(`{"op":"revoke","ip":"192.0.2.7"}`)
	if err != nil || rv.IP != ip || !rv.At.IsZero() || !rv.covers(old) || !rv.covers(later) {
		t.Fatalf("old revoke message: %+v %v", rv, err)
	}
	_, rv, err = decodeMessage(encodeRevokeMessage(revocation{IP: ip, At: time.UnixMilli(2000)}))
	if err != nil || !rv.covers(old) || rv.covers(later) {
		t.Fatalf("dated revoke message: %+v %v", rv, err)
	}
	// The previous decoder: a record whose grant fields are empty.
	var r struct {
		Op, IP, User     string
		Granted, Expires int64
	}
	if err := json.Unmarshal([]byte(encodeRevokeMessage(revocation{IP: ip, At: time.UnixMilli(2000)})), &r); err != nil ||
		r.Op != "revoke" || r.IP != "192.0.2.7" || r.User != "" || r.Granted != 0 || r.Expires != 0 {
		t.Fatalf("previous version reads %+v %v", r, err)
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
		`{"op":"revoke","ip":"192.0.2.1","revoked":-5}`,
		`{"op":"grant","ip":"192.0.2.1","user":"a@b","granted":1,"expires":2,"revoked":1}`,
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
	f.Add(`{"op":"revoke","ip":"192.0.2.7","revoked":946684800000}`)
	f.Add(`{"op":"grant","ip":"::ffff:192.0.2.7","user":"x","granted":1,"expires":2}`)
	f.Fuzz(func(t *testing.T, m string) {
		gr, rv, err := decodeMessage(m)
		if err != nil {
			return
		}
		if rv.IP.IsValid() {
			if rv.IP.Zone() != "" || rv.IP.Is4In6() || !rv.At.IsZero() && !rv.At.After(time.UnixMilli(0)) {
				t.Fatalf("revocation %+v", rv)
			}
			_, again, err := decodeMessage(encodeRevokeMessage(rv))
			if err != nil || again.IP != rv.IP || !again.At.Equal(rv.At) {
				t.Fatalf("round trip of %+v: %+v %v", rv, again, err)
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
