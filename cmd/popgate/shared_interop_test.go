//go:build interop

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/internal/redistest"
)

// sharedServers are two popgates assembled on 127.0.0.1:0 listeners that
// share their grants through one real redis-server (with a password, read
// from relay.grants_password_file); A also serves metrics.
type sharedServers struct {
	redis      *redistest.Server
	a, b       *services
	cliA, cliB func(args ...string) (string, int)
	metricsURL string
}

func startSharedServers(t *testing.T) *sharedServers {
	t.Helper()
	const password = "s3cret shared by the instances"
	rs := redistest.StartWithPassword(t, password)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _, metricsURL, _ := startMetrics(t)
	ss := &sharedServers{redis: rs, metricsURL: metricsURL}
	start := func(withMetrics bool) (*services, func(args ...string) (string, int)) {
		dir := t.TempDir()
		cfg := testConfig(t, dir)
		cfg.Relay.GrantsURL = rs.URL(2)
		cfg.Relay.GrantsPasswordFile = pwFile
		logger := slog.New(slog.NewTextHandler(testLogOut(), nil))
		if withMetrics {
			logger = slog.New(m.handler(slog.NewTextHandler(testLogOut(), nil)))
		}
		s, err := assemble(cfg, options{logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		if withMetrics {
			if err := m.instrument(s); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.run(ctx, nil) }()
		t.Cleanup(func() { cancel(); <-done })
		cfgPath := filepath.Join(dir, "popgate.toml")
		toml := fmt.Sprintf("domains = [\"example.com\"]\ndata_dir = %q\n[pop3]\nlisten = []\n[smtp]\nlisten = []\nsubmission = [\"127.0.0.1:0\"]\n", dir)
		if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		cli := func(args ...string) (string, int) {
			var out, errb strings.Builder
			code := run(context.Background(), &env{stdout: &out, stderr: &errb}, append(args, "--config", cfgPath))
			return out.String() + errb.String(), code
		}
		return s, cli
	}
	ss.a, ss.cliA = start(true)
	ss.b, ss.cliB = start(false)
	waitFor(t, "both instances sharing", func() bool { return ss.a.shared.Status().Up && ss.b.shared.Status().Up })
	return ss
}

func hasGrant(s *services, ip string) bool {
	_, ok := s.grants.Lookup(netip.MustParseAddr(ip))
	return ok
}

// TestInteropSharedGrantsTwoServers: a POP3 login on A relays on B, shows
// in B's access.db mirror, `grants list` and `access why`; revoke-user on
// B ends it on A. With redis-server killed, A still relays for its own
// logins and B for none of them, `health` and the metrics say so; with
// redis-server back, A's outage grant relays on B.
func TestInteropSharedGrantsTwoServers(t *testing.T) {
	ss := startSharedServers(t)
	a, b := ss.a, ss.b
	if got := trySend(t, "127.0.0.2", b.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("B before any login: %q", got)
	}
	popLogin(t, "127.0.0.2", a.addr("pop3.listen"), "alice@example.com", "alice's secret")
	waitFor(t, "A's grant on B", func() bool { return hasGrant(b, "127.0.0.2") })
	if got := trySend(t, "127.0.0.2", b.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("B after a login on A: %q, want 250", got)
	}
	if got := trySend(t, "127.0.0.3", b.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("B from another address: %q", got)
	}
	// Each instance writes its own mirror from the shared set.
	waitFor(t, "A's grant in B's access.db", func() bool {
		return mapValue(t, b.cfg.Relay.Mirror[0].Path, "connect:127.0.0.2") == "RELAY"
	})
	if out, code := ss.cliB("grants", "list"); code != 0 || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "alice@example.com") {
		t.Errorf("grants list on B: %d %q", code, out)
	}
	out, code := ss.cliB("access", "why", "127.0.0.2", "--from", "alice@example.com", "--to", "friend@remote.example")
	if code != 0 || !strings.Contains(out, "relay") || !strings.Contains(out, "alice@example.com") {
		t.Errorf("access why on B: %d %q", code, out)
	}
	if out, code := ss.cliB("health"); code != 0 || !strings.Contains(out, "grants shared: up since") || !strings.Contains(out, "via redis://127.0.0.1:") || strings.Contains(out, "s3cret") {
		t.Errorf("health on B: %d %q", code, out)
	}
	if out, code := ss.cliB("grants", "revoke-user", "alice@example.com"); code != 0 || !strings.Contains(out, "revoked 1 grant") {
		t.Fatalf("revoke-user on B: %d %q", code, out)
	}
	waitFor(t, "the revocation on A", func() bool { return !hasGrant(a, "127.0.0.2") })
	if got := trySend(t, "127.0.0.2", a.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("A after revoke-user on B: %q", got)
	}

	// Redis killed: nothing opens, A's own logins still relay through A.
	popLogin(t, "127.0.0.4", a.addr("pop3.listen"), "bob@example.com", "bob-password")
	waitFor(t, "a grant known before the outage", func() bool { return hasGrant(b, "127.0.0.4") })
	ss.redis.Kill()
	waitFor(t, "the outage seen by both", func() bool { return !a.shared.Status().Up && !b.shared.Status().Up })
	if got := trySend(t, "127.0.0.4", b.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("B during the outage, grant known before: %q", got)
	}
	popLogin(t, "127.0.0.5", a.addr("pop3.listen"), "bob@example.com", "bob-password")
	if got := trySend(t, "127.0.0.5", a.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("A during the outage, its own login: %q", got)
	}
	if got := trySend(t, "127.0.0.5", b.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("B during the outage relays for a login it never saw: %q", got)
	}
	if out, code := ss.cliA("health"); code != 0 || !strings.Contains(out, "grants shared: DEGRADED") || !strings.Contains(out, "local grants only, 2 waiting to be shared") {
		t.Errorf("health on A during the outage: %d %q", code, out)
	}
	body := scrape(t, ss.metricsURL)
	for _, want := range []string{"popgate_grants_store_up 0", `popgate_grants_sharing_total{event="lost"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics during the outage lack %q", want)
		}
	}

	ss.redis.Restart()
	waitFor(t, "A's outage grant on B", func() bool { return hasGrant(b, "127.0.0.5") })
	if got := trySend(t, "127.0.0.5", b.addr("smtp.listen"), "bob@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("B after Redis returned: %q", got)
	}
	waitFor(t, "A back", func() bool { return a.shared.Status().Up })
	// The restoration is logged (and so counted) just after it is done.
	waitFor(t, "the restoration counted", func() bool {
		return strings.Contains(scrape(t, ss.metricsURL), `popgate_grants_sharing_total{event="restored"} 1`)
	})
	body = scrape(t, ss.metricsURL)
	for _, want := range []string{"popgate_grants_store_up 1", `popgate_grants_sharing_total{event="written_back"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics after the return lack %q", want)
		}
	}
	if out, code := ss.cliA("health"); code != 0 || !strings.Contains(out, "(1 outages, 2 grants written back)") {
		t.Errorf("health on A after the return: %d %q", code, out)
	}
}

// TestInteropSharedWrongPassword: a wrong password is an outage, not an
// open relay: the instance serves its own logins and says why in health.
func TestInteropSharedWrongPassword(t *testing.T) {
	rs := redistest.StartWithPassword(t, "the right one")
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Relay.GrantsURL = "redis://:the-wrong-one@" + rs.Addr() + "/0"
	s := startServer(t, cfg, &fakeClock{})
	waitFor(t, "the refusal", func() bool { return s.shared.Status().LastError != "" })
	if st := s.shared.Status(); st.Up || !strings.Contains(st.LastError, "WRONGPASS") && !strings.Contains(st.LastError, "invalid") {
		t.Fatalf("status: %+v", st)
	}
	popLogin(t, "127.0.0.2", s.addr("pop3.listen"), "alice@example.com", "alice's secret")
	if got := trySend(t, "127.0.0.2", s.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("own login without the store: %q", got)
	}
	if got := trySend(t, "127.0.0.3", s.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("open relay: %q", got)
	}
}
