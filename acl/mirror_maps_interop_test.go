//go:build interop

package acl

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/acl/postmaptest"
)

// fileMapWriter is the production writer's shape (cmd/popgate's
// mapWriter): acl/mapfile in the format of each path, postmap's key form.
type fileMapWriter map[string]mapfile.Format

func (w fileMapWriter) WriteMap(path string, entries []MapEntry) error {
	es := make([]accessdb.Entry, len(entries))
	for i, e := range entries {
		es[i] = accessdb.Entry{Key: []byte(e.Key), Value: []byte(e.Value)}
	}
	return mapfile.WriteFile(path, mapfile.PostmapForm(w[path], es), w[path], time.Now)
}

// postmapQuery asks Postfix's own reader for every key (postmap -q -
// reads them from stdin) and returns what it found.
func postmapQuery(t *testing.T, confDir, table string, keys []string) map[string]string {
	t.Helper()
	cmd := exec.Command("postmap", "-c", confDir, "-q", "-", table)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || len(ee.Stderr) > 0 { // 1: some key not found
			t.Fatalf("postmap -q - %s: %v", table, err)
		}
	}
	got := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			got[k] = v
		}
	}
	return got
}

// TestInteropMirrorCDBAndLMDBThroughExpiry runs the mirror on cdb and
// lmdb maps with static rules and 100k grants, on a fake clock, and asks
// postmap (Debian's postfix-cdb and postfix-lmdb) after each step: every
// rule and live grant is found with its value, and expired grants are
// gone at the instant they expire.
func TestInteropMirrorCDBAndLMDBThroughExpiry(t *testing.T) {
	_, dir := postmaptest.New(t)
	type target struct {
		path, flavor, table string
		format              mapfile.Format
	}
	targets := []target{
		{filepath.Join(dir, "popgate.cdb"), FlavorPostfix, "cdb:" + filepath.Join(dir, "popgate"), mapfile.CDB},
		{filepath.Join(dir, "popgate.lmdb"), FlavorPostfix, "lmdb:" + filepath.Join(dir, "popgate"), mapfile.LMDB},
		{filepath.Join(dir, "access.cdb"), FlavorSendmail, "cdb:" + filepath.Join(dir, "access"), mapfile.CDB},
	}
	rules, err := ParseRulesString(mirrorAccess)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	many := make([]netip.Addr, n)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	late := ip("2001:db8::77")

	synctest.Test(t, func(t *testing.T) {
		grants, err := NewGrants(GrantsConfig{TTL: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for _, a := range many {
			grants.LoginSucceeded("roamer", a)
		}
		w := fileMapWriter{}
		var mts []MirrorTarget
		for _, tg := range targets {
			w[tg.path] = tg.format
			mts = append(mts, MirrorTarget{Path: tg.path, Flavor: tg.flavor})
		}
		m := NewMirror(MirrorConfig{Targets: mts, Rules: rules, Grants: grants, Writer: w})
		ctx, cancel := context.WithCancel(t.Context())
		runErr := make(chan error, 1)
		go func() { runErr <- m.Run(ctx) }()

		// check asks postmap for the static rules, the grants in live and
		// those in gone, for every target.
		check := func(step string, live, gone []netip.Addr) {
			t.Helper()
			for _, tg := range targets {
				want := make(map[string]string)
				for _, e := range Entries(rules, nil, tg.flavor) {
					want[e.Key] = e.Value
				}
				var keys []string
				for k := range want {
					keys = append(keys, k)
				}
				for _, a := range live {
					k, v := grantEntry(a, tg.flavor)
					if _, static := want[k]; !static {
						want[k] = v
					}
					keys = append(keys, k)
				}
				for _, a := range gone {
					k, _ := grantEntry(a, tg.flavor)
					keys = append(keys, k)
				}
				got := postmapQuery(t, dir, tg.table, keys)
				for k, v := range want {
					if got[k] != v {
						t.Fatalf("%s: postmap -q %s %s = %q, want %q", step, k, tg.table, got[k], v)
					}
				}
				if len(got) != len(want) {
					for _, a := range gone {
						if k, _ := grantEntry(a, tg.flavor); got[k] != "" {
							t.Fatalf("%s: %s: expired grant %s still answers %q", step, tg.table, k, got[k])
						}
					}
					t.Fatalf("%s: %s: %d keys found, want %d", step, tg.table, len(got), len(want))
				}
			}
		}

		synctest.Wait()
		check("start", many, []netip.Addr{late})

		time.Sleep(5 * time.Minute)
		grants.LoginSucceeded("alice", late)
		synctest.Wait()
		check("login at 5m", append(many[:n:n], late), nil)

		time.Sleep(time.Until(start.Add(15 * time.Minute)))
		synctest.Wait()
		check("at 15m", []netip.Addr{late}, many)

		time.Sleep(time.Until(start.Add(20 * time.Minute)))
		synctest.Wait()
		check("at 20m", nil, append(many[:1000:1000], late))

		cancel()
		if err := <-runErr; err != nil {
			t.Fatal(err)
		}
		if err := grants.Close(); err != nil {
			t.Fatal(err)
		}
	})
	// The maps are whole files of their format, nothing else left behind.
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	if got := fmt.Sprint(names); got != "[access.cdb main.cf popgate.cdb popgate.lmdb]" {
		t.Errorf("directory holds %s", got)
	}
}
