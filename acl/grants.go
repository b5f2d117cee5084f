package acl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jellydator/ttlcache/v3"
	"github.com/popgate/popgate/maildir/durable"
	"github.com/spf13/afero"
)

// persistInterval coalesces writes of the grants state file: at most one
// a second, plus one on Close.
const persistInterval = time.Second

// stateVersion is the version of the grants state file format.
const stateVersion = 1

// GrantStore is what a Policy needs from the POP-before-SMTP grants.
type GrantStore interface {
	// Lookup returns the live grant for ip, if any.
	Lookup(ip netip.Addr) (Grant, bool)
	// List returns every live grant.
	List() []Grant
}

// Grant lets IP relay until Expires because User logged in over POP3.
type Grant struct {
	IP      netip.Addr
	User    string
	Granted time.Time // the login that made or last extended the grant
	Expires time.Time // the grant is void from this instant on
}

// GrantsConfig configures Grants.
type GrantsConfig struct {
	TTL        time.Duration    // how long a login lets its IP relay (relay.pop_ttl)
	NeverGrant []netip.Prefix   // addresses a login never authorises (relay.never_grant)
	StatePath  string           // data_dir/state/grants; "" keeps grants in memory only
	Fs         afero.Fs         // filesystem for StatePath; nil: the OS
	Now        func() time.Time // clock; nil: time.Now
	Logger     *slog.Logger     // nil: discard
}

// Grants holds POP-before-SMTP relay grants in a TTL cache, persists them
// and tells subscribers about every change.
type Grants struct {
	ttl    time.Duration
	never  []netip.Prefix
	path   string
	fs     afero.Fs
	now    func() time.Time
	logger *slog.Logger
	cache  *ttlcache.Cache[netip.Addr, Grant]

	// share tells other instances about grants made and revoked here; nil
	// (relay.grants_url = "") keeps grants in this process. Set once by
	// NewShared before the first login.
	share grantSharer

	dirty     chan struct{} // a change not yet persisted (capacity 1)
	persistMu sync.Mutex    // one state write at a time

	mu     sync.Mutex
	subs   []func()
	cancel context.CancelFunc // stops a running Start
	done   chan struct{}      // closed when Start returns
	closed bool
}

var _ GrantStore = (*Grants)(nil)

// NewGrants builds the grant store and restores persisted grants that are
// still valid; an expired grant is never restored. An unreadable or
// corrupt state file is logged and ignored.
func NewGrants(cfg GrantsConfig) (*Grants, error) {
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("acl: grants: TTL must be positive, got %v", cfg.TTL)
	}
	g := &Grants{
		ttl:    cfg.TTL,
		path:   cfg.StatePath,
		fs:     cfg.Fs,
		now:    cfg.Now,
		logger: cfg.Logger,
		dirty:  make(chan struct{}, 1),
		cache:  ttlcache.New(ttlcache.WithDisableTouchOnHit[netip.Addr, Grant]()),
	}
	for _, n := range cfg.NeverGrant {
		if !n.IsValid() {
			return nil, fmt.Errorf("acl: grants: invalid never_grant prefix %v", n)
		}
		g.never = append(g.never, netip.PrefixFrom(n.Addr().Unmap(), unmappedBits(n)).Masked())
	}
	if g.fs == nil {
		g.fs = afero.NewOsFs()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	g.cache.OnEviction(func(_ context.Context, reason ttlcache.EvictionReason, item *ttlcache.Item[netip.Addr, Grant]) {
		if reason != ttlcache.EvictionReasonExpired {
			return // Revoke reports its own change
		}
		gr := item.Value()
		g.logger.Info("relay expire", "user", gr.User, "ip", gr.IP.String(), "expired", gr.Expires.UTC())
		g.changed()
	})
	g.restore()
	return g, nil
}

// LoginSucceeded grants ip relay for TTL from now, or extends its grant.
// It never grants an invalid or unspecified address or one in NeverGrant.
// It is the POP3 server's login hook.
func (g *Grants) LoginSucceeded(user string, ip netip.Addr) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() {
		g.logger.Warn("relay grant refused", "user", user, "ip", ip.String(), "reason", "no usable client address")
		return
	}
	for _, n := range g.never {
		if n.Contains(ip) {
			g.logger.Info("relay grant refused", "user", user, "ip", ip.String(), "reason", "never_grant "+n.String())
			return
		}
	}
	now := g.now()
	gr := Grant{IP: ip, User: user, Granted: now, Expires: now.Add(g.ttl)}
	g.cache.Set(ip, gr, g.ttl)
	g.logger.Info("relay grant", "user", user, "ip", ip.String(), "until", gr.Expires.UTC())
	g.changed()
	if g.share != nil {
		g.share.granted(gr)
	}
}

// Lookup returns the live grant for ip. It never returns a grant whose
// Expires has been reached, even before the cache's expiry loop removed
// it, and it does not extend the grant.
func (g *Grants) Lookup(ip netip.Addr) (Grant, bool) {
	item := g.cache.Get(ip.Unmap().WithZone(""))
	if item == nil {
		return Grant{}, false
	}
	gr := item.Value()
	if !g.now().Before(gr.Expires) {
		return Grant{}, false
	}
	return gr, true
}

// List returns the live grants ordered by IP.
func (g *Grants) List() []Grant {
	now := g.now()
	var out []Grant
	g.cache.Range(func(item *ttlcache.Item[netip.Addr, Grant]) bool {
		if gr := item.Value(); now.Before(gr.Expires) {
			out = append(out, gr)
		}
		return true
	})
	slices.SortFunc(out, func(a, b Grant) int { return a.IP.Compare(b.IP) })
	return out
}

