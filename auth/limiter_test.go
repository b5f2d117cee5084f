package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var testLimits = LimiterConfig{
	BaseDelay:   time.Second,
	MaxDelay:    8 * time.Second,
	MaxFailures: 6,
	Window:      15 * time.Minute,
	Lockout:     10 * time.Minute,
	MaxEntries:  1000,
}

// wantCheck asserts Check's answer.
func wantCheck(t *testing.T, l *Limiter, ip netip.Addr, user string, ok bool, retry time.Duration) {
	t.Helper()
	gotRetry, gotOK := l.Check(ip, user)
	if gotOK != ok || gotRetry != retry {
		t.Fatalf("Check(%s, %s) = %v, %v; want %v, %v", ip, user, gotRetry, gotOK, retry, ok)
	}
}

func TestLimiterExponentialDelayThenLockoutAndRecovery(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLimiter(testLimits, clk.now)
	ip := mustAddr("192.0.2.7")

	l.Fail(ip, "alice@x.org", "pw1")
	wantCheck(t, l, ip, "alice@x.org", true, 0) // the first failure costs nothing
	// Then 1 s, 2 s, 4 s, 8 s, each counted from the failure.
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		l.Fail(ip, "alice@x.org", fmt.Sprintf("wrong%d", i))
		wantCheck(t, l, ip, "alice@x.org", false, d)
		wantCheck(t, l, ip, "bob@x.org", false, d) // the IP is slowed for every user
		clk.advance(d - time.Millisecond)
		wantCheck(t, l, ip, "alice@x.org", false, time.Millisecond)
		clk.advance(time.Millisecond)
		wantCheck(t, l, ip, "alice@x.org", true, 0)
	}
	// The 6th failure within the window refuses for Lockout, exactly.
	l.Fail(ip, "alice@x.org", "wrong-last")
	wantCheck(t, l, ip, "alice@x.org", false, 10*time.Minute)
	clk.advance(10*time.Minute - time.Nanosecond)
	wantCheck(t, l, ip, "carol@x.org", false, time.Nanosecond)
	clk.advance(time.Nanosecond)
	wantCheck(t, l, ip, "alice@x.org", true, 0)
	wantCheck(t, l, ip, "carol@x.org", true, 0)
	// After the lockout the count starts again: one more failure is free.
	l.Fail(ip, "alice@x.org", "after")
	wantCheck(t, l, ip, "alice@x.org", true, 0)
}

func TestLimiterDelayCapped(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	cfg := testLimits
	cfg.MaxFailures = 100
	l := NewLimiter(cfg, clk.now)
	ip := mustAddr("192.0.2.8")
	for i := range 40 {
		l.Fail(ip, "alice@x.org", fmt.Sprint(i))
	}
	wantCheck(t, l, ip, "alice@x.org", false, cfg.MaxDelay)
}

func TestLimiterSameWrongPasswordCountsOnce(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLimiter(testLimits, clk.now)
	ip := mustAddr("192.0.2.9")
	for range 20 {
		l.Fail(ip, "alice@x.org", "stale saved password")
	}
	wantCheck(t, l, ip, "alice@x.org", true, 0) // still one failure: no delay
	// The same password for another user is a new guess.
	l.Fail(ip, "bob@x.org", "stale saved password")
	wantCheck(t, l, ip, "alice@x.org", false, time.Second)
	// A different password for alice counts.
	clk.advance(time.Second)
	l.Fail(ip, "alice@x.org", "another")
	wantCheck(t, l, ip, "alice@x.org", false, 2*time.Second)
	// The same password from another IP is that IP's own first failure.
	other := mustAddr("198.51.100.1")
	l.Fail(other, "alice@x.org", "stale saved password")
	wantCheck(t, l, other, "alice@x.org", true, 0)
	// Nothing of the password is kept but a 32-byte MAC.
	p := l.pairs[pairKey{"alice@x.org", ipKey(ip)}]
	if p == nil || p.nSeen != 2 {
		t.Fatalf("pair record %+v", p)
	}
}

