package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	argon, err := HashPassword("argon secret")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestService(t, "# users\nAlice@Example.com:{PLAIN}plain secret\nbob@example.com:"+argon+"\ncarol@example.com:"+vecSHA512+"\n", noLimits)
	cases := []struct {
		user, pw string
		want     string
		err      error
	}{
		{"alice@example.com", "plain secret", "alice@example.com", nil},
		{"ALICE@EXAMPLE.COM", "plain secret", "alice@example.com", nil},
		{"alice@example.com", "Plain secret", "", ErrInvalidCredentials},
		{"bob@example.com", "argon secret", "bob@example.com", nil},
		{"bob@example.com", "argon secreT", "", ErrInvalidCredentials},
		{"carol@example.com", "correct horse", "carol@example.com", nil},
		{"carol@example.com", "correct horse ", "", ErrInvalidCredentials},
		{"nobody@example.com", "plain secret", "", ErrInvalidCredentials},
		{"not a user name", "some password", "", ErrInvalidCredentials},
		{"", "", "", ErrInvalidCredentials},
	}
	for _, c := range cases {
		got, err := s.auth("192.0.2.1", c.user, c.pw)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("Authenticate(%q, %q) = %q, %v; want %q, %v", c.user, c.pw, got, err, c.want, c.err)
		}
	}
	logs := s.log.String()
	for _, c := range cases {
		if len(c.pw) > 4 && strings.Contains(logs, c.pw) {
			t.Errorf("log contains password %q", c.pw)
		}
	}
	if n := len(s.log.lines("auth ok")); n != 4 {
		t.Errorf("%d 'auth ok' lines, want 4", n)
	}
	failed := s.log.lines("auth failed")
	if len(failed) != 6 {
		t.Errorf("%d 'auth failed' lines, want 6", len(failed))
	}
	if !slices.ContainsFunc(failed, func(l string) bool {
		return strings.Contains(l, "user=nobody@example.com") && strings.Contains(l, "ip=192.0.2.1")
	}) {
		t.Errorf("'auth failed' lacks user and ip: %q", failed)
	}
}

func TestAuthenticateThrottled(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}right\n", testLimits)
	for _, pw := range []string{"w1", "w2"} {
		if _, err := s.auth("192.0.2.1", "alice@example.com", pw); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	// Now throttled for 1 s: even the right password is not checked.
	_, err := s.auth("192.0.2.1", "alice@example.com", "right")
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != time.Second || !errors.Is(err, ErrThrottled) {
		t.Fatalf("got %v, want ThrottledError{1s}", err)
	}
	if errors.Is(err, ErrInvalidCredentials) {
		t.Error("throttled must not look like invalid credentials")
	}
	if l := s.log.lines("auth throttled"); len(l) != 1 || !strings.Contains(l[0], "user=alice@example.com") || !strings.Contains(l[0], "ip=192.0.2.1") {
		t.Errorf("throttled log %q", l)
	}
	// Another IP with the right password is not held back.
	if _, err := s.auth("198.51.100.2", "alice@example.com", "right"); err != nil {
		t.Fatalf("clean IP: %v", err)
	}
	s.clk.advance(time.Second)
	if u, err := s.auth("192.0.2.1", "alice@example.com", "right"); err != nil || u != "alice@example.com" {
		t.Fatalf("after the delay: %q, %v", u, err)
	}
}

func TestAuthenticateUserLockSparesOwner(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}right\n", testLimits)
	// An attacker spread over addresses guesses alice's password.
	for i := range testLimits.MaxFailures {
		ip := "203.0.113." + string(rune('1'+i))
		if _, err := s.auth(ip, "alice@example.com", "guess"+ip); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("guess from %s: %v", ip, err)
		}
	}
	if _, err := s.auth("203.0.113.1", "alice@example.com", "right"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("failing IP not refused for alice: %v", err)
	}
	if _, err := s.auth("192.0.2.200", "alice@example.com", "right"); err != nil {
		t.Fatalf("alice from her own clean IP: %v", err)
	}
}