// Revoke removes the grant for ip and reports whether there was one.
func (g *Grants) Revoke(ip netip.Addr) bool {
	item, ok := g.cache.GetAndDelete(ip.Unmap().WithZone(""))
	if !ok {
		return false
	}
	gr := item.Value()
	g.logger.Info("relay revoke", "user", gr.User, "ip", gr.IP.String())
	g.changed()
	if g.share != nil {
		g.share.revoked(gr)
	}
	return true
}

// RevokeUser removes every grant made for user (compared without regard
// to case) and returns how many there were.
func (g *Grants) RevokeUser(user string) int {
	var ips []netip.Addr
	g.cache.Range(func(item *ttlcache.Item[netip.Addr, Grant]) bool {
		if strings.EqualFold(item.Value().User, user) {
			ips = append(ips, item.Key())
		}
		return true
	})
	n := 0
	for _, ip := range ips {
		if item, ok := g.cache.GetAndDelete(ip); ok && strings.EqualFold(item.Value().User, user) {
			g.logger.Info("relay revoke", "user", item.Value().User, "ip", ip.String())
			n++
			if g.share != nil {
				g.share.revoked(item.Value())
			}
		}
	}
	if n > 0 {
		g.changed()
	}
	return n
}

// OnChange subscribes fn to every grant, extension, expiry and revocation.
// fn runs on the goroutine that made the change and must not block.
func (g *Grants) OnChange(fn func()) {
	g.mu.Lock()
	g.subs = append(g.subs, fn)
	g.mu.Unlock()
}

func (g *Grants) changed() {
	select {
	case g.dirty <- struct{}{}:
	default:
	}
	g.mu.Lock()
	subs := slices.Clone(g.subs)
	g.mu.Unlock()
	for _, fn := range subs {
		fn()
	}
}

// Start runs the cache's expiry loop and the coalesced persistence of
// changes until ctx is done or Close is called. Without Start, expired
// grants are still never returned, but expiries are not announced and
// state is written only by Close.
func (g *Grants) Start(ctx context.Context) {
	g.mu.Lock()
	if g.closed || g.cancel != nil {
		g.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	done := make(chan struct{})
	g.done = done
	g.mu.Unlock()
	defer close(done)

	expiry := make(chan struct{})
	go func() {
		defer close(expiry)
		g.cache.Start()
	}()
	g.persistLoop(ctx)
	g.stopCache(expiry)
}

// stopCache ends the cache's expiry loop. ttlcache's Stop does nothing
// until Start has marked the cache as running, so it is retried until the
// loop has really exited.
func (g *Grants) stopCache(exited <-chan struct{}) {
	for {
		g.cache.Stop()
		t := time.NewTimer(time.Millisecond)
		select {
		case <-exited:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (g *Grants) persistLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.dirty:
		}
		if wait := time.Until(last.Add(persistInterval)); wait > 0 && !last.IsZero() {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if err := g.persist(); err != nil {
			g.logger.Error("relay grants not saved", "err", err)
		}
		last = time.Now()
	}
}

// Close stops Start and writes the state one last time.
func (g *Grants) Close() error {
	g.mu.Lock()
	g.closed = true
	cancel, done := g.cancel, g.done
	g.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return g.persist()
}

// stateFile is the JSON layout of the persisted grants.
type stateFile struct {
	Version int          `json:"version"`
	Grants  []stateGrant `json:"grants"`
}

type stateGrant struct {
	IP      string    `json:"ip"`
	User    string    `json:"user"`
	Granted time.Time `json:"granted"`
	Expires time.Time `json:"expires"`
}

// persist writes the live grants durably to StatePath.
func (g *Grants) persist() error {
	if g.path == "" {
		return nil
	}
	g.persistMu.Lock()
	defer g.persistMu.Unlock()
	st := stateFile{Version: stateVersion, Grants: []stateGrant{}}
	for _, gr := range g.List() {
		st.Grants = append(st.Grants, stateGrant{IP: gr.IP.String(), User: gr.User, Granted: gr.Granted.UTC(), Expires: gr.Expires.UTC()})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(st); err != nil {
		return fmt.Errorf("acl: grants: encode: %w", err)
	}
	if err := g.fs.MkdirAll(filepath.Dir(g.path), 0o700); err != nil {
		return fmt.Errorf("acl: grants: %w", err)
	}
	if err := durable.WriteBytes(g.fs, g.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("acl: grants: save %s: %w", g.path, err)
	}
	return nil
}

// restore loads still-valid grants from StatePath.
func (g *Grants) restore() {
	if g.path == "" {
		return
	}
	data, err := afero.ReadFile(g.fs, g.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		g.logger.Error("relay grants state unreadable, starting without grants", "path", g.path, "err", err)
		return
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || st.Version != stateVersion {
		if err == nil {
			err = fmt.Errorf("unknown version %d", st.Version)
		}
		g.logger.Error("relay grants state corrupt, starting without grants", "path", g.path, "err", err)
		return
	}
	now := g.now()
	restored := 0
	for _, sg := range st.Grants {
		ip, err := netip.ParseAddr(sg.IP)
		if err != nil || sg.User == "" || !now.Before(sg.Expires) || g.neverGranted(ip) {
			continue
		}
		left := sg.Expires.Sub(now)
		if left > g.ttl {
			// A grant never outlives the configured TTL from now, even if
			// the TTL was shortened or the clock stepped back.
			left = g.ttl
			sg.Expires = now.Add(left)
		}
		ip = ip.Unmap().WithZone("")
		g.cache.Set(ip, Grant{IP: ip, User: sg.User, Granted: sg.Granted, Expires: sg.Expires}, left)
		restored++
	}
	g.logger.Info("relay grants restored", "path", g.path, "count", restored)
}

func (g *Grants) neverGranted(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return true
	}
	for _, n := range g.never {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
