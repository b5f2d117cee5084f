//go:build interop

package acl

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/popgate/popgate/acl/redistest"
)

// redisInstance is one popgate's grants sharing a real redis-server.
type redisInstance struct {
	g      *Grants
	s      *Shared
	policy *Policy
	logs   *logBuffer
}

func newRedisInstance(t *testing.T, ctx context.Context, url string, ttl time.Duration) *redisInstance {
	t.Helper()
	logs := &logBuffer{}
	g, err := NewGrants(GrantsConfig{TTL: ttl, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewShared(g, url, "", SharedConfig{Logger: logs.logger(), Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go g.Start(ctx)
	go s.Run(ctx)
	t.Cleanup(func() { _ = g.Close() })
	p := NewPolicy(Config{LocalDomains: []string{"example.com"}, Grants: g})
	return &redisInstance{g: g, s: s, policy: p, logs: logs}
}

// relays is the RCPT decision for a remote recipient from ip.
func (in *redisInstance) relays(ip netip.Addr) bool {
	d := in.policy.CheckRcpt(Request{IP: ip, Hostname: "client.example.net", From: "alice@example.com", To: "friend@remote.example"})
	return d.Action == Relay
}

// waitUntil polls cond; it waits for other processes and asserts no time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// redisInt runs one command on database db of srv and reads its integer
// reply, as an operator would with redis-cli.
func redisInt(t *testing.T, srv *redistest.Server, db int, cmd string, args ...any) int64 {
	t.Helper()
	c, err := redis.Dial("tcp", srv.Addr(), redis.DialDatabase(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := redis.Int64(c.Do(cmd, args...))
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return n
}

// TestInteropSharedGrantsRedis runs two instances on one real redis-server:
// a grant on A relays on B, with one key per IP expiring at the grant's
// end; an extension and a revocation on either reach the other; and a
// grant expires at its TTL on both and in Redis.
func TestInteropSharedGrantsRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := newRedisInstance(t, ctx, srv.URL(3), 3*time.Second)
	b := newRedisInstance(t, ctx, srv.URL(3), 3*time.Second)
	waitUntil(t, "both instances sharing", func() bool { return a.s.Status().Up && b.s.Status().Up })
	expireAt := func(ip string) int64 {
		return redisInt(t, srv, 3, "PEXPIRETIME", "popgate:grant:"+ip) // Redis 7.0
	}

	client := ip("192.0.2.7")
	if b.relays(client) {
		t.Fatal("B relays before any login")
	}
	a.g.LoginSucceeded("alice@example.com", client)
	waitUntil(t, "A's grant on B", func() bool { return b.relays(client) })
	gr, _ := a.g.Lookup(client)
	if got := expireAt("192.0.2.7"); got != gr.Expires.UnixMilli() {
		t.Fatalf("key expires at %d, grant at %d", got, gr.Expires.UnixMilli())
	}
	if l := b.g.List(); len(l) != 1 || l[0].User != "alice@example.com" {
		t.Fatalf("B lists %+v", l)
	}

	// Extended on B: A and Redis follow.
	b.g.LoginSucceeded("alice@example.com", client)
	ext, _ := b.g.Lookup(client)
	waitUntil(t, "B's extension on A", func() bool {
		g, ok := a.g.Lookup(client)
		return ok && g.Expires.UnixMilli() == ext.Expires.UnixMilli()
	})
	if got := expireAt("192.0.2.7"); got != ext.Expires.UnixMilli() {
		t.Fatalf("after extension the key expires at %d, grant at %d", got, ext.Expires.UnixMilli())
	}

	// Revoked by user on A: gone on B and in Redis.
	other := ip("192.0.2.8")
	b.g.LoginSucceeded("bob@example.com", other)
	waitUntil(t, "B's grant on A", func() bool { return a.relays(other) })
	if n := a.g.RevokeUser("bob@example.com"); n != 1 {
		t.Fatalf("RevokeUser = %d", n)
	}
	waitUntil(t, "revocation on B", func() bool { return !b.relays(other) })
	if redisInt(t, srv, 3, "EXISTS", "popgate:grant:192.0.2.8") != 0 {
		t.Fatal("revoked grant still in Redis")
	}

	// At its TTL the grant ends on both instances and in Redis, with no
	// sweeper: the key's own expiry.
	waitUntil(t, "expiry everywhere", func() bool {
		return redisInt(t, srv, 3, "EXISTS", "popgate:grant:192.0.2.7") == 0 && !a.relays(client) && !b.relays(client)
	})
	if time.Now().Before(ext.Expires) {
		t.Fatalf("grant gone before its expiry %v", ext.Expires)
	}
}

// TestInteropSharedRedisOutage stops the real redis-server: no open relay,
// the grants known before are honoured, a login still relays through its
// own instance; started again, the outage grants are written back and
// sharing resumes by itself.
func TestInteropSharedRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := newRedisInstance(t, ctx, srv.URL(0), time.Hour)
	b := newRedisInstance(t, ctx, srv.URL(0), time.Hour)
	waitUntil(t, "both instances sharing", func() bool { return a.s.Status().Up && b.s.Status().Up })
	before := ip("192.0.2.1")
	a.g.LoginSucceeded("alice@example.com", before)
	waitUntil(t, "A's grant on B", func() bool { return b.relays(before) })

	srv.Kill()
	waitUntil(t, "both instances to see the outage", func() bool { return !a.s.Status().Up && !b.s.Status().Up })
	for _, in := range []*redisInstance{a, b} {
		if !strings.Contains(in.logs.String(), `level=ERROR msg="relay grants sharing lost"`) {
			t.Fatalf("outage not logged: %s", in.logs.String())
		}
	}
	if !b.relays(before) {
		t.Fatal("B forgot a grant known before the outage")
	}
	during := ip("192.0.2.2")
	a.g.LoginSucceeded("carol@example.com", during)
	if !a.relays(during) {
		t.Fatal("A refuses its own login during the outage")
	}
	if b.relays(during) || b.relays(ip("192.0.2.99")) {
		t.Fatal("B relays for an address it never saw a login from: open relay")
	}
	if st := a.s.Status(); st.Unshared != 2 {
		t.Fatalf("A's unshared grants: %+v", st)
	}

	srv.Restart() // empty: --save ''
	// A writes back both its grants, in no set order; B may reload the
	// empty set before, and then hears them one by one.
	waitUntil(t, "A's grants written back and on B", func() bool { return b.relays(during) && b.relays(before) })
	waitUntil(t, "both back", func() bool { return a.s.Status().Up && b.s.Status().Up })
	if st := a.s.Status(); st.WrittenBack != 2 || st.Outages != 1 {
		t.Fatalf("A after the return: %+v", st)
	}
	after := ip("192.0.2.3")
	b.g.LoginSucceeded("dave@example.com", after)
	waitUntil(t, "sharing resumed from B to A", func() bool { return a.relays(after) })
	if !strings.Contains(a.logs.String(), `msg="relay grants sharing restored"`) {
		t.Fatalf("return not logged: %s", a.logs.String())
	}
}
