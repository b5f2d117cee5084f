package acl

import (
	"net/netip"
	"time"

	"github.com/jellydator/ttlcache/v3"
)

// grantSharer is what Grants needs from a shared store (relay.grants_url):
// it is told of every grant made or extended and every grant revoked in
// this process, and must not block for longer than one write to the store.
type grantSharer interface {
	granted(Grant)
	revoked(Grant)
}

// maxSharedSkew is how far a peer's clock may run ahead of this one's
// before a grant it made is shortened here to relay.pop_ttl from now.
const maxSharedSkew = time.Minute

// The methods below keep the local cache a replica of the shared set. They
// are called by Shared only; a grant applied here is not shared again.

// applyShared stores a grant made or extended on another instance (or
// this one's own, echoed back) and reports whether the replica changed.
// The last message wins, as the last SET wins in the store. A grant for
// a never_grant address is refused here too: a misconfigured peer must
// not widen this instance's relay.
func (g *Grants) applyShared(gr Grant) bool {
	if !g.setShared(gr) {
		return false
	}
	g.logger.Debug("relay grant shared", "user", gr.User, "ip", gr.IP.String(), "until", gr.Expires.UTC())
	g.changed()
	return true
}

func (g *Grants) setShared(gr Grant) bool {
	gr.IP = gr.IP.Unmap().WithZone("")
	if gr.User == "" || g.neverGranted(gr.IP) {
		return false
	}
	now := g.now()
	left := gr.Expires.Sub(now)
	if left <= 0 {
		return false
	}
	if left > g.ttl+maxSharedSkew {
		// A record from the store never grants longer than a login here
		// would (plus the clock skew allowed between instances).
		left = g.ttl + maxSharedSkew
		gr.Expires = now.Add(left)
	}
	if item := g.cache.Get(gr.IP); item != nil && sameGrant(item.Value(), gr) {
		return false
	}
	g.cache.Set(gr.IP, gr, left)
	return true
}

// sameGrant compares at the store's millisecond precision, so that an
// instance's own grant echoed back does not count as a change.
func sameGrant(a, b Grant) bool {
	return a.IP == b.IP && a.User == b.User &&
		a.Granted.UnixMilli() == b.Granted.UnixMilli() && a.Expires.UnixMilli() == b.Expires.UnixMilli()
}

// dropShared removes a grant revoked on another instance, if it was
// granted at or before the revocation: a later login stays.
func (g *Grants) dropShared(rv revocation) bool {
	gr, ok := g.dropIf(rv.IP, rv.covers)
	if !ok {
		return false
	}
	g.logger.Info("relay revoke shared", "user", gr.User, "ip", gr.IP.String())
	g.changed()
	return true
}

// dropRefused removes gr, a grant made here that the store refused, if
// the replica still holds that very grant (not a later one).
func (g *Grants) dropRefused(gr Grant) bool {
	if _, ok := g.dropIf(gr.IP, func(cur Grant) bool { return sameGrant(cur, gr) }); !ok {
		return false
	}
	g.changed()
	return true
}

// dropIf removes the grant for ip if match accepts it. A grant that
// replaced it between the check and the removal is put back.
func (g *Grants) dropIf(ip netip.Addr, match func(Grant) bool) (Grant, bool) {
	ip = ip.Unmap().WithZone("")
	item := g.cache.Get(ip)
	if item == nil || !match(item.Value()) {
		return Grant{}, false
	}
	item, ok := g.cache.GetAndDelete(ip)
	if !ok {
		return Grant{}, false
	}
	if gr := item.Value(); !match(gr) {
		if left := gr.Expires.Sub(g.now()); left > 0 {
			g.cache.Set(ip, gr, left)
		}
		return Grant{}, false
	}
	return item.Value(), true
}

// replaceShared makes the replica the shared set all: every grant in all
// is stored, and a local grant missing from all is dropped unless it was
// made at or after since (a login taken while the set was being read).
// It returns how many grants were added or changed and how many dropped.
func (g *Grants) replaceShared(all []Grant, since time.Time) (set, dropped int) {
	in := make(map[netip.Addr]struct{}, len(all))
	for _, gr := range all {
		in[gr.IP.Unmap().WithZone("")] = struct{}{}
		if g.setShared(gr) {
			set++
		}
	}
	var gone []netip.Addr
	g.cache.Range(func(item *ttlcache.Item[netip.Addr, Grant]) bool {
		if _, ok := in[item.Key()]; !ok && item.Value().Granted.Before(since) {
			gone = append(gone, item.Key())
		}
		return true
	})
	for _, ip := range gone {
		if item, ok := g.cache.GetAndDelete(ip); ok && item.Value().Granted.Before(since) {
			dropped++
		} else if ok {
			g.cache.Set(ip, item.Value(), item.Value().Expires.Sub(g.now()))
		}
	}
	if set > 0 || dropped > 0 {
		g.changed()
	}
	return set, dropped
}
