package acl

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestSharedPartitionRevocationsStick cuts B alone off the store (A keeps
// it): a grant revoked on A meanwhile is not written back by B when it
// returns; B's own revocation, replayed, does not remove a newer login
// made on A; a login on B during the partition is written back.
func TestSharedPartitionRevocationsStick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		b := newInstance(t, ctx, store)
		synctest.Wait()

		revokedOnA := ip("192.0.2.1") // B's login, revoked on A during the partition
		revokedOnB := ip("192.0.2.2") // A's login, revoked on B during the partition, then again on A
		loginOnB := ip("192.0.2.3")   // B's login during the partition
		b.g.LoginSucceeded("alice@example.com", revokedOnA)
		a.g.LoginSucceeded("bob@example.com", revokedOnB)
		synctest.Wait()
		if _, ok := a.g.Lookup(revokedOnA); !ok {
			t.Fatal("B's grant not on A")
		}

		time.Sleep(time.Minute)
		b.be.partition()
		synctest.Wait()
		if st := b.s.Status(); st.Up {
			t.Fatalf("B does not see the partition: %+v", st)
		}
		if st := a.s.Status(); !st.Up {
			t.Fatalf("A lost the store too: %+v", st)
		}

		if !a.g.Revoke(revokedOnA) {
			t.Fatal("A did not know the grant it revokes")
		}
		if rv, ok := store.tomb(revokedOnA); !ok || rv.At.UnixMilli() != time.Now().UnixMilli() ||
			rv.Until.UnixMilli() != time.Now().Add(15*time.Minute+maxSharedSkew).UnixMilli() {
			t.Fatalf("tombstone %+v %v", rv, ok)
		}
		b.g.LoginSucceeded("carol@example.com", loginOnB)
		if !b.g.Revoke(revokedOnB) {
			t.Fatal("B did not know the grant it revokes")
		}
		time.Sleep(time.Minute)
		a.g.LoginSucceeded("bob@example.com", revokedOnB) // after B's revocation
		newer, _ := a.g.Lookup(revokedOnB)
		synctest.Wait()

		b.be.heal()
		time.Sleep(time.Second) // Run's retry
		synctest.Wait()
		st := b.s.Status()
		if !st.Up || st.WrittenBack != 1 || st.Unshared != 0 {
			t.Fatalf("B after the partition: %+v", st)
		}
		// The revocation on A sticks: nowhere, and logged by B.
		if _, ok := store.get(revokedOnA); ok {
			t.Fatal("B wrote back a grant revoked on A")
		}
		for name, in := range map[string]*instance{"A": a, "B": b} {
			if _, ok := in.g.Lookup(revokedOnA); ok {
				t.Fatalf("%s relays for an address revoked during the partition", name)
			}
		}
		if !strings.Contains(b.logs.String(), `level=INFO msg="relay grant revoked elsewhere" user=alice@example.com ip=192.0.2.1`) {
			t.Fatalf("B's log: %s", b.logs.String())
		}
		b.s.mu.Lock()
		_, kept := b.s.mine[revokedOnA]
		b.s.mu.Unlock()
		if kept {
			t.Fatal("B still holds the revoked grant for write-back")
		}
		// A's login after B's revocation survives its replay, everywhere.
		for name, in := range map[string]*instance{"A": a, "B": b} {
			if gr, ok := in.g.Lookup(revokedOnB); !ok || !sameGrant(gr, newer) {
				t.Fatalf("%s has %+v %v, want A's newer login %+v", name, gr, ok, newer)
			}
		}
		if gr, ok := store.get(revokedOnB); !ok || !sameGrant(gr, newer) {
			t.Fatalf("store has %+v %v", gr, ok)
		}
		// B's login during the partition is shared.
		if _, ok := a.g.Lookup(loginOnB); !ok {
			t.Fatal("B's partition login not written back")
		}

		// A new login for the revoked address, after the revocation, is
		// written and shared as usual.
		time.Sleep(time.Second)
		b.g.LoginSucceeded("alice@example.com", revokedOnA)
		synctest.Wait()
		if _, ok := a.g.Lookup(revokedOnA); !ok {
			t.Fatal("a login after the revocation is not shared")
		}
	})
}

// TestSharedTombstoneExpires: a tombstone outlives every grant made
// before it (pop_ttl plus the allowed skew) and no more.
func TestSharedTombstoneExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		synctest.Wait()
		client := ip("192.0.2.7")
		a.g.LoginSucceeded("alice@example.com", client)
		a.g.Revoke(client)
		time.Sleep(15*time.Minute + maxSharedSkew - time.Millisecond)
		if _, ok := store.tomb(client); !ok {
			t.Fatal("tombstone gone before pop_ttl + skew")
		}
		time.Sleep(time.Millisecond)
		if _, ok := store.tomb(client); ok {
			t.Fatal("tombstone outlives pop_ttl + skew")
		}
	})
}

// TestSharedLateWriteOfRevokedGrant: a login whose write reaches the
// store after a revocation made later on another instance (a race) is
// refused there and dropped here, not left relaying on this instance
// alone.
func TestSharedLateWriteOfRevokedGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		synctest.Wait()
		client := ip("192.0.2.7")
		// The revocation on another instance, a millisecond after the
		// login below.
		store.mu.Lock()
		now := time.Now()
		store.tombs[client] = revocation{IP: client, At: now.Add(time.Millisecond), Until: now.Add(time.Hour)}
		store.mu.Unlock()
		a.g.LoginSucceeded("alice@example.com", client)
		synctest.Wait()
		if _, ok := a.g.Lookup(client); ok {
			t.Fatal("a grant the store refused still relays here")
		}
		if _, ok := store.get(client); ok {
			t.Fatal("store took a revoked grant")
		}
		if !strings.Contains(a.logs.String(), `msg="relay grant revoked elsewhere" user=alice@example.com ip=192.0.2.7`) {
			t.Fatalf("log: %s", a.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
		a.g.LoginSucceeded("alice@example.com", client)
		if _, ok := store.get(client); !ok {
			t.Fatal("a login after the revocation refused")
		}
	})
}
