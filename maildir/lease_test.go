package maildir

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// testClock is a settable clock shared by the stores of one test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// twoInstances returns two stores over one filesystem, as two popgate
// instances sharing mail_dir see it, with a lease of one minute that is
// only renewed when the test says so.
func twoInstances(t *testing.T) (a, b *Store, fs afero.Fs, clk *testClock) {
	t.Helper()
	fs = afero.NewMemMapFs()
	clk = &testClock{t: testTime}
	opts := func(host string) Options {
		return Options{Hostname: host, Now: clk.now, LeaseTTL: time.Minute, LeaseRenew: time.Hour}
	}
	return NewStore(fs, "/shared/mail", opts("a")), NewStore(fs, "/shared/mail", opts("b")), fs, clk
}

const sharedLease = "/shared/mail/example.com/alice/" + leaseFile

func TestLeaseExcludesOtherInstanceUntilExpiry(t *testing.T) {
	a, b, fs, clk := twoInstances(t)
	unlockA, err := mustOpen(t, a, "example.com", "alice").Lock()
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := parseLease([]byte(readAll(t, fs, sharedLease))); err != nil || !strings.HasPrefix(rec.owner, "a:") ||
		!rec.expires.Equal(testTime.Add(time.Minute)) {
		t.Fatalf("lease record %+v, %v; want owner a:…, expiry one minute on", rec, err)
	}
	mbB := mustOpen(t, b, "example.com", "alice")
	clk.advance(time.Minute - time.Nanosecond)
	if _, err := mbB.Lock(); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by a:") {
		t.Fatalf("B before expiry: %v, want ErrLocked naming a", err)
	}
	// A crashes (no unlock, no renewal): at the expiry instant B takes over.
	clk.advance(time.Nanosecond)
	unlockB, err := mbB.Lock()
	if err != nil {
		t.Fatalf("B at expiry: %v", err)
	}
	if rec, _ := parseLease([]byte(readAll(t, fs, sharedLease))); !strings.HasPrefix(rec.owner, "b:") {
		t.Fatalf("lease owner after takeover %q, want b:…", rec.owner)
	}
	// A's late unlock must not remove B's claim.
	if err := unlockA(); err != nil {
		t.Fatal(err)
	}
	if _, err := mustOpen(t, a, "example.com", "alice").Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("A after its stale unlock: %v, want ErrLocked (B holds it)", err)
	}
	if err := unlockB(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := afero.Exists(fs, sharedLease); ok {
		t.Error("lease file left after B's unlock")
	}
}

func TestLeaseRenewalKeepsTheClaim(t *testing.T) {
	a, b, _, clk := twoInstances(t)
	mbA := mustOpen(t, a, "example.com", "alice")
	unlock, err := mbA.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	mbB := mustOpen(t, b, "example.com", "alice")
	for range 5 { // five renewals 40 s apart: 200 s, far past one lease
		clk.advance(40 * time.Second)
		if err := mbA.lease.renew(); err != nil {
			t.Fatal(err)
		}
		if _, err := mbB.Lock(); !errors.Is(err, ErrLocked) {
			t.Fatalf("B while A renews: %v, want ErrLocked", err)
		}
	}
	clk.advance(time.Minute)
	if _, err := mbB.Lock(); err != nil {
		t.Fatalf("B once A stopped renewing: %v", err)
	}
}

