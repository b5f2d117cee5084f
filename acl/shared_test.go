package acl

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeStore stands for one Redis server shared by several instances: keys
// with an expiry, tombstones of revocations, and a channel. It can be
// stopped and started again (losing its keys, as redis-server --save ”
// does), one instance's connection can be cut and restored (a partition),
// and it can hold a grant-like key written by hand.
type fakeStore struct {
	mu     sync.Mutex
	down   bool
	downCh chan struct{} // closed when the store stops
	keys   map[netip.Addr]Grant
	tombs  map[netip.Addr]revocation // Until is the tombstone's expiry
	subs   map[int]func(string)
	nextID int
	puts   int
}

func newFakeStore() *fakeStore {
	return &fakeStore{downCh: make(chan struct{}), keys: map[netip.Addr]Grant{},
		tombs: map[netip.Addr]revocation{}, subs: map[int]func(string){}}
}

var errStoreDown = errors.New("fake store: connection refused")

func (f *fakeStore) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	close(f.downCh)
	f.keys = map[netip.Addr]Grant{}
	f.tombs = map[netip.Addr]revocation{}
	f.subs = map[int]func(string){}
}

func (f *fakeStore) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
	f.downCh = make(chan struct{})
}

func (f *fakeStore) publish(m string) {
	for _, fn := range f.subs {
		fn(m)
	}
}

func (f *fakeStore) get(ip netip.Addr) (Grant, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gr, ok := f.keys[ip]
	if ok && !time.Now().Before(gr.Expires) {
		return Grant{}, false
	}
	return gr, ok
}

// tomb returns the live tombstone for ip.
func (f *fakeStore) tomb(ip netip.Addr) (revocation, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv, ok := f.tombs[ip]
	if ok && !time.Now().Before(rv.Until) {
		return revocation{}, false
	}
	return rv, ok
}

// backend is one instance's connection to the store.
func (f *fakeStore) backend() *fakeBackend { return &fakeBackend{f: f, cutCh: make(chan struct{})} }

// fakeBackend is one instance's connection: it fails while the store is
// down or while this connection is cut.
type fakeBackend struct {
	f     *fakeStore
	mu    sync.Mutex
	cut   bool
	cutCh chan struct{} // closed when the connection is cut
}

// partition cuts this instance off the store; the others keep it.
func (b *fakeBackend) partition() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = true
	close(b.cutCh)
}

// heal restores the connection.
func (b *fakeBackend) heal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = false
	b.cutCh = make(chan struct{})
}

// lockStore locks the store and fails as an unreachable store would.
func (b *fakeBackend) lockStore() (*fakeStore, error) {
	b.mu.Lock()
	cut := b.cut
	b.mu.Unlock()
	f := b.f
	f.mu.Lock()
	if f.down || cut {
		f.mu.Unlock()
		return nil, errStoreDown
	}
	return f, nil
}

// put mirrors putScript.
func (b *fakeBackend) put(_ context.Context, gr Grant) (bool, error) {
	f, err := b.lockStore()
	if err != nil {
		return false, err
	}
	defer f.mu.Unlock()
	if rv, ok := f.tombs[gr.IP]; ok && time.Now().Before(rv.Until) && rv.covers(gr) {
		return false, nil
	}
	// The store keeps milliseconds, as PXAT does.
	gr.Granted, gr.Expires = time.UnixMilli(gr.Granted.UnixMilli()), time.UnixMilli(gr.Expires.UnixMilli())
	f.keys[gr.IP] = gr
	f.puts++
	f.publish(encodeGrantMessage(gr))
	return true, nil
}

// del mirrors delScript.
func (b *fakeBackend) del(_ context.Context, rv revocation) error {
	f, err := b.lockStore()
	if err != nil {
		return err
	}
	defer f.mu.Unlock()
	rv.At, rv.Until = time.UnixMilli(rv.At.UnixMilli()), time.UnixMilli(rv.Until.UnixMilli())
	if gr, ok := f.keys[rv.IP]; ok && rv.covers(gr) {
		delete(f.keys, rv.IP)
		if gr.Expires.After(rv.Until) {
			rv.Until = gr.Expires
		}
	}
	if old, ok := f.tombs[rv.IP]; (!ok || !time.Now().Before(old.Until) || !old.At.After(rv.At)) && time.Now().Before(rv.Until) {
		f.tombs[rv.IP] = rv
	}
	f.publish(encodeRevokeMessage(rv))
	return nil
}