func TestAuthenticateContextCancelled(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}right\n", noLimits)
	for range cap(s.hashing) {
		s.hashing <- struct{}{} // every hashing slot busy
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Authenticate(ctx, mustAddr("192.0.2.1"), "alice@example.com", "right"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestUserExistsAndPlainPassword(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}pop secret\nbob@example.com:"+vecSHA512+"\n", noLimits)
	if !s.UserExists("Alice@Example.com") || !s.UserExists("bob@example.com") || s.UserExists("carol@example.com") {
		t.Error("UserExists wrong")
	}
	if pw, ok := s.PlainPassword("ALICE@example.com"); !ok || pw != "pop secret" {
		t.Errorf("PlainPassword(alice) = %q, %v", pw, ok)
	}
	if pw, ok := s.PlainPassword("bob@example.com"); ok || pw != "" {
		t.Errorf("PlainPassword(bob) = %q, %v; want nothing for a hashed password", pw, ok)
	}
	if _, ok := s.PlainPassword("carol@example.com"); ok {
		t.Error("PlainPassword of an unknown user")
	}
}

// TestUnknownUserCostsAHash checks that a missing user is verified against
// a dummy of the file's usual scheme and cost: the dummy is chosen by the
// file's most common scheme, made once per load, and each unknown-user
// login runs one verification of it.
func TestUnknownUserCostsAHash(t *testing.T) {
	t.Parallel()
	tab, err := parseUsers([]byte("p@x.org:{PLAIN}x\n" +
		"a@x.org:{SHA512-CRYPT}$6$rounds=20000$abcdefgh$" + strings.Repeat("a", 86) + "\n" +
		"b@x.org:" + vecSHA512 + "\n" +
		"c@x.org:{CRYPT}$6$rounds=20000$abc$" + strings.Repeat("b", 86) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := tab.dummy()
	if err != nil {
		t.Fatal(err)
	}
	// SHA512-CRYPT and CRYPT are different names: SHA512-CRYPT has 2 users,
	// and its first one (line 2) sets the rounds.
	sd, ok := d.(shaCryptHash)
	if !ok || sd.name != SchemeSHA512Crypt || sd.p.rounds != 20000 || sd.p.v != &sha512Crypt {
		t.Fatalf("dummy = %#v, want SHA512-CRYPT with 20000 rounds", d)
	}
	if d2, _ := tab.dummy(); d2.(shaCryptHash).p.salt != sd.p.salt {
		t.Error("dummy recomputed: it should be made once per load")
	}

	// The unknown user's path must verify against the dummy: counted, not
	// timed (a timing comparison flaked on a loaded machine).
	s := newTestService(t, "alice@example.com:"+vecSHA512+"\n", noLimits)
	live := s.users.current()
	model, err := live.dummy()
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingVerifier{verifier: model}
	live.dummyV = counted
	for _, user := range []string{"nobody@example.com", "alice@example.com", "NOBODY@example.com"} {
		if _, err := s.auth("192.0.2.1", user, "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s: %v", user, err)
		}
	}
	if counted.calls != 2 {
		t.Errorf("dummy verified %d times for 2 unknown-user logins, want 2", counted.calls)
	}
}

// countingVerifier counts the verifications it is asked for.
type countingVerifier struct {
	verifier
	calls int
}

func (c *countingVerifier) verify(password string) bool {
	c.calls++
	return c.verifier.verify(password)
}

func TestEmptyFileDummyIsArgon2(t *testing.T) {
	t.Parallel()
	tab, err := parseUsers([]byte("# nobody yet\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := tab.dummy()
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := d.(*argon2Hash); !ok || a.memory != DefaultArgon2MemoryKiB || a.time != DefaultArgon2Time {
		t.Fatalf("dummy for an empty file = %#v", d)
	}
}

func TestAuthenticateOverlongInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", MaxPasswordLen)
	s := newTestService(t, "alice@example.com:{PLAIN}"+long+"\nbob@example.com:"+vecSHA512+"\n", noLimits)
	if _, err := s.auth("192.0.2.1", "alice@example.com", long); err != nil {
		t.Fatalf("password of exactly MaxPasswordLen: %v", err)
	}
	start := time.Now()
	if _, err := s.auth("192.0.2.1", "bob@example.com", strings.Repeat("p", 1<<20)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("1 MiB password: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("1 MiB password against SHA-crypt took %v: not bounded", d)
	}
	hugeUser := strings.Repeat("u", 1<<20) + "@example.com"
	if _, err := s.auth("192.0.2.1", hugeUser, "x"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("1 MiB user name: %v", err)
	}
	if strings.Contains(s.log.String(), strings.Repeat("u", MaxUsernameLen+1)) {
		t.Error("the whole over-long user name reached the log")
	}
}

// TestAuthenticateConcurrentWithReload runs logins from several goroutines
// while the file is rewritten, for the race detector.
func TestAuthenticateConcurrentWithReload(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}a\n", DefaultLimiterConfig())
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g + 1)})
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				_, err := s.Authenticate(context.Background(), ip, "alice@example.com", "a")
				if err != nil && !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrThrottled) {
					t.Error(err)
					return
				}
				s.UserExists("bob@example.com")
				s.PlainPassword("alice@example.com")
			}
		})
	}
	for i := range 20 {
		s.clk.advance(time.Second)
		writeUsers(t, s.fs, usersPath, fmt.Sprintf("alice@example.com:{PLAIN}a\nbob%d@example.com:{PLAIN}b\n", i), s.clk)
	}
	close(done)
	wg.Wait()
}

// TestAuthenticateRechecksAfterQueueing: an attempt that waited for a
// hashing slot while another attempt from its IP failed is refused then.
func TestAuthenticateRechecksAfterQueueing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, "alice@example.com:{PLAIN}right\n", testLimits)
		ip := mustAddr("192.0.2.1")
		s.lim.Fail(ip, "alice@example.com", "w1") // first failure: no delay yet
		for range cap(s.hashing) {
			s.hashing <- struct{}{} // every slot busy
		}
		res := make(chan error, 1)
		go func() {
			_, err := s.Authenticate(context.Background(), ip, "alice@example.com", "right")
			res <- err
		}()
		synctest.Wait() // it passed the first check and waits for a slot
		// Meanwhile a parallel attempt from the same IP fails: 1 s delay.
		s.lim.Fail(ip, "alice@example.com", "w2")
		<-s.hashing
		if err := <-res; !errors.Is(err, ErrThrottled) {
			t.Fatalf("queued attempt: %v, want throttled", err)
		}
	})
}
