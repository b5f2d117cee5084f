package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/smtp/aliases"
	"github.com/spf13/afero"
)

// relayState is the part of the configuration that SIGHUP replaces while
// connections and grants stay: the static access rules, the aliases, the
// policy built over them and the mirrors that carry the rules.
type relayState struct {
	cfg     *Config
	rules   *acl.Rules   // nil: no access file
	aliases *aliases.Map // nil: no aliases file
	policy  *acl.Policy
}

// buildRelay reads the access and aliases files of cfg and builds a policy
// over them and the live grants.
func (s *services) buildRelay(cfg *Config) (*relayState, error) {
	rs := &relayState{cfg: cfg}
	var err error
	if cfg.Relay.AccessFile != "" {
		if rs.rules, err = acl.LoadRules(afero.NewOsFs(), cfg.Relay.AccessFile); err != nil {
			return nil, fmt.Errorf("relay.access_file: %w", err)
		}
	}
	if cfg.Users.Aliases != "" {
		if rs.aliases, err = loadAliases(cfg.Users.Aliases, s.logger); err != nil {
			return nil, err
		}
	}
	rs.policy = acl.NewPolicy(acl.Config{
		LocalDomains:    cfg.Domains,
		TrustedNetworks: prefixes(cfg.Relay.TrustedNetworks),
		Rules:           rs.rules,
		Grants:          s.grants,
		Logger:          s.logger.With("part", "policy"),
	})
	return rs, nil
}

// reload re-reads the configuration file and the files it names. What can
// change at run time (access rules, aliases, trusted networks, mirrors)
// takes effect; what needs a restart (listeners, domains, data_dir, TLS,
// pop_ttl) is logged and left as it is. A bad file rejects the whole
// reload: the running configuration stays. The users file needs no
// reload: it is re-read whenever it changes.
func (s *services) reload() error {
	cfg, err := loadConfig(s.configPath)
	if err != nil {
		return err
	}
	if err := checkFiles(cfg, nopWriter{}); err != nil {
		return err
	}
	rs, err := s.buildRelay(cfg)
	if err != nil {
		return err
	}
	old := s.relay.Load().cfg
	for _, c := range restartOnly(old, cfg) {
		s.logger.Warn("reload: change needs a restart", "key", c)
	}
	s.relay.Store(rs)
	return nil
}

// restartOnly lists keys that changed but take effect only at a restart.
func restartOnly(old, cfg *Config) []string {
	var keys []string
	for i, l := range old.listeners() {
		if !slices.Equal(l.addrs, cfg.listeners()[i].addrs) {
			keys = append(keys, l.key)
		}
	}
	if !slices.Equal(old.Domains, cfg.Domains) {
		keys = append(keys, "domains")
	}
	if old.DataDir != cfg.DataDir {
		keys = append(keys, "data_dir")
	}
	if old.mailDir() != cfg.mailDir() {
		keys = append(keys, "mail_dir")
	}
	if old.POP3.LockLease != cfg.POP3.LockLease {
		keys = append(keys, "pop3.lock_lease")
	}
	if old.TLS != cfg.TLS {
		keys = append(keys, "tls")
	}
	if old.Relay.PopTTL != cfg.Relay.PopTTL || !slices.Equal(old.Relay.NeverGrant, cfg.Relay.NeverGrant) {
		keys = append(keys, "relay.pop_ttl/never_grant")
	}
	if !slices.Equal(old.Relay.ProxyProtocol, cfg.Relay.ProxyProtocol) {
		keys = append(keys, "relay.proxy_protocol")
	}
	if old.Relay.GrantsURL != cfg.Relay.GrantsURL || old.Relay.GrantsPasswordFile != cfg.Relay.GrantsPasswordFile {
		keys = append(keys, "relay.grants_url")
	}
	if old.SMTP.MinFreeBytes != cfg.SMTP.MinFreeBytes {
		keys = append(keys, "smtp.min_free_bytes")
	}
	if old.SMTP.SenderCheck != cfg.SMTP.SenderCheck {
		keys = append(keys, "smtp.sender_check")
	}
	if old.Queue.Smarthost != cfg.Queue.Smarthost || old.Queue.MinRetry != cfg.Queue.MinRetry ||
		old.Queue.MaxAge != cfg.Queue.MaxAge || !maps.Equal(old.Queue.Routes, cfg.Queue.Routes) {
		keys = append(keys, "queue")
	}
	return keys
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// mirrorRun is one running acl.Mirror; reload replaces it with one over
// the new rules (which rewrites every map at its start).
type mirrorRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (m *mirrorRun) wait() {
	if m != nil {
		m.cancel()
		m.wg.Wait()
	}
}

// startMirror stops prev (its final write completes first) and starts a
// mirror for rs; with no mirrors configured it returns nil.
func (s *services) startMirror(ctx context.Context, rs *relayState, prev *mirrorRun) *mirrorRun {
	prev.wait()
	if len(rs.cfg.Relay.Mirror) == 0 {
		return nil
	}
	w := mapWriter{formats: map[string]mapfile.Format{}, now: s.now}
	writer := s.metrics.mapWriter(w, nil)
	var targets []acl.MirrorTarget
	for _, m := range rs.cfg.Relay.Mirror {
		w.formats[m.Path], _ = mapfile.ParseFormat(m.Format) // validated by loadConfig
		targets = append(targets, acl.MirrorTarget{Path: m.Path, Flavor: m.Flavor})
	}
	mirror := acl.NewMirror(acl.MirrorConfig{Targets: targets, Rules: rs.rules, Grants: s.grants,
		Writer: writer, Now: s.now, Logger: s.logger.With("part", "mirror")})
	ctx, cancel := context.WithCancel(ctx)
	run := &mirrorRun{cancel: cancel}
	run.wg.Add(1)
	go func() {
		defer run.wg.Done()
		if err := mirror.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.logger.Error("access map mirror stopped", "err", err)
		}
	}()
	return run
}