func (b *fakeBackend) load(context.Context) ([]Grant, error) {
	f, err := b.lockStore()
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var out []Grant
	for _, gr := range f.keys {
		if time.Now().Before(gr.Expires) {
			out = append(out, gr)
		}
	}
	return out, nil
}

func (b *fakeBackend) subscribe(ctx context.Context, ready func(), msg func(string)) error {
	f, err := b.lockStore()
	if err != nil {
		return err
	}
	id := f.nextID
	f.nextID++
	f.subs[id] = msg
	downCh := f.downCh
	f.mu.Unlock()
	b.mu.Lock()
	cutCh := b.cutCh
	b.mu.Unlock()
	ready()
	unsubscribe := func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
	select {
	case <-ctx.Done():
		unsubscribe()
		return ctx.Err()
	case <-cutCh:
		unsubscribe()
		return errors.New("fake store: connection cut")
	case <-downCh:
		return errors.New("fake store: connection reset")
	}
}

func (*fakeBackend) close() {}

// instance is one popgate's grants sharing a fake store.
type instance struct {
	g    *Grants
	s    *Shared
	be   *fakeBackend
	logs *logBuffer
}

func newInstance(t *testing.T, ctx context.Context, store *fakeStore, never ...netip.Prefix) *instance {
	t.Helper()
	logs := &logBuffer{}
	g, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute, NeverGrant: never, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	be := store.backend()
	s := newShared(g, be, "redis://fake:6379/0", SharedConfig{Logger: logs.logger(), Retry: time.Second})
	go g.Start(ctx)
	go s.Run(ctx)
	t.Cleanup(func() { _ = g.Close() })
	return &instance{g: g, s: s, be: be, logs: logs}
}

func TestSharedGrantExtendRevokeAcrossInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		b := newInstance(t, ctx, store)
		synctest.Wait()
		if !a.s.Status().Up || !b.s.Status().Up {
			t.Fatalf("not up: %+v %+v", a.s.Status(), b.s.Status())
		}
		client := ip("192.0.2.7")
		a.g.LoginSucceeded("alice@example.com", client)
		synctest.Wait()
		gr, ok := b.g.Lookup(client)
		if !ok || gr.User != "alice@example.com" || gr.Expires.UnixMilli() != time.Now().Add(15*time.Minute).UnixMilli() {
			t.Fatalf("B sees %+v %v", gr, ok)
		}
		if sg, ok := store.get(client); !ok || !sg.Expires.Equal(gr.Expires) {
			t.Fatalf("store has %+v %v", sg, ok)
		}

		// Extended on B ten minutes later: A's copy follows.
		time.Sleep(10 * time.Minute)
		b.g.LoginSucceeded("alice@example.com", client)
		synctest.Wait()
		if gr, ok := a.g.Lookup(client); !ok || !gr.Expires.Equal(time.UnixMilli(time.Now().Add(15*time.Minute).UnixMilli())) {
			t.Fatalf("A after extension: %+v %v", gr, ok)
		}
		// Still valid on A past the first expiry, void at the second.
		time.Sleep(14 * time.Minute)
		if _, ok := a.g.Lookup(client); !ok {
			t.Fatal("extension on B not honoured on A")
		}
		time.Sleep(time.Minute)
		if _, ok := a.g.Lookup(client); ok {
			t.Fatal("grant alive on A after its TTL")
		}

		// Revoked on A: gone on B and in the store.
		other := ip("192.0.2.8")
		b.g.LoginSucceeded("bob@example.com", other)
		synctest.Wait()
		if _, ok := a.g.Lookup(other); !ok {
			t.Fatal("B's grant not on A")
		}
		if n := a.g.RevokeUser("BOB@example.com"); n != 1 {
			t.Fatalf("RevokeUser = %d", n)
		}
		synctest.Wait()
		if _, ok := b.g.Lookup(other); ok {
			t.Fatal("revoked on A, still on B")
		}
		if _, ok := store.get(other); ok {
			t.Fatal("revoked grant still in the store")
		}
		if !strings.Contains(b.logs.String(), `msg="relay revoke shared" user=bob@example.com ip=192.0.2.8`) {
			t.Errorf("B's log: %s", b.logs.String())
		}
	})
}

