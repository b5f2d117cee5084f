package acl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mirror flavors: what the map file's reader understands.
const (
	// FlavorSendmail writes every static rule with its key lowercased as
	// makemap does, and each grant as "connect:IP RELAY" (IPv6 as
	// "connect:ipv6:" + the full form), which sendmail's check_relay and
	// Relay_ok look up with FEATURE(`access_db').
	FlavorSendmail = "sendmail"
	// FlavorPostfix writes a check_client_access table: each grant as the
	// bare compressed IP with value OK. Only client rules (Connect: and
	// untagged IP, network and host keys) are written, the Connect: one
	// winning when both exist; From:, To:, Spam:, address keys and other
	// tags are skipped since Postfix would apply an untagged table entry to
	// the wrong check. Values are translated: RELAY→OK, OK and SKIP→DUNNO
	// (sendmail's OK only accepts, never relays, while Postfix's OK would
	// permit relaying; DUNNO still stops the search for less specific keys),
	// REJECT and DISCARD as is, ERROR:D.S.N:### text→"### D.S.N text".
	// IPv6 networks are written as their leading groups ("2002:c0a8:51d2")
	// only when Postfix can match them: it truncates the compressed client
	// address at each ':', so a network of fewer than three groups
	// (access(5) requires 3 to 8) or with a zero group is skipped. Host
	// names match subdomains as long as smtpd_access_maps is in
	// parent_domain_matches_subdomains (Postfix's default).
	FlavorPostfix = "postfix"
)

// defaultMinInterval is the least time between two writes of one map:
// sendmail notices a changed map only when its mtime, in whole seconds,
// grows (DESIGN.md, "The access.db mirror").
const defaultMinInterval = time.Second

// MapWriter replaces the contents of one map file. The integrator's
// implementation (cmd/popgate, over acl/mapfile) rewrites hash maps in
// place under flock and replaces cdb and lmdb maps by rename.
type MapWriter interface {
	WriteMap(path string, entries []MapEntry) error
}

// MapEntry is one key and value of a map file.
type MapEntry struct {
	Key, Value string
}

// MirrorTarget is one map file to keep in step.
type MirrorTarget struct {
	Path   string
	Flavor string // FlavorSendmail or FlavorPostfix
}

// MirrorConfig configures a Mirror.
type MirrorConfig struct {
	Targets     []MirrorTarget
	Rules       *Rules // may be nil
	Grants      *Grants
	Writer      MapWriter
	Now         func() time.Time // nil: time.Now
	Logger      *slog.Logger     // nil: discard
	MinInterval time.Duration    // least time between writes of one target; 0: 1s
}

// Mirror keeps map files in step with static rules and live grants.
type Mirror struct {
	targets []MirrorTarget
	rules   *Rules
	grants  *Grants
	writer  MapWriter
	now     func() time.Time
	logger  *slog.Logger
	min     time.Duration
}

