//go:build interop

package acl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/popgate/popgate/acl/redistest"
)

// TestInteropSharedPartitionRevocations partitions ONE instance from a
// real redis-server: A talks to Redis directly, B through a proxy that
// the test cuts and restores. A revocation on A during the partition
// sticks when B returns (B does not write the grant back), B's own
// revocation made while cut off does not remove a newer login made on A
// meanwhile, and a login on B during the partition is written back.
func TestInteropSharedPartitionRevocations(t *testing.T) {
	srv := redistest.Start(t)
	px := redistest.StartProxy(t, srv.Addr())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const ttl = time.Hour
	a := newRedisInstance(t, ctx, srv.URL(5), ttl)
	b := newRedisInstance(t, ctx, px.URL(5), ttl)
	waitUntil(t, "both instances sharing", func() bool { return a.s.Status().Up && b.s.Status().Up })

	revokedOnA := ip("192.0.2.1") // B's login, revoked on A during the partition
	revokedOnB := ip("192.0.2.2") // A's login, revoked on B during the partition, then renewed on A
	loginOnB := ip("192.0.2.3")   // B's login during the partition
	b.g.LoginSucceeded("alice@example.com", revokedOnA)
	a.g.LoginSucceeded("bob@example.com", revokedOnB)
	waitUntil(t, "both grants on both instances", func() bool {
		return a.relays(revokedOnA) && b.relays(revokedOnB)
	})

	px.Cut()
	waitUntil(t, "B to see the partition", func() bool { return !b.s.Status().Up })
	if !a.s.Status().Up {
		t.Fatal("A lost Redis too: the proxy cut more than B")
	}

	// Scenario 1: the operator revokes on A, whose DEL reaches Redis.
	before := time.Now()
	if !a.g.Revoke(revokedOnA) {
		t.Fatal("A did not know the grant it revokes")
	}
	if redisInt(t, srv, 5, "EXISTS", "popgate:grant:192.0.2.1") != 0 {
		t.Fatal("revoked grant still in Redis")
	}
	at := redisInt(t, srv, 5, "GET", "popgate:revoked:192.0.2.1")
	if at < before.UnixMilli() || at > time.Now().UnixMilli() {
		t.Fatalf("tombstone dated %d, revoked between %d and now", at, before.UnixMilli())
	}
	if end := redisInt(t, srv, 5, "PEXPIRETIME", "popgate:revoked:192.0.2.1"); end != at+(ttl+maxSharedSkew).Milliseconds() {
		t.Fatalf("tombstone ends at %d, want %d (revocation + pop_ttl + skew)", end, at+(ttl+maxSharedSkew).Milliseconds())
	}

	// A login on B during the partition relays through B only.
	b.g.LoginSucceeded("carol@example.com", loginOnB)
	if !b.relays(loginOnB) || a.relays(loginOnB) {
		t.Fatal("B's partition login: want relay on B only")
	}

	// Scenario 2: B revokes while cut off; then a new login on A.
	if !b.g.Revoke(revokedOnB) {
		t.Fatal("B did not know the grant it revokes")
	}
	revokedAt := time.Now().UnixMilli()
	waitUntil(t, "the clock to pass B's revocation", func() bool { return time.Now().UnixMilli() > revokedAt })
	a.g.LoginSucceeded("bob@example.com", revokedOnB)
	newer, _ := a.g.Lookup(revokedOnB)

	px.Restore()
	waitUntil(t, "B back", func() bool { return b.s.Status().Up })
	// B dropped the revoked grant before it counted as back.
	if a.relays(revokedOnA) || b.relays(revokedOnA) {
		t.Fatalf("%v relays right after B's return (A %v, B %v)", revokedOnA, a.relays(revokedOnA), b.relays(revokedOnA))
	}
	// Messages reach each subscriber in order: a grant published after
	// B's replay and write-back has reached A and B once both relay it.
	barrier := ip("192.0.2.9")
	a.g.LoginSucceeded("dave@example.com", barrier)
	waitUntil(t, "a login after the return on B, and B's partition login on A", func() bool {
		return b.relays(barrier) && a.relays(loginOnB)
	})

	for name, in := range map[string]*redisInstance{"A": a, "B": b} {
		if in.relays(revokedOnA) {
			t.Errorf("%s relays for %v, revoked on A during the partition", name, revokedOnA)
		}
		if gr, ok := in.g.Lookup(revokedOnB); !ok || !sameGrant(gr, newer) || !in.relays(revokedOnB) {
			t.Errorf("%s has %+v %v for %v, want A's login made after B's revocation %+v", name, gr, ok, revokedOnB, newer)
		}
	}
	if redisInt(t, srv, 5, "EXISTS", "popgate:grant:192.0.2.1") != 0 {
		t.Error("B wrote back a grant revoked on A")
	}
	if redisInt(t, srv, 5, "EXISTS", "popgate:grant:192.0.2.2") != 1 {
		t.Error("B's replayed revocation removed A's newer login")
	}
	// B's replay leaves its own tombstone; A's newer login is after it.
	if tomb := redisInt(t, srv, 5, "GET", "popgate:revoked:192.0.2.2"); tomb >= newer.Granted.UnixMilli() {
		t.Errorf("B's tombstone %d not before A's login %d", tomb, newer.Granted.UnixMilli())
	}
	if !strings.Contains(b.logs.String(), `level=INFO msg="relay grant revoked elsewhere" user=alice@example.com ip=192.0.2.1`) {
		t.Errorf("B's log: %s", b.logs.String())
	}
	if st := b.s.Status(); st.WrittenBack != 1 || st.Unshared != 0 || st.Outages != 1 {
		t.Errorf("B after the partition: %+v", st)
	}
	// The tombstones are not grants: B's reload did not take them.
	for _, gr := range b.g.List() {
		if gr.IP == revokedOnA {
			t.Errorf("B lists %+v", gr)
		}
	}

	// A login for the revoked address after the revocation is a new grant.
	b.g.LoginSucceeded("alice@example.com", revokedOnA)
	waitUntil(t, "a new login after the revocation on A", func() bool { return a.relays(revokedOnA) })
}

