package acl

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spf13/afero"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestGrantExpiresAtExactlyTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		fs := afero.NewMemMapFs()
		g, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute, StatePath: "/data/state/grants", Fs: fs, Logger: logs.logger()})
		if err != nil {
			t.Fatal(err)
		}
		var changes atomic.Int32
		g.OnChange(func() { changes.Add(1) })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go g.Start(ctx)

		client := ip("127.0.0.2")
		start := time.Now()
		g.LoginSucceeded("alice@example.com", client)
		if changes.Load() != 1 {
			t.Fatalf("grant fired %d changes", changes.Load())
		}
		if !strings.Contains(logs.String(), `msg="relay grant" user=alice@example.com ip=127.0.0.2 until=2000-01-01T00:15:00.000Z`) {
			t.Errorf("grant log missing: %s", logs.String())
		}
		gr, ok := g.Lookup(client)
		if !ok || gr.User != "alice@example.com" || !gr.Granted.Equal(start) || !gr.Expires.Equal(start.Add(15*time.Minute)) {
			t.Fatalf("Lookup = %+v %v", gr, ok)
		}
		time.Sleep(15*time.Minute - time.Nanosecond)
		if _, ok := g.Lookup(client); !ok {
			t.Fatal("grant gone 1ns before its TTL")
		}
		time.Sleep(time.Nanosecond)
		// Exactly at TTL: void, whether or not the expiry loop ran yet.
		if _, ok := g.Lookup(client); ok {
			t.Fatal("grant still valid at exactly its TTL")
		}
		if len(g.List()) != 0 {
			t.Fatal("List shows an expired grant")
		}
		time.Sleep(time.Millisecond) // let the cache's expiry loop run
		synctest.Wait()
		if !strings.Contains(logs.String(), `msg="relay expire" user=alice@example.com ip=127.0.0.2`) {
			t.Errorf("expire log missing: %s", logs.String())
		}
		if changes.Load() != 2 {
			t.Errorf("expiry fired %d changes in total, want 2", changes.Load())
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := afero.ReadFile(fs, "/data/state/grants")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "127.0.0.2") {
			t.Errorf("expired grant persisted: %s", data)
		}
	})
}

func TestLookupDoesNotExtendAndLoginDoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		a, b := ip("127.0.0.2"), ip("127.0.0.3")
		start := time.Now()
		g.LoginSucceeded("alice", a)
		g.LoginSucceeded("bob", b)
		time.Sleep(10 * time.Minute)
		g.Lookup(a) // a hit must not touch the TTL
		g.LoginSucceeded("carol", b)
		time.Sleep(5 * time.Minute)
		if _, ok := g.Lookup(a); ok {
			t.Error("lookup extended grant a")
		}
		gr, ok := g.Lookup(b)
		if !ok || gr.User != "carol" || !gr.Granted.Equal(start.Add(10*time.Minute)) || !gr.Expires.Equal(start.Add(25*time.Minute)) {
			t.Errorf("extended grant b = %+v %v", gr, ok)
		}
		time.Sleep(10 * time.Minute)
		if _, ok := g.Lookup(b); ok {
			t.Error("extended grant outlived its new TTL")
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNeverGrant(t *testing.T) {
	var logs logBuffer
	clock := &fakeClock{t: t0}
	g, err := NewGrants(GrantsConfig{TTL: time.Minute, Now: clock.Now, Logger: logs.logger(),
		NeverGrant: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::ffff:198.51.100.1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	g.OnChange(func() { changes++ })
	for _, a := range []netip.Addr{ip("192.0.2.7"), ip("::ffff:192.0.2.8"), ip("2001:db8::1"), ip("198.51.100.1"), ip("0.0.0.0"), ip("::"), {}} {
		g.LoginSucceeded("alice", a)
		if _, ok := g.Lookup(a); ok {
			t.Errorf("%v was granted", a)
		}
	}
	if changes != 0 || len(g.List()) != 0 {
		t.Errorf("refused grants changed state: %d changes, %d grants", changes, len(g.List()))
	}
	if !strings.Contains(logs.String(), `msg="relay grant refused" user=alice ip=192.0.2.7 reason="never_grant 192.0.2.0/24"`) {
		t.Errorf("refusal not logged: %s", logs.String())
	}
	g.LoginSucceeded("alice", ip("192.0.3.1"))
	if _, ok := g.Lookup(ip("192.0.3.1")); !ok {
		t.Error("address outside never_grant refused")
	}
	if _, err := NewGrants(GrantsConfig{TTL: 0}); err == nil {
		t.Error("zero TTL accepted")
	}
	if _, err := NewGrants(GrantsConfig{TTL: time.Minute, NeverGrant: []netip.Prefix{{}}}); err == nil {
		t.Error("invalid never_grant prefix accepted")
	}
}

func TestRevoke(t *testing.T) {
	clock := &fakeClock{t: t0}
	g, err := NewGrants(GrantsConfig{TTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	g.OnChange(func() { changes++ })
	g.LoginSucceeded("alice", ip("10.0.0.1"))
	g.LoginSucceeded("Alice", ip("10.0.0.2"))
	g.LoginSucceeded("bob", ip("::ffff:10.0.0.3"))
	changes = 0
	if !g.Revoke(ip("::ffff:10.0.0.3")) || g.Revoke(ip("10.0.0.3")) {
		t.Error("Revoke did not report exactly one removal")
	}
	if n := g.RevokeUser("ALICE"); n != 2 {
		t.Errorf("RevokeUser removed %d, want 2", n)
	}
	if n := g.RevokeUser("nobody"); n != 0 {
		t.Errorf("RevokeUser(nobody) removed %d", n)
	}
	if changes != 2 || len(g.List()) != 0 {
		t.Errorf("%d changes, %d grants left", changes, len(g.List()))
	}
}

func TestListOrderAndUnmapped(t *testing.T) {
	clock := &fakeClock{t: t0}
	g, _ := NewGrants(GrantsConfig{TTL: time.Minute, Now: clock.Now})
	g.LoginSucceeded("c", ip("2001:db8::1"))
	g.LoginSucceeded("b", ip("::ffff:10.0.0.9"))
	g.LoginSucceeded("a", ip("10.0.0.10"))
	var got []string
	for _, gr := range g.List() {
		got = append(got, gr.IP.String()+"="+gr.User)
	}
	if strings.Join(got, " ") != "10.0.0.9=b 10.0.0.10=a 2001:db8::1=c" {
		t.Errorf("List = %v", got)
	}
}

func TestGrantsPersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "grants")
	clock := &fakeClock{t: t0}
	cfg := GrantsConfig{TTL: 15 * time.Minute, StatePath: path, Now: clock.Now,
		NeverGrant: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	g, err := NewGrants(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.LoginSucceeded("early@example.com", ip("10.0.0.1"))
	clock.Advance(10 * time.Minute)
	g.LoginSucceeded("late@example.com", ip("2001:db8::7"))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st, err)
	}
	// Five minutes later the early grant has expired: it must not come back.
	clock.Advance(5 * time.Minute)
	var logs logBuffer
	cfg.Logger = logs.logger()
	g2, err := NewGrants(cfg)
	if err != nil {
		t.Fatal(err)
	}
	list := g2.List()
	if len(list) != 1 || list[0].User != "late@example.com" || list[0].IP != ip("2001:db8::7") ||
		!list[0].Expires.Equal(t0.Add(25*time.Minute)) || !list[0].Granted.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("restored %+v", list)
	}
	if _, ok := g2.Lookup(ip("10.0.0.1")); ok {
		t.Error("expired grant restored")
	}
	if !strings.Contains(logs.String(), "count=1") {
		t.Errorf("restore not logged: %s", logs.String())
	}
	clock.Advance(10 * time.Minute)
	if _, ok := g2.Lookup(ip("2001:db8::7")); ok {
		t.Error("restored grant outlived its original expiry")
	}
}

func TestGrantsRestoreCapsAndFilters(t *testing.T) {
	fs := afero.NewMemMapFs()
	state := stateFile{Version: stateVersion, Grants: []stateGrant{
		{IP: "10.0.0.1", User: "far", Granted: t0, Expires: t0.Add(48 * time.Hour)}, // TTL shortened since
		{IP: "192.0.2.5", User: "nat", Granted: t0, Expires: t0.Add(time.Minute)},   // now never_grant
		{IP: "not-an-ip", User: "bad", Granted: t0, Expires: t0.Add(time.Minute)},
		{IP: "10.0.0.2", User: "", Granted: t0, Expires: t0.Add(time.Minute)},
		{IP: "10.0.0.3", User: "exact", Granted: t0, Expires: t0}, // expires now: void
	}}
	data, _ := json.Marshal(state)
	if err := afero.WriteFile(fs, "/grants", data, 0o600); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	g, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute, StatePath: "/grants", Fs: fs, Now: clock.Now,
		NeverGrant: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	list := g.List()
	if len(list) != 1 || list[0].User != "far" || !list[0].Expires.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("restored %+v", list)
	}
}

func TestGrantsCorruptState(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "\x00\x01not json",
		"truncated":     `{"version":1,"grants":[{"ip":"10.0.0.1"`,
		"wrong version": `{"version":99,"grants":[]}`,
		"unknown field": `{"version":1,"grants":[],"extra":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "grants")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			clock := &fakeClock{t: t0}
			g, err := NewGrants(GrantsConfig{TTL: time.Minute, StatePath: path, Now: clock.Now, Logger: logs.logger()})
			if err != nil {
				t.Fatalf("corrupt state is fatal: %v", err)
			}
			if len(g.List()) != 0 {
				t.Error("grants from a corrupt file")
			}
			if !strings.Contains(logs.String(), "relay grants state corrupt") {
				t.Errorf("corruption not logged: %s", logs.String())
			}
			// The next save replaces the corrupt file.
			g.LoginSucceeded("alice", ip("10.0.0.1"))
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			var st stateFile
			data, _ := os.ReadFile(path)
			if err := json.Unmarshal(data, &st); err != nil || len(st.Grants) != 1 {
				t.Errorf("state after save: %s (%v)", data, err)
			}
		})
	}
	// A state path that is a directory is unreadable: logged, not fatal.
	var logs logBuffer
	if _, err := NewGrants(GrantsConfig{TTL: time.Minute, StatePath: t.TempDir(), Logger: logs.logger()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "unreadable") {
		t.Errorf("unreadable state not logged: %s", logs.String())
	}
}

func TestGrantsPersistCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := afero.NewMemMapFs()
		g, err := NewGrants(GrantsConfig{TTL: time.Hour, StatePath: "/s/grants", Fs: fs})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go g.Start(ctx)
		read := func() string {
			data, _ := afero.ReadFile(fs, "/s/grants")
			return string(data)
		}
		g.LoginSucceeded("a", ip("10.0.0.1"))
		synctest.Wait()
		if !strings.Contains(read(), "10.0.0.1") {
			t.Fatalf("first change not saved at once: %q", read())
		}
		g.LoginSucceeded("b", ip("10.0.0.2"))
		g.LoginSucceeded("c", ip("10.0.0.3"))
		synctest.Wait()
		if strings.Contains(read(), "10.0.0.2") {
			t.Fatal("second save within a second of the first")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if s := read(); !strings.Contains(s, "10.0.0.2") || !strings.Contains(s, "10.0.0.3") {
			t.Fatalf("coalesced save missing grants: %q", s)
		}
		g.Revoke(ip("10.0.0.1"))
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(read(), "10.0.0.1") {
			t.Error("Close did not save the last change")
		}
		g.Start(ctx) // after Close: returns at once
	})
}

func TestGrantsStartWithDoneContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := NewGrants(GrantsConfig{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		g.Start(ctx) // must return although the expiry loop may not have begun
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
