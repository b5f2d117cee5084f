package acl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

const (
	// sharedWriteTimeout bounds one write to the store made by a login or
	// a revocation, so that a store that stopped answering delays a POP3
	// login by at most this much, once: the store is then marked down.
	sharedWriteTimeout = 500 * time.Millisecond
	// sharedRetry is the wait between attempts to reach the store again.
	sharedRetry = time.Second
	// sharedBacklog is how many change messages may wait while the
	// replica is being reloaded; beyond it the replica is reloaded again.
	sharedBacklog = 4096
)

// sharedBackend is the store's side of sharing: the Redis one in
// shared_redis.go, a fake in tests.
type sharedBackend interface {
	// put stores gr under its IP with its expiry and announces it,
	// unless a revocation at or after gr.Granted is recorded for the IP:
	// then it stores nothing and reports false.
	put(ctx context.Context, gr Grant) (stored bool, err error)
	// del removes the grant for rv.IP if it was granted at or before
	// rv.At, records the revocation until rv.Until (unless a later one is
	// recorded), and announces it.
	del(ctx context.Context, rv revocation) error
	// load returns every grant in the store.
	load(ctx context.Context) ([]Grant, error)
	// subscribe receives change messages until ctx is done or the
	// connection breaks; ready is called once the subscription is
	// confirmed, msg for every message. Neither may block.
	subscribe(ctx context.Context, ready func(), msg func(string)) error
	// close releases the connection.
	close()
}

// SharedConfig configures the sharing of grants between instances.
type SharedConfig struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // clock; nil: time.Now
	Retry  time.Duration    // wait before reaching the store again; 0: one second
}

// SharedStatus is how sharing stands, for `popgate health`.
type SharedStatus struct {
	Store       string    `json:"store"`                // the store's address, without credentials
	Up          bool      `json:"up"`                   // sharing works now
	Since       time.Time `json:"since"`                // when Up last changed
	LastError   string    `json:"last_error,omitempty"` // why the store was last lost
	Outages     int       `json:"outages"`              // times the store was lost (or unreachable at start)
	WrittenBack int       `json:"written_back"`         // grants written back after outages
	Unshared    int       `json:"unshared"`             // local grants and revocations waiting for the store
}

// Shared keeps a Grants a replica of the grants shared by every instance
// through a store, and writes the grants made here into it. Lookups stay
// in the local replica: no store round trip per RCPT.
//
// When the store is lost, the replica keeps every grant it knew until its
// expiry, logins still grant through this instance, and nothing else is
// granted: sharing never opens the relay. When the store returns, the
// grants made here are written back, revocations made here are replayed,
// and the replica is reloaded from the store.
type Shared struct {
	g      *Grants
	be     sharedBackend
	store  string
	logger *slog.Logger
	now    func() time.Time
	retry  time.Duration

	mu          sync.Mutex
	up          bool // write to the store directly (from the start of a reload)
	ready       bool // the replica is the store's set (a reload finished)
	inOutage    bool // an outage was logged and has not ended
	since       time.Time
	lastErr     string
	outages     int
	writtenBack int
	mine        map[netip.Addr]Grant      // grants made by logins here, for write-back
	added       int                       // grants added to mine since it was last pruned
	revokes     map[netip.Addr]revocation // revocations made here while the store was down
	cancel      context.CancelFunc        // ends the current subscription
}

// newShared attaches be to g. It must be called before the first login.
func newShared(g *Grants, be sharedBackend, store string, cfg SharedConfig) *Shared {
	s := &Shared{
		g: g, be: be, store: store,
		logger: cfg.Logger, now: cfg.Now, retry: cfg.Retry,
		mine:    map[netip.Addr]Grant{},
		revokes: map[netip.Addr]revocation{},
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retry <= 0 {
		s.retry = sharedRetry
	}
	s.since = s.now()
	g.share = s
	return s
}

// Status reports how sharing stands.
func (s *Shared) Status() SharedStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SharedStatus{Store: s.store, Up: s.ready, Since: s.since, LastError: s.lastErr,
		Outages: s.outages, WrittenBack: s.writtenBack, Unshared: len(s.revokes) + s.unsharedLocked()}
}

