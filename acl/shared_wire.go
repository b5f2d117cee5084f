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
//	{"op":"revoke","ip":"192.0.2.7"}
//
// Pub/sub channels are not per database, hence the database number in
// the channel's name: instances using different databases do not mix.
const (
	sharedKeyPrefix     = "popgate:grant:"
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
}

func sharedKey(ip netip.Addr) string { return sharedKeyPrefix + ip.String() }

func encodeValue(gr Grant) string {
	b, _ := json.Marshal(sharedRecord{User: gr.User, Granted: gr.Granted.UnixMilli(), Expires: gr.Expires.UnixMilli()})
	return string(b)
}

func encodeGrantMessage(gr Grant) string {
	b, _ := json.Marshal(sharedRecord{Op: "grant", IP: gr.IP.String(), User: gr.User, Granted: gr.Granted.UnixMilli(), Expires: gr.Expires.UnixMilli()})
	return string(b)
}

func encodeRevokeMessage(ip netip.Addr) string {
	b, _ := json.Marshal(sharedRecord{Op: "revoke", IP: ip.String()})
	return string(b)
}

// decodeValue reads the value of the key for ip.
func decodeValue(ip netip.Addr, value string) (Grant, error) {
	var r sharedRecord
	if err := decodeRecord(value, &r); err != nil {
		return Grant{}, err
	}
	if r.Op != "" || r.IP != "" {
		return Grant{}, errors.New("acl: shared grant: op or ip in a key's value")
	}
	return r.grant(ip)
}

// decodeMessage reads a change message: a grant, or a revocation (ok
// false, revoked set).
func decodeMessage(msg string) (gr Grant, revoked netip.Addr, err error) {
	var r sharedRecord
	if err := decodeRecord(msg, &r); err != nil {
		return Grant{}, netip.Addr{}, err
	}
	ip, err := netip.ParseAddr(r.IP)
	if err != nil || ip.Zone() != "" {
		return Grant{}, netip.Addr{}, fmt.Errorf("acl: shared grant: bad ip %q", r.IP)
	}
	ip = ip.Unmap()
	switch r.Op {
	case "grant":
		gr, err := r.grant(ip)
		return gr, netip.Addr{}, err
	case "revoke":
		if r.User != "" || r.Granted != 0 || r.Expires != 0 {
			return Grant{}, netip.Addr{}, errors.New("acl: shared grant: revoke with grant fields")
		}
		return Grant{}, ip, nil
	default:
		return Grant{}, netip.Addr{}, fmt.Errorf("acl: shared grant: unknown op %q", r.Op)
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