func TestLimiterUserLockSparesOtherIPs(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLimiter(testLimits, clk.now)
	user := "alice@x.org"
	early := mustAddr("203.0.113.5")   // fails once for alice
	clean := mustAddr("198.51.100.20") // never fails
	l.Fail(early, user, "guess-early")
	// A distributed guess: 5 more IPs, one failure each, reach MaxFailures for alice.
	for i := range 5 {
		l.Fail(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), user, fmt.Sprint("g", i))
	}
	// The owner from a clean IP is not touched.
	wantCheck(t, l, clean, user, true, 0)
	// IPs that failed for alice are refused for alice until the user lock ends …
	wantCheck(t, l, early, user, false, 10*time.Minute)
	wantCheck(t, l, mustAddr("192.0.2.12"), user, false, 10*time.Minute)
	// … but not for other users (their own IP record has one failure only).
	wantCheck(t, l, early, "bob@x.org", true, 0)
	clk.advance(10 * time.Minute)
	wantCheck(t, l, early, user, true, 0)
	wantCheck(t, l, clean, user, true, 0)
}

func TestLimiterSucceedClearsPairOnly(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLimiter(testLimits, clk.now)
	ip := mustAddr("192.0.2.30")
	l.Fail(ip, "alice@x.org", "a")
	l.Fail(ip, "alice@x.org", "b")
	clk.advance(time.Second)
	l.Succeed(ip, "alice@x.org")
	if _, _, pairs := l.Len(); pairs != 0 {
		t.Errorf("pair record kept after success: %d", pairs)
	}
	// The IP's own count stands: a third failure waits 2 s.
	l.Fail(ip, "bob@x.org", "c")
	wantCheck(t, l, ip, "alice@x.org", false, 2*time.Second)
}

func TestLimiterIPv6Per64(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLimiter(testLimits, clk.now)
	l.Fail(mustAddr("2001:db8:1:2::1"), "alice@x.org", "a")
	l.Fail(mustAddr("2001:db8:1:2:ffff::9"), "alice@x.org", "b")
	wantCheck(t, l, mustAddr("2001:db8:1:2::77"), "carol@x.org", false, time.Second)
	wantCheck(t, l, mustAddr("2001:db8:1:3::1"), "carol@x.org", true, 0)
	// IPv4-mapped IPv6 is the IPv4 address.
	l.Fail(mustAddr("::ffff:192.0.2.1"), "alice@x.org", "a")
	l.Fail(mustAddr("192.0.2.1"), "alice@x.org", "b")
	wantCheck(t, l, mustAddr("192.0.2.1"), "carol@x.org", false, time.Second)
}

func TestLimiterBoundedMemory(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	cfg := testLimits
	cfg.MaxEntries = 50
	l := NewLimiter(cfg, clk.now)
	for i := range 1000 {
		l.Fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), fmt.Sprintf("u%d@x.org", i), "pw")
	}
	ips, users, pairs := l.Len()
	if ips > 50 || users > 50 || pairs > 50 {
		t.Fatalf("tables grew past the cap: %d %d %d", ips, users, pairs)
	}
	// The most recent IP is still tracked (the oldest were dropped).
	last := netip.AddrFrom4([4]byte{10, 0, 3, 231})
	l.Fail(last, "u999@x.org", "pw2")
	wantCheck(t, l, last, "u999@x.org", false, time.Second)

	// Records expire: after the window, a new entry sweeps them out.
	clk.advance(cfg.Window)
	l.Fail(mustAddr("192.0.2.99"), "new@x.org", "pw")
	clk.advance(time.Second)
	for i := range 49 {
		l.Fail(netip.AddrFrom4([4]byte{172, 16, 0, byte(i)}), "z@x.org", fmt.Sprint(i))
	}
	wantCheck(t, l, last, "u999@x.org", true, 0)
	if ips, _, _ := l.Len(); ips > 50 {
		t.Fatalf("%d IP records", ips)
	}
}
