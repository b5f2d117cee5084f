package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// How grants look in the shared store (relay.grants_url):
//
//	key     popgate:grant:<ip>   e.g. popgate:grant:192.0.2.7, popgate:grant:2001:db8::1
//	value   {"user":"alice@example.com","granted":<unix ms>,"expires":<unix ms>}
//	expiry  PXAT <expires>, so the store drops the key when the grant ends
//
// and every change is announced on the channel popgate:grants:<db> as
//
//	{"op":"grant","ip":"192.0.2.7","user":…,"granted":…,"expires":…}
//	{"op":"revoke","ip":"192.0.2.7","revoked":<unix ms>}
//
// A revocation also leaves a record of itself, a tombstone, so that an
// instance cut off from the store while it happened cannot write the
// revoked grant back when it returns:
//
//	key     popgate:revoked:<ip>   e.g. popgate:revoked:192.0.2.7
//	value   <unix ms>              the revocation's time, in decimal
//	expiry  PXAT <unix ms> + pop_ttl + maxSharedSkew, or the revoked
//	        grant's own expiry if later: no grant made before it can be
//	        live any more by then
//
// The store refuses to write a grant whose "granted" is not after its
// address's tombstone, and a revocation deletes only a grant granted at
// or before it (a later login stays). Receivers drop only a grant granted
// at or before "revoked". Both additions are invisible to a popgate that
// predates them: it ignores the unknown "revoked" field (and drops the
// grant, as it always did), and its SCAN of popgate:grant:* does not see
// the tombstones.
//
// Pub/sub channels are not per database, hence the database number in
// the channel's name: instances using different databases do not mix.
const (
	sharedKeyPrefix     = "popgate:grant:"
	sharedTombPrefix    = "popgate:revoked:"
	sharedChannelPrefix = "popgate:grants:"
	// maxSharedUser bounds a user name read from the store (RFC 5321
	// §4.5.3.1: local part 64 + @ + domain 255).
	maxSharedUser = 320
	// maxSharedRecord bounds a value or message read from the store.
	maxSharedRecord = 1024
)

// sharedRecord is a key's value and, with Op and IP, a change message.
type sharedRecord struct {
	Op      string `json:"op,omitempty"`
	IP      string `json:"ip,omitempty"`
	User    string `json:"user,omitempty"`
	Granted int64  `json:"granted,omitempty"`
	Expires int64  `json:"expires,omitempty"`
	Revoked int64  `json:"revoked,omitempty"`
}

// revocation is a grant revoked at At: it removes the grant for IP if
// that was granted at or before At, and refuses writing one back until
// Until, when no grant made before At can still be live.
type revocation struct {
	IP    netip.Addr
	At    time.Time // zero: a message from a popgate that predates tombstones
	Until time.Time
}

// covers reports whether the revocation removes gr: gr was granted at or
// before it, compared at the store's millisecond precision. A revocation
// without a time covers every grant.
func (rv revocation) covers(gr Grant) bool {
	return rv.At.IsZero() || gr.Granted.UnixMilli() <= rv.At.UnixMilli()
}

func sharedKey(ip netip.Addr) string { return sharedKeyPrefix + ip.String() }

func sharedTombKey(ip netip.Addr) string { return sharedTombPrefix + ip.String() }

func encodeValue(gr Grant) string {
	b, _ := json.Marshal(sharedRecord{User: gr.User, Granted: gr.Granted.UnixMilli(), Expires: gr.Expires.UnixMilli()})
	return string(b)
}

func encodeGrantMessage(gr Grant) string {
	b, _ := json.Marshal(sharedRecord{Op: "grant", IP: gr.IP.String(), User: gr.User, Granted: gr.Granted.UnixMilli(), Expires: gr.Expires.UnixMilli()})
	return string(b)
}

func encodeRevokeMessage(rv revocation) string {
	r := sharedRecord{Op: "revoke", IP: rv.IP.String()}
	if !rv.At.IsZero() {
		r.Revoked = rv.At.UnixMilli()
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// decodeValue reads the value of the key for ip.
func decodeValue(ip netip.Addr, value string) (Grant, error) {
	var r sharedRecord
	if err := decodeRecord(value, &r); err != nil {
		return Grant{}, err
	}
	if r.Op != "" || r.IP != "" || r.Revoked != 0 {
		return Grant{}, errors.New("acl: shared grant: op, ip or revoked in a key's value")
	}
	return r.grant(ip)
}

// decodeMessage reads a change message: a grant, or a revocation (rv.IP
// valid). A revocation from a popgate that predates tombstones has no
// time (rv.At zero).
func decodeMessage(msg string) (gr Grant, rv revocation, err error) {
	var r sharedRecord
	if err := decodeRecord(msg, &r); err != nil {
		return Grant{}, revocation{}, err
	}
	ip, err := netip.ParseAddr(r.IP)
	if err != nil || ip.Zone() != "" {
		return Grant{}, revocation{}, fmt.Errorf("acl: shared grant: bad ip %q", r.IP)
	}
	ip = ip.Unmap()
	switch r.Op {
	case "grant":
		if r.Revoked != 0 {
			return Grant{}, revocation{}, errors.New("acl: shared grant: grant with a revocation time")
		}
		gr, err := r.grant(ip)
		return gr, revocation{}, err
	case "revoke":
		if r.User != "" || r.Granted != 0 || r.Expires != 0 {
			return Grant{}, revocation{}, errors.New("acl: shared grant: revoke with grant fields")
		}
		if r.Revoked < 0 {
			return Grant{}, revocation{}, fmt.Errorf("acl: shared grant: revoked %d", r.Revoked)
		}
		rv := revocation{IP: ip}
		if r.Revoked > 0 {
			rv.At = time.UnixMilli(r.Revoked)
		}
		return Grant{}, rv, nil
	default:
		return Grant{}, revocation{}, fmt.Errorf("acl: shared grant: unknown op %q", r.Op)
	}
}

func decodeRecord(s string, r *sharedRecord) error {
	if len(s) > maxSharedRecord {
		return fmt.Errorf("acl: shared grant: record of %d bytes", len(s))
	}
	if err := json.Unmarshal([]byte(s), r); err != nil {
		return fmt.Errorf("acl: shared grant: %w", err)
	}
	return nil
}

func (r sharedRecord) grant(ip netip.Addr) (Grant, error) {
	if r.User == "" || len(r.User) > maxSharedUser {
		return Grant{}, fmt.Errorf("acl: shared grant: bad user of %d bytes", len(r.User))
	}
	if r.Granted <= 0 || r.Expires <= r.Granted {
		return Grant{}, fmt.Errorf("acl: shared grant: granted %d, expires %d", r.Granted, r.Expires)
	}
	return Grant{IP: ip, User: r.User, Granted: time.UnixMilli(r.Granted), Expires: time.UnixMilli(r.Expires)}, nil
}