// unsharedLocked counts the live grants made here while the store was
// down (all of them when it is down now).
func (s *Shared) unsharedLocked() int {
	if s.ready {
		return 0
	}
	now := s.now()
	n := 0
	for _, gr := range s.mine {
		if now.Before(gr.Expires) {
			n++
		}
	}
	return n
}

// granted writes a grant made here to the store, if the store is up.
func (s *Shared) granted(gr Grant) {
	s.mu.Lock()
	s.mine[gr.IP] = gr
	delete(s.revokes, gr.IP)
	// Expired grants leave mine once it has grown by half since the last
	// pruning: bounded memory at amortised constant cost per login.
	if s.added++; s.added > len(s.mine)/2+64 {
		s.pruneLocked()
	}
	up := s.up
	s.mu.Unlock()
	if !up {
		return // written back when the store returns
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedWriteTimeout)
	defer cancel()
	stored, err := s.be.put(ctx, gr)
	if err != nil {
		s.lost(fmt.Errorf("write grant for %s: %w", gr.IP, err))
		return
	}
	if !stored {
		s.refused(gr)
	}
}

// refused forgets a grant made here that the store refused because it
// was revoked, on another instance, after it was made: a login here
// before the revocation, written late (after an outage, or racing it).
func (s *Shared) refused(gr Grant) {
	s.mu.Lock()
	if cur, ok := s.mine[gr.IP]; ok && sameGrant(cur, gr) {
		delete(s.mine, gr.IP)
	}
	s.mu.Unlock()
	s.g.dropRefused(gr)
	s.logger.Info("relay grant revoked elsewhere", "user", gr.User, "ip", gr.IP.String(),
		"granted", gr.Granted.UTC())
}

// pruneLocked drops expired grants from mine.
func (s *Shared) pruneLocked() {
	now := s.now()
	for ip, gr := range s.mine {
		if !now.Before(gr.Expires) {
			delete(s.mine, ip)
		}
	}
	s.added = 0
}

// revoked removes a grant revoked here from the store, or remembers to.
// The revocation covers gr and every grant for its IP made before now;
// it is dated no earlier than gr.Granted, so that a grant made on an
// instance whose clock runs ahead is still removed.
func (s *Shared) revoked(gr Grant) {
	at := s.now()
	if at.Before(gr.Granted) {
		at = gr.Granted
	}
	rv := revocation{IP: gr.IP, At: at, Until: at.Add(s.g.ttl + maxSharedSkew)}
	s.mu.Lock()
	delete(s.mine, gr.IP)
	up := s.up
	if !up {
		s.revokes[gr.IP] = rv
	}
	s.mu.Unlock()
	if !up {
		s.logger.Warn("relay revoke not shared yet", "ip", gr.IP.String(), "reason", "store unreachable")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedWriteTimeout)
	defer cancel()
	if err := s.be.del(ctx, rv); err != nil {
		s.mu.Lock()
		s.revokes[gr.IP] = rv
		s.mu.Unlock()
		s.lost(fmt.Errorf("revoke %s: %w", gr.IP, err))
	}
}

// lost marks the store down and ends the current subscription, so that
// Run reconnects and reloads.
func (s *Shared) lost(err error) {
	s.mu.Lock()
	s.up, s.ready = false, false
	s.lastErr = err.Error()
	// A store unreachable at start is an outage too: logged, counted.
	begins := !s.inOutage
	if begins {
		s.inOutage = true
		s.outages++
		s.since = s.now()
	}
	cancel := s.cancel
	s.mu.Unlock()
	if begins {
		s.logger.Error("relay grants sharing lost", "store", s.store, "err", err)
	} else {
		s.logger.Debug("relay grants store unreachable", "store", s.store, "err", err)
	}
	if cancel != nil {
		cancel()
	}
}