// TestInteropSharedPreviousVersionReadsStore: what this version writes
// is still read by the previous one: its SCAN pattern (popgate:grant:*)
// finds grants only, not tombstones, and a revoke message carries no
// grant field (its decoder ignores the new "revoked").
func TestInteropSharedPreviousVersionReadsStore(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := newRedisInstance(t, ctx, srv.URL(0), time.Hour)
	waitUntil(t, "sharing", func() bool { return a.s.Status().Up })
	kept, revoked := ip("192.0.2.1"), ip("192.0.2.2")
	a.g.LoginSucceeded("alice@example.com", kept)
	a.g.LoginSucceeded("bob@example.com", revoked)

	c, err := redis.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	psc := redis.PubSubConn{Conn: c}
	if err := psc.Subscribe(sharedChannelPrefix + "0"); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("not subscribed")
	}
	a.g.Revoke(revoked)
	m, ok := psc.Receive().(redis.Message)
	if !ok {
		t.Fatal("no revoke message")
	}
	var r struct {
		Op, IP, User     string
		Granted, Expires int64
	}
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Op != "revoke" || r.IP != "192.0.2.2" ||
		r.User != "" || r.Granted != 0 || r.Expires != 0 || !strings.Contains(string(m.Data), `"revoked":`) {
		t.Fatalf("previous version reads %s as %+v %v", m.Data, r, err)
	}

	if redisInt(t, srv, 0, "EXISTS", "popgate:revoked:192.0.2.2") != 1 {
		t.Fatal("no tombstone")
	}
	c2, err := redis.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	step, err := redis.Values(c2.Do("SCAN", "0", "MATCH", sharedKeyPrefix+"*", "COUNT", 1000))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := redis.Strings(step[1], nil)
	if err != nil || len(keys) != 1 || keys[0] != "popgate:grant:192.0.2.1" {
		t.Fatalf("SCAN popgate:grant:* = %q %v", keys, err)
	}
	all, err := a.s.be.load(ctx)
	if err != nil || len(all) != 1 || all[0].IP != kept {
		t.Fatalf("load with a tombstone in the store: %+v %v", all, err)
	}
}