// TestLeaseLostStopsCommit: a session whose lease expired and was taken
// over must not delete or move anything at QUIT, and cannot renew.
func TestLeaseLostStopsCommit(t *testing.T) {
	a, b, fs, clk := twoInstances(t)
	writeFile(t, fs, "/shared/mail/example.com/alice/new/1732000000.M1P1Q1.x", "Subject: hi\n\nbody\n")
	mbA := mustOpen(t, a, "example.com", "alice")
	if _, err := mbA.Lock(); err != nil {
		t.Fatal(err)
	}
	msgs, err := mbA.List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("List = %v, %v", msgs, err)
	}
	clk.advance(2 * time.Minute)
	if _, err := mustOpen(t, b, "example.com", "alice").Lock(); err != nil {
		t.Fatal(err)
	}
	if err := mbA.Delete(msgs); !errors.Is(err, ErrLocked) {
		t.Fatalf("Delete after the lease was lost: %v, want ErrLocked", err)
	}
	if err := mbA.MarkSeen(msgs); !errors.Is(err, ErrLocked) {
		t.Fatalf("MarkSeen after the lease was lost: %v, want ErrLocked", err)
	}
	if err := mbA.lease.renew(); !errors.Is(err, errLeaseLost) {
		t.Fatalf("renew after the lease was lost: %v, want errLeaseLost", err)
	}
	if got := dirNames(t, fs, "/shared/mail/example.com/alice/new"); len(got) != 1 {
		t.Fatalf("new/ = %q, want the message untouched", got)
	}
}

