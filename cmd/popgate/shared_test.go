package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedStoreUnreachableAtStart: with relay.grants_url pointing at a
// port nothing listens on, popgate still starts, relays for its own POP3
// logins only, and `popgate health` says sharing is degraded (exit 0).
func TestSharedStoreUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Relay.GrantsURL = "redis://user:hunter2@" + dead + "/0"
	s := startServer(t, cfg, &fakeClock{})
	waitFor(t, "the store refused", func() bool { return s.shared.Status().LastError != "" })
	popLogin(t, "127.0.0.2", s.addr("pop3.listen"), "alice@example.com", "alice's secret")
	if got := trySend(t, "127.0.0.2", s.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("own login without the store: %q", got)
	}
	if got := trySend(t, "127.0.0.3", s.addr("smtp.listen"), "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("open relay without the store: %q", got)
	}
	cfgPath := filepath.Join(dir, "popgate.toml")
	toml := fmt.Sprintf("domains = [\"example.com\"]\ndata_dir = %q\n[pop3]\nlisten = []\n[smtp]\nlisten = []\nsubmission = [\"127.0.0.1:0\"]\n", dir)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"health", "--config", cfgPath})
	want := "grants shared: DEGRADED, store redis://" + dead + "/0 unreachable since"
	if code != 0 || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "1 waiting to be shared") || strings.Contains(out.String(), "hunter2") {
		t.Errorf("health: %d %q %q, want %q and no password", code, out.String(), errb.String(), want)
	}
}