// Run subscribes to changes, loads the shared set, and keeps both going
// through outages until ctx is done. It closes the store's connection
// when it returns.
func (s *Shared) Run(ctx context.Context) {
	defer s.be.close()
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.lost(err)
		}
		t := time.NewTimer(s.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session is one subscription: it reloads the replica once subscribed
// and applies change messages until the subscription breaks.
func (s *Shared) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()

	ready := make(chan struct{}, 1)
	msgs := make(chan string, sharedBacklog)
	overflow := make(chan struct{}, 1)
	ended := make(chan error, 1)
	go func() {
		ended <- s.be.subscribe(ctx,
			func() {
				select {
				case ready <- struct{}{}:
				default:
				}
			},
			func(m string) {
				select {
				case msgs <- m:
				default:
					select {
					case overflow <- struct{}{}:
					default:
					}
				}
			})
	}()
	for {
		select {
		case err := <-ended:
			if err == nil && ctx.Err() == nil {
				err = errors.New("subscription ended")
			}
			return err
		case <-overflow:
			cancel()
			<-ended
			return errors.New("change messages arrived faster than they were applied")
		case <-ready:
			if err := s.resync(ctx); err != nil {
				cancel()
				<-ended
				return err
			}
		case m := <-msgs:
			s.apply(m)
		}
	}
}

// apply applies one change message to the replica.
func (s *Shared) apply(m string) {
	gr, rv, err := decodeMessage(m)
	if err != nil {
		s.logger.Warn("relay grants message ignored", "store", s.store, "err", err)
		return
	}
	if rv.IP.IsValid() {
		// A login here after the revocation stays: the store kept it too.
		s.mu.Lock()
		if cur, ok := s.mine[rv.IP]; ok && rv.covers(cur) {
			delete(s.mine, rv.IP)
		}
		s.mu.Unlock()
		s.g.dropShared(rv)
		return
	}
	s.g.applyShared(gr)
}

// resync replays the revocations and writes back the grants made here
// while the store was down, then makes the replica the store's set. The
// store counts as up from its start, so that a login meanwhile is written
// directly.
func (s *Shared) resync(ctx context.Context) (err error) {
	started := s.now()
	s.mu.Lock()
	wasUp := s.up
	s.up = true
	revokes := make(map[netip.Addr]revocation, len(s.revokes))
	for ip, rv := range s.revokes {
		revokes[ip] = rv
	}
	var mine []Grant
	for ip, gr := range s.mine {
		if started.Before(gr.Expires) {
			mine = append(mine, gr)
		} else {
			delete(s.mine, ip)
		}
	}
	s.mu.Unlock()
	defer func() {
		if err != nil && !wasUp {
			s.mu.Lock()
			s.up = false // not back yet
			s.mu.Unlock()
		}
	}()

	// A replayed revocation removes only what was granted before it: a
	// login elsewhere since then stays.
	for ip, rv := range revokes {
		if err := s.be.del(ctx, rv); err != nil {
			return fmt.Errorf("replay revocation of %s: %w", ip, err)
		}
		s.mu.Lock()
		if s.revokes[ip] == revokes[ip] {
			delete(s.revokes, ip)
		}
		s.mu.Unlock()
	}
	all, err := s.be.load(ctx)
	if err != nil {
		return fmt.Errorf("load grants: %w", err)
	}
	inStore := make(map[netip.Addr]Grant, len(all))
	for _, gr := range all {
		inStore[gr.IP] = gr
	}
	back, refused := 0, 0
	for _, gr := range mine {
		if cur, ok := inStore[gr.IP]; ok && !cur.Expires.Before(gr.Expires) {
			continue // the store knows it, or a later extension
		}
		stored, err := s.be.put(ctx, gr)
		if err != nil {
			return fmt.Errorf("write back grant for %s: %w", gr.IP, err)
		}
		if !stored {
			// Revoked elsewhere while this instance was cut off: the
			// revocation sticks. The reload below drops it too, unless
			// the store holds a later login.
			s.refused(gr)
			refused++
			continue
		}
		all = append(all, gr)
		back++
	}
	set, dropped := s.g.replaceShared(all, started)

	s.mu.Lock()
	s.writtenBack += back
	s.lastErr = ""
	if !wasUp {
		s.since = s.now()
	}
	restored := s.inOutage
	s.inOutage = false
	s.ready = true
	s.mu.Unlock()
	msg := "relay grants shared"
	if restored {
		msg = "relay grants sharing restored"
	}
	s.logger.Info(msg, "store", s.store, "grants", len(all), "written_back", back,
		"revoked_elsewhere", refused, "revocations_replayed", len(revokes), "changed", set, "dropped", dropped)
	return nil
}