func TestSharedOutageNeverOpensRelayAndWritesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		b := newInstance(t, ctx, store)
		synctest.Wait()

		before := ip("192.0.2.1")
		a.g.LoginSucceeded("alice@example.com", before)
		synctest.Wait()

		store.stop()
		synctest.Wait()
		for _, in := range []*instance{a, b} {
			st := in.s.Status()
			if st.Up || st.Outages != 1 || !strings.Contains(st.LastError, "connection reset") {
				t.Fatalf("status during outage: %+v", st)
			}
			if !strings.Contains(in.logs.String(), `level=ERROR msg="relay grants sharing lost" store=redis://fake:6379/0`) {
				t.Fatalf("outage not logged: %s", in.logs.String())
			}
		}
		// Grants known before the outage are honoured on both.
		if _, ok := b.g.Lookup(before); !ok {
			t.Fatal("B forgot a grant known before the outage")
		}
		// A login on B during the outage lets its IP relay through B only.
		during := ip("192.0.2.2")
		b.g.LoginSucceeded("bob@example.com", during)
		synctest.Wait()
		if _, ok := b.g.Lookup(during); !ok {
			t.Fatal("local grant refused during the outage")
		}
		if _, ok := a.g.Lookup(during); ok {
			t.Fatal("A relays for a login it could not have heard of")
		}
		if st := b.s.Status(); st.Unshared != 1 {
			t.Fatalf("B unshared = %d", st.Unshared)
		}
		// A revocation on A during the outage is replayed on return.
		revokedDuring := ip("192.0.2.3")
		a.g.LoginSucceeded("carol@example.com", revokedDuring)
		a.g.Revoke(revokedDuring)

		// Known grants still end at their expiry during the outage.
		time.Sleep(15 * time.Minute)
		if _, ok := b.g.Lookup(before); ok {
			t.Fatal("grant outlived its TTL during the outage")
		}
		if _, ok := b.g.Lookup(during); ok {
			t.Fatal("local grant outlived its TTL")
		}

		// A fresh login on B, then the store returns (empty).
		fresh := ip("192.0.2.4")
		b.g.LoginSucceeded("bob@example.com", fresh)
		store.start()
		time.Sleep(time.Second) // Run's retry
		synctest.Wait()
		for _, in := range []*instance{a, b} {
			if st := in.s.Status(); !st.Up || st.LastError != "" {
				t.Fatalf("not back: %+v", st)
			}
			if !strings.Contains(in.logs.String(), `msg="relay grants sharing restored"`) {
				t.Fatalf("return not logged: %s", in.logs.String())
			}
		}
		if st := b.s.Status(); st.WrittenBack != 1 || st.Unshared != 0 {
			t.Fatalf("B after return: %+v", st)
		}
		if _, ok := store.get(fresh); !ok {
			t.Fatal("B's outage grant not written back")
		}
		if _, ok := a.g.Lookup(fresh); !ok {
			t.Fatal("B's outage grant not shared with A after the return")
		}
		if _, ok := store.get(revokedDuring); ok {
			t.Fatal("revocation made during the outage not replayed")
		}
		// Sharing works again both ways.
		again := ip("192.0.2.5")
		a.g.LoginSucceeded("alice@example.com", again)
		synctest.Wait()
		if _, ok := b.g.Lookup(again); !ok {
			t.Fatal("sharing did not resume")
		}
	})
}

func TestSharedReloadDropsWhatTheStoreLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		a := newInstance(t, ctx, store)
		b := newInstance(t, ctx, store)
		synctest.Wait()
		// A grant B heard of from A, revoked in the store while B was
		// cut off: B drops it when it reloads, A (who made it) writes it
		// back only if it still holds it.
		client := ip("192.0.2.9")
		a.g.LoginSucceeded("alice@example.com", client)
		synctest.Wait()
		a.g.Revoke(client)
		synctest.Wait()
		b.g.applyShared(Grant{IP: client, User: "alice@example.com", Granted: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Minute)})
		b.s.lost(errors.New("test: cut off"))
		time.Sleep(time.Second)
		synctest.Wait()
		if _, ok := b.g.Lookup(client); ok {
			t.Fatal("reload kept a grant the store does not hold")
		}
		if !b.s.Status().Up {
			t.Fatal("B did not reconnect")
		}
	})
}

func TestSharedRefusesBadAndNeverGrantMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		b := newInstance(t, ctx, store, netip.MustParsePrefix("198.51.100.0/24"))
		synctest.Wait()
		now := time.Now()
		store.mu.Lock()
		store.publish(`{"op":"grant","ip":"198.51.100.7","user":"x@example.com","granted":` + itoa(now.UnixMilli()) + `,"expires":` + itoa(now.Add(time.Hour).UnixMilli()) + `}`)
		store.publish(`{"op":"grant","ip":"192.0.2.1","user":"x@example.com","granted":1,"expires":2}`)
		store.publish(`{"op":"grant","ip":"192.0.2.2","user":"","granted":1,"expires":` + itoa(now.Add(time.Hour).UnixMilli()) + `}`)
		store.publish(`{"op":"frobnicate","ip":"192.0.2.3"}`)
		store.publish(`not json`)
		store.mu.Unlock()
		synctest.Wait()
		if n := len(b.g.List()); n != 0 {
			t.Fatalf("bad messages made %d grants: %+v", n, b.g.List())
		}
		if got := strings.Count(b.logs.String(), `msg="relay grants message ignored"`); got != 3 {
			t.Fatalf("%d messages logged as ignored, want 3 (never_grant and expired are dropped quietly): %s", got, b.logs.String())
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestNewSharedRefusesBadURL: a URL that cannot work is refused
// before anything starts.
func TestNewSharedRefusesBadURL(t *testing.T) {
	g, err := NewGrants(GrantsConfig{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:6379/x", "redis://127.0.0.1:6379/0?client_cache=0", "not a url at all\x7f"} {
		if _, err := NewShared(g, u, "", SharedConfig{}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

// TestSharedGrantCappedAtTTL: a record promising more than pop_ttl (a
// peer's clock far ahead, or a hand-made key) is honoured for pop_ttl
// plus the allowed skew only.
func TestSharedGrantCappedAtTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		client := ip("192.0.2.7")
		g.applyShared(Grant{IP: client, User: "x@example.com", Granted: time.Now(), Expires: time.Now().Add(365 * 24 * time.Hour)})
		gr, ok := g.Lookup(client)
		if !ok || !gr.Expires.Equal(time.Now().Add(15*time.Minute+maxSharedSkew)) {
			t.Fatalf("Lookup = %+v %v", gr, ok)
		}
	})
}

// TestSharedForgetsExpiredOwnGrants: the grants kept for write-back do
// not grow with every address that ever logged in.
func TestSharedForgetsExpiredOwnGrants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a := newInstance(t, ctx, newFakeStore())
		synctest.Wait()
		for day := range 10 {
			for i := range 1000 {
				a.g.LoginSucceeded("alice@example.com", netip.AddrFrom4([4]byte{10, byte(day), byte(i >> 8), byte(i)}))
			}
			time.Sleep(24 * time.Hour)
		}
		a.s.mu.Lock()
		n := len(a.s.mine)
		a.s.mu.Unlock()
		if n > 2100 {
			t.Fatalf("%d own grants kept after 10 days of 1,000 logins a day with a 15-minute TTL", n)
		}
	})
}

// TestSharedStoreDownAtStart: a store unreachable when popgate starts is
// an outage like any other: logged once, counted, local logins relay
// here only, and they are written back when it answers.
func TestSharedStoreDownAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := newFakeStore()
		store.stop()
		a := newInstance(t, ctx, store)
		time.Sleep(10 * time.Second) // ten retries
		synctest.Wait()
		st := a.s.Status()
		if st.Up || st.Outages != 1 || st.LastError == "" {
			t.Fatalf("status: %+v", st)
		}
		if n := strings.Count(a.logs.String(), `level=ERROR msg="relay grants sharing lost"`); n != 1 {
			t.Fatalf("outage logged %d times at error level: %s", n, a.logs.String())
		}
		client := ip("192.0.2.7")
		a.g.LoginSucceeded("alice@example.com", client)
		if _, ok := a.g.Lookup(client); !ok {
			t.Fatal("own login refused without the store")
		}
		store.start()
		time.Sleep(time.Second)
		synctest.Wait()
		if st := a.s.Status(); !st.Up || st.WrittenBack != 1 {
			t.Fatalf("after start: %+v", st)
		}
		if _, ok := store.get(client); !ok {
			t.Fatal("login not written back")
		}
		if !strings.Contains(a.logs.String(), `msg="relay grants sharing restored" store=redis://fake:6379/0 grants=1 written_back=1`) {
			t.Fatalf("log: %s", a.logs.String())
		}
	})
}
