package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"
)

// LimiterConfig sets the failed-login limits. DefaultLimiterConfig gives
// the values popgate uses.
type LimiterConfig struct {
	// BaseDelay is the wait after an IP's second failure; it doubles with
	// each further failure (the first failure costs nothing: typos happen).
	BaseDelay time.Duration
	// MaxDelay caps the doubling.
	MaxDelay time.Duration
	// MaxFailures within Window refuses the IP (or, per user, the IPs that
	// failed for that user) for Lockout.
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
	// MaxEntries caps each table (per IP, per user, per user and IP) so a
	// spray of addresses or names cannot grow memory without bound.
	MaxEntries int
}

// DefaultLimiterConfig: 0, 1 s, 2 s, 4 s … up to 1 min between attempts
// from one IP; 10 failures in 15 min refuse for 15 min.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		BaseDelay:   time.Second,
		MaxDelay:    time.Minute,
		MaxFailures: 10,
		Window:      15 * time.Minute,
		Lockout:     15 * time.Minute,
		MaxEntries:  100_000,
	}
}

// rememberedPasswords is how many recent wrong passwords are remembered
// (as keyed hashes) per user and IP, so retrying one does not count again.
const rememberedPasswords = 8

// ipv6Prefix groups IPv6 clients: one subscriber usually holds a whole /64,
// so counting single addresses would let an attacker rotate freely.
const ipv6Prefix = 64

// Limiter counts failed logins and decides when an attempt is refused
// without checking the password. The rule:
//
//   - Per IP (IPv6: per /64). After the n-th failure within Window the IP
//     waits BaseDelay·2^(n-2) (0 after the first, capped at MaxDelay),
//     counted from that failure. At MaxFailures it is refused for Lockout.
//     This throttles the IP for every user name.
//   - Per user. When a user collects MaxFailures failures within Window
//     from any IPs together, the user is locked for Lockout — but only
//     against IPs that themselves failed for that user within Window. An
//     IP with no failure of its own for that user is never slowed or
//     refused because of other IPs: an attacker cannot lock the owner out,
//     and a distributed guesser gets one guess per IP per lockout.
//   - A wrong password that the same IP already tried for the same user
//     (among the last 8) is not counted again: a mail client retrying a
//     stale saved password is one mistake, not ten. Only an HMAC with a
//     random per-process key of the password is kept, never the password.
//   - Success clears the record for that user and IP; the IP's and the
//     user's own counts stand until they expire, so a valid account cannot
//     be used to wash an IP's record.
//
// Records expire when their window and any block have passed. Each table
// holds at most MaxEntries records; when full, expired records are swept
// and then the record idle longest is dropped.
type Limiter struct {
	cfg LimiterConfig
	now func() time.Time
	key []byte // HMAC key for remembered passwords, random per process

	mu    sync.Mutex
	ips   map[netip.Prefix]*failRecord
	users map[string]*failRecord
	pairs map[pairKey]*pairRecord
}

type pairKey struct {
	user string
	ip   netip.Prefix
}

// failRecord counts failures in a window that starts with the first one.
type failRecord struct {
	count        int
	first, last  time.Time
	blockedUntil time.Time
}

// pairRecord is one IP's failures for one user.
type pairRecord struct {
	failRecord
	seen        [rememberedPasswords][sha256.Size]byte
	nSeen, next int
}

// NewLimiter returns a Limiter using cfg and the clock now.
func NewLimiter(cfg LimiterConfig, now func() time.Time) *Limiter {
	key := make([]byte, 32)
	rand.Read(key)
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultLimiterConfig().MaxEntries
	}
	return &Limiter{
		cfg: cfg, now: now, key: key,
		ips:   make(map[netip.Prefix]*failRecord),
		users: make(map[string]*failRecord),
		pairs: make(map[pairKey]*pairRecord),
	}
}

func ipKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := ip.BitLen()
	if ip.Is6() {
		bits = ipv6Prefix
	}
	p, _ := ip.Prefix(bits) // cannot fail: bits is within the address length
	return p
}

// expired reports whether r no longer matters at now.
func (r *failRecord) expired(now time.Time, window time.Duration) bool {
	return !now.Before(r.first.Add(window)) && !now.Before(r.blockedUntil)
}