// TestLeaseGarbageExpiresByMtime: a lease file popgate did not write
// holds the mailbox for one lease after its last change, no longer.
func TestLeaseGarbageExpiresByMtime(t *testing.T) {
	a, _, fs, clk := twoInstances(t)
	writeFile(t, fs, sharedLease, "not a lease")
	if err := fs.Chtimes(sharedLease, testTime, testTime); err != nil {
		t.Fatal(err)
	}
	mb := mustOpen(t, a, "example.com", "alice")
	if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock over a fresh garbage lease: %v, want ErrLocked", err)
	}
	clk.advance(time.Minute)
	unlock, err := mb.Lock()
	if err != nil {
		t.Fatalf("Lock over an old garbage lease: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseRemoveIfPutsBackAFreshClaim: a taker whose rename moved a claim
// made after it read the expired one links that claim back.
func TestLeaseRemoveIfPutsBackAFreshClaim(t *testing.T) {
	a, b, fs, _ := twoInstances(t)
	if _, err := mustOpen(t, b, "example.com", "alice").Lock(); err != nil {
		t.Fatal(err)
	}
	fresh := readAll(t, fs, sharedLease)
	l := &lease{s: a, dir: "/shared/mail/example.com/alice", owner: "a:1:00"}
	if err := l.removeIf([]byte("popgate-lease-v1 old:1:00 1\n")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, sharedLease); got != fresh {
		t.Fatalf("lease after a mistaken removeIf = %q, want %q back", got, fresh)
	}
	if got := dirNames(t, fs, "/shared/mail/example.com/alice"); len(got) != 4 { // cur new tmp lease
		t.Errorf("maildir holds %q, want no file left aside", got)
	}
}

func TestParseLease(t *testing.T) {
	good := leaseRecord{owner: "mx1:42:0011223344556677", expires: time.Unix(1732000000, 5)}
	if got, err := parseLease(good.marshal()); err != nil || got.owner != good.owner || !got.expires.Equal(good.expires) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{
		"",
		"popgate-lease-v1 mx1:42:00 1732000000", // no newline
		"popgate-lease-v1 mx1:42:00 1732000000\n\n",         // two lines
		"popgate-lease-v2 mx1:42:00 1732000000\n",           // unknown version
		"popgate-lease-v1 mx1 42 1732000000\n",              // space in owner
		"popgate-lease-v1 mx/1 1732000000\n",                // slash in owner
		"popgate-lease-v1 mx1:42:00 -5\n",                   // negative expiry
		"popgate-lease-v1 mx1:42:00 0x10\n",                 // not decimal
		"popgate-lease-v1 mx1:42:00 99999999999999999999\n", // overflow
		"popgate-lease-v1 \x00:42 1\n",                      // control byte
		"popgate-lease-v1 " + strings.Repeat("a", 600) + " 1\n",
	} {
		if _, err := parseLease([]byte(bad)); !errors.Is(err, errBadLease) {
			t.Errorf("parseLease(%q) = %v, want errBadLease", bad, err)
		}
	}
}

func FuzzParseLease(f *testing.F) {
	f.Add([]byte("popgate-lease-v1 mx1:42:0011223344556677 1732000000000000000\n"))
	f.Add([]byte("popgate-lease-v1 a 1\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseLease(b)
		if err != nil {
			return
		}
		// What parses survives a round trip unchanged.
		again, err := parseLease(rec.marshal())
		if err != nil || again.owner != rec.owner || !again.expires.Equal(rec.expires) {
			t.Fatalf("round trip of %q: %+v, %v", b, again, err)
		}
		if !validOwner(rec.owner) || rec.expires.UnixNano() <= 0 {
			t.Fatalf("parsed an invalid record %+v from %q", rec, b)
		}
	})
}

// TestLeaseLeftByEarlierRun: an instance restarted after kill -9 (same
// Instance, new Store) takes its own old lease over at once; another
// instance still waits for expiry.
func TestLeaseLeftByEarlierRun(t *testing.T) {
	fs := afero.NewMemMapFs()
	clk := &testClock{t: testTime}
	store := func(instance string) *Store {
		return NewStore(fs, "/shared/mail", Options{Hostname: "h", Instance: instance, Now: clk.now, LeaseRenew: time.Hour})
	}
	if _, err := mustOpen(t, store("inst-a"), "example.com", "alice").Lock(); err != nil {
		t.Fatal(err)
	}
	if _, err := mustOpen(t, store("inst-b"), "example.com", "alice").Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("another instance: %v, want ErrLocked", err)
	}
	if _, err := mustOpen(t, store(""), "example.com", "alice").Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("a store without an instance id: %v, want ErrLocked", err)
	}
	restarted := store("inst-a")
	unlock, err := mustOpen(t, restarted, "example.com", "alice").Lock()
	if err != nil {
		t.Fatalf("the same instance after a restart: %v, want its old lease taken over", err)
	}
	if rec, _ := parseLease([]byte(readAll(t, fs, sharedLease))); !strings.Contains(rec.owner, ":"+restarted.incarnation+":") {
		t.Errorf("lease owner %q, want the restarted store's incarnation %s", rec.owner, restarted.incarnation)
	}
	// Within one run the in-process lock still answers.
	if _, err := mustOpen(t, restarted, "example.com", "alice").Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock in the same run: %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLockOnFullDisk: with no room for the lease file (ENOSPC or EDQUOT)
// a session still gets its mailbox, locked in this process, so users can
// read and delete mail on a full disk; a second session in the same
// process is still refused, and with room again the lease is written.
func TestLockOnFullDisk(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		var budget int64
		mem := afero.NewMemMapFs()
		s := NewStore(fullFs{Fs: mem, budget: &budget, errno: errno}, "/data/mail", Options{Hostname: "mx", Now: fixedClock})
		mb, err := s.Open("example.com", "alice")
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := mb.Lock()
		if err != nil {
			t.Fatalf("%v: Lock on a full disk: %v", errno, err)
		}
		if _, err := mb.Lock(); !errors.Is(err, ErrLocked) {
			t.Errorf("%v: second Lock in the process: %v, want ErrLocked", errno, err)
		}
		if ok, _ := afero.Exists(mem, "/data/mail/example.com/alice/"+leaseFile); ok {
			t.Errorf("%v: a lease file exists although nothing could be written", errno)
		}
		if err := unlock(); err != nil {
			t.Fatalf("%v: unlock: %v", errno, err)
		}
		budget = 1 << 20
		unlock, err = mb.Lock()
		if err != nil {
			t.Fatalf("%v: Lock with room again: %v", errno, err)
		}
		if ok, _ := afero.Exists(mem, "/data/mail/example.com/alice/"+leaseFile); !ok {
			t.Errorf("%v: no lease file with room again", errno)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
	}
}