// NewMirror builds a Mirror; Run does the work.
func NewMirror(cfg MirrorConfig) *Mirror {
	m := &Mirror{
		targets: cfg.Targets, rules: cfg.Rules, grants: cfg.Grants, writer: cfg.Writer,
		now: cfg.Now, logger: cfg.Logger, min: cfg.MinInterval,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.min <= 0 {
		m.min = defaultMinInterval
	}
	return m
}

// Run writes every target once at start, so a map left behind by a crash
// never keeps a stale grant, then again after each grant change and when
// the earliest written grant expires, at most once per MinInterval per
// target. It writes every target a last time when ctx is done, and
// returns the errors of that last write. A failed write is logged and
// retried after MinInterval.
func (m *Mirror) Run(ctx context.Context) error {
	if m.writer == nil {
		return errors.New("acl: mirror: no map writer")
	}
	for _, t := range m.targets {
		if t.Flavor != FlavorSendmail && t.Flavor != FlavorPostfix {
			return fmt.Errorf("acl: mirror %s: unknown flavor %q", t.Path, t.Flavor)
		}
	}
	wake := make(chan struct{}, 1)
	if m.grants != nil {
		m.grants.OnChange(func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}
	last := make([]time.Time, len(m.targets))
	pending := make([]bool, len(m.targets))
	for i := range pending {
		pending[i] = true
	}
	var expiry time.Time // earliest Expires among grants last written
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := m.now()
		var next time.Time
		for i, t := range m.targets {
			if !pending[i] {
				continue
			}
			if due := last[i].Add(m.min); !last[i].IsZero() && now.Before(due) {
				next = earliest(next, due)
				continue
			}
			last[i] = now
			if exp, err := m.write(t); err != nil {
				m.logger.Error("access map not written", "path", t.Path, "err", err)
				next = earliest(next, now.Add(m.min))
			} else {
				pending[i] = false
				expiry = earliest(expiry, exp)
			}
		}
		if !expiry.IsZero() {
			next = earliest(next, expiry)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			var errs []error
			for _, t := range m.targets {
				if _, err := m.write(t); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		case <-wake:
			markAll(pending)
		case <-timer.C:
			if !expiry.IsZero() && !m.now().Before(expiry) {
				expiry = time.Time{}
				markAll(pending)
			}
		}
	}
}

// write writes one target and returns the earliest expiry it contains.
func (m *Mirror) write(t MirrorTarget) (time.Time, error) {
	var grants []Grant
	if m.grants != nil {
		grants = m.grants.List()
	}
	entries := Entries(m.rules, grants, t.Flavor)
	if err := m.writer.WriteMap(t.Path, entries); err != nil {
		return time.Time{}, fmt.Errorf("acl: mirror %s: %w", t.Path, err)
	}
	m.logger.Debug("access map written", "path", t.Path, "entries", len(entries), "grants", len(grants))
	var exp time.Time
	for _, g := range grants {
		exp = earliest(exp, g.Expires)
	}
	return exp, nil
}

func markAll(b []bool) {
	for i := range b {
		b[i] = true
	}
}

// earliest returns the earlier of a and b, treating zero as "none".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Entries returns the map contents for flavor: static rules first, in
// file order, then grants. A grant whose key a static rule already has is
// left out (the static rule stands). An unknown flavor yields nil.
func Entries(rules *Rules, grants []Grant, flavor string) []MapEntry {
	var out []MapEntry
	seen := make(map[string]int) // key → index in out
	switch flavor {
	case FlavorSendmail:
		for _, r := range rules.List() {
			seen[r.MapKey()] = len(out)
			out = append(out, MapEntry{Key: r.MapKey(), Value: r.Value})
		}
	case FlavorPostfix:
		for _, r := range rules.List() {
			key, value, ok := postfixRule(r)
			if !ok {
				continue
			}
			if i, dup := seen[key]; dup {
				if r.Tag == "Connect" {
					out[i].Value = value // the tagged rule is looked up first
				}
				continue
			}
			seen[key] = len(out)
			out = append(out, MapEntry{Key: key, Value: value})
		}
	default:
		return nil
	}
	for _, g := range grants {
		if !g.IP.IsValid() {
			continue
		}
		key, value := grantEntry(g.IP, flavor)
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = len(out)
		out = append(out, MapEntry{Key: key, Value: value})
	}
	return out
}

func grantEntry(ip netip.Addr, flavor string) (key, value string) {
	ip = ip.Unmap().WithZone("")
	if flavor == FlavorPostfix {
		return ip.String(), "OK"
	}
	if ip.Is4() {
		return "connect:" + ip.String(), "RELAY"
	}
	return "connect:ipv6:" + fullIPv6(ip), "RELAY"
}

// postfixRule translates a static rule for a Postfix client table.
func postfixRule(r Rule) (key, value string, ok bool) {
	if r.Tag != "" && r.Tag != "Connect" {
		return "", "", false
	}
	switch r.kind {
	case kindIPv4, kindHost:
		key = r.Key
	case kindIPv6:
		groups := strings.Split(strings.TrimPrefix(r.Key, "ipv6:"), ":")
		if len(groups) == 8 {
			a, err := netip.ParseAddr(strings.Join(groups, ":"))
			if err != nil {
				return "", "", false
			}
			key = a.String()
			break
		}
		// Postfix truncates the compressed address string, so a network
		// is found only if its groups lead that string: at least three
		// groups (access(5)) and none zero, which "::" could swallow.
		if len(groups) < 3 || slices.Contains(groups, "0") {
			return "", "", false
		}
		key = strings.Join(groups, ":")
	default:
		return "", "", false
	}
	switch r.Verdict {
	case VerdictRelay:
		value = "OK"
	case VerdictOK, VerdictSkip:
		value = "DUNNO"
	case VerdictReject:
		value = "REJECT"
	case VerdictDiscard:
		value = "DISCARD"
	case VerdictError:
		value = strconv.Itoa(r.Code) + " " + r.Enhanced
		if r.Text != "" {
			value += " " + r.Text
		}
	default:
		return "", "", false
	}
	return key, value, true
}