// Check reports whether an attempt by ip for user may go ahead. If not,
// retryAfter is how long until it may. user should be canonical.
func (l *Limiter) Check(ip netip.Addr, user string) (retryAfter time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	if r := l.ips[ipKey(ip)]; r != nil && now.Before(r.blockedUntil) {
		until = r.blockedUntil
	}
	if p := l.pairs[pairKey{user, ipKey(ip)}]; p != nil && !p.expired(now, l.cfg.Window) {
		if r := l.users[user]; r != nil && now.Before(r.blockedUntil) && r.blockedUntil.After(until) {
			until = r.blockedUntil
		}
	}
	if until.IsZero() {
		return 0, true
	}
	return until.Sub(now), false
}

// Fail records a wrong password (or unknown user) from ip for user.
func (l *Limiter) Fail(ip netip.Addr, user, password string) {
	now := l.now()
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])

	l.mu.Lock()
	defer l.mu.Unlock()
	pk := pairKey{user, ipKey(ip)}
	p := l.pairs[pk]
	if p != nil && p.expired(now, l.cfg.Window) {
		delete(l.pairs, pk)
		p = nil
	}
	if p == nil {
		evict(l.pairs, l.cfg.MaxEntries, now, l.cfg.Window, func(r *pairRecord) *failRecord { return &r.failRecord })
		p = &pairRecord{}
		l.pairs[pk] = p
	}
	for i := range p.nSeen {
		if hmac.Equal(p.seen[i][:], sum[:]) {
			return // the same wrong password again: already counted
		}
	}
	p.seen[p.next] = sum
	p.next = (p.next + 1) % rememberedPasswords
	p.nSeen = min(p.nSeen+1, rememberedPasswords)
	l.count(&p.failRecord, now, false)

	ir := lookupOrAdd(l.ips, pk.ip, l.cfg, now)
	l.count(ir, now, true)
	ur := lookupOrAdd(l.users, user, l.cfg, now)
	l.count(ur, now, false)
}

// count adds one failure to r. With delays set, the exponential delay
// applies (used for IPs); every record is blocked for Lockout at MaxFailures.
func (l *Limiter) count(r *failRecord, now time.Time, delays bool) {
	if r.count == 0 || !now.Before(r.first.Add(l.cfg.Window)) {
		r.count, r.first = 0, now
	}
	r.count++
	r.last = now
	if delays && r.count >= 2 {
		d := l.cfg.BaseDelay
		for i := 2; i < r.count && d < l.cfg.MaxDelay; i++ {
			d *= 2
		}
		d = min(d, l.cfg.MaxDelay)
		r.blockedUntil = later(r.blockedUntil, now.Add(d))
	}
	if l.cfg.MaxFailures > 0 && r.count >= l.cfg.MaxFailures {
		r.blockedUntil = later(r.blockedUntil, now.Add(l.cfg.Lockout))
		// The next failure after the lockout starts a fresh window.
		r.count = 0
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Succeed records a correct password from ip for user: that pair's record
// is cleared.
func (l *Limiter) Succeed(ip netip.Addr, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, pairKey{user, ipKey(ip)})
}

func lookupOrAdd[K comparable](m map[K]*failRecord, k K, cfg LimiterConfig, now time.Time) *failRecord {
	r := m[k]
	if r != nil && r.expired(now, cfg.Window) {
		delete(m, k)
		r = nil
	}
	if r == nil {
		evict(m, cfg.MaxEntries, now, cfg.Window, func(r *failRecord) *failRecord { return r })
		r = &failRecord{}
		m[k] = r
	}
	return r
}

// evict makes room for one more record: when m is full it drops expired
// records, and if none expired, the one whose last failure is oldest.
func evict[K comparable, V any](m map[K]V, max int, now time.Time, window time.Duration, rec func(V) *failRecord) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if rec(v).expired(now, window) {
			delete(m, k)
		}
	}
	if len(m) < max {
		return
	}
	var oldestK K
	var oldest time.Time
	first := true
	for k, v := range m {
		if r := rec(v); first || r.last.Before(oldest) {
			oldestK, oldest, first = k, r.last, false
		}
	}
	delete(m, oldestK)
}

// Len reports how many records the limiter holds (IPs, users, pairs).
func (l *Limiter) Len() (ips, users, pairs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips), len(l.users), len(l.pairs)
}
