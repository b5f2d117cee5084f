//go:build interop

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/postmaptest"
)

// TestInteropBinaryMirrorCDBAndLMDB runs the real binary with cdb and
// lmdb mirrors beside a static access file: an mpop login puts its IP in
// every map, Postfix's own cdb and lmdb readers (postmap -q) find it and
// the static rules, and at pop_ttl it is gone from all of them.
func TestInteropBinaryMirrorCDBAndLMDB(t *testing.T) {
	for _, p := range []string{"mpop", "postmap"} {
		need(t, p)
	}
	dir := t.TempDir()
	access := filepath.Join(dir, "access")
	if err := os.WriteFile(access, []byte("192.168.0 RELAY\nspamford.com REJECT\nConnect:10.1.2.3 OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const ttl = 3 * time.Second
	conf := relayConfig(dir, ttl) + fmt.Sprintf(`access_file = %q
[[relay.mirror]]
path = %q
flavor = "postfix"
format = "cdb"
[[relay.mirror]]
path = %q
flavor = "postfix"
format = "lmdb"
[[relay.mirror]]
path = %q
flavor = "sendmail"
format = "cdb"
`, access, filepath.Join(dir, "popgate.cdb"), filepath.Join(dir, "popgate.lmdb"), filepath.Join(dir, "access.cdb"))
	cfg := setupBinary(t, dir, conf)
	s := startBinary(t, cfg)
	_, pfconf := postmaptest.New(t)
	query := func(table, key string) string {
		out, _ := exec.Command(need(t, "postmap"), "-c", pfconf, "-q", key, table).Output()
		return strings.TrimSpace(string(out))
	}
	tables := []struct{ table, grantKey, grantValue string }{
		{"cdb:" + filepath.Join(dir, "popgate"), "127.0.0.1", "OK"},
		{"lmdb:" + filepath.Join(dir, "popgate"), "127.0.0.1", "OK"},
		{"cdb:" + filepath.Join(dir, "access"), "connect:127.0.0.1", "RELAY"},
	}
	// The static rules are there from the start, in each flavor's form.
	waitUntil(t, "the maps written at start", 5*time.Second, func() bool {
		return query(tables[0].table, "192.168.0") == "OK" && query(tables[1].table, "10.1.2.3") == "DUNNO" &&
			query(tables[2].table, "spamford.com") == "REJECT" && query(tables[2].table, "connect:10.1.2.3") == "OK"
	})
	for _, tb := range tables {
		if got := query(tb.table, tb.grantKey); got != "" {
			t.Fatalf("%s has %s = %q before any login", tb.table, tb.grantKey, got)
		}
	}

	host, port, _ := net.SplitHostPort(s.pop)
	mpopArgs := []string{"--host=" + host, "--port=" + port, "--auth=user", "--user=alice@example.com",
		"--passwordeval=echo correct horse battery", "--delivery=maildir," + maildirFor(t), "--tls=off",
		"--uidls-file=" + filepath.Join(t.TempDir(), "uidls"), "--keep=on", "--timeout=20"}
	if out, err := runCmd(t, "", need(t, "mpop"), mpopArgs...); err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	for _, tb := range tables {
		waitUntil(t, "the grant in "+tb.table, 5*time.Second, func() bool { return query(tb.table, tb.grantKey) == tb.grantValue })
	}
	for _, tb := range tables {
		waitUntil(t, "the grant's expiry in "+tb.table, ttl+5*time.Second, func() bool { return query(tb.table, tb.grantKey) == "" })
	}
	if got := query(tables[0].table, "192.168.0"); got != "OK" {
		t.Errorf("static rule lost after expiry: %q", got)
	}
	// Only the maps themselves: every temporary file was renamed or removed.
	for _, pat := range []string{".popgate.*", ".access.*"} {
		if left, _ := filepath.Glob(filepath.Join(dir, pat)); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
}

// TestInteropAccessMakeCDBAndLMDB builds 100k-key maps with `popgate
// access make` that postmap -q reads key for key, and reads maps built by
// `postmap cdb:` and `postmap lmdb:` with `popgate access get` and list.
func TestInteropAccessMakeCDBAndLMDB(t *testing.T) {
	postmap, pfconf := postmaptest.New(t)
	var text strings.Builder
	var keys []string
	want := make(map[string]string)
	for i := range 100000 {
		k, v := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff), "OK"
		if i%2 == 1 {
			k, v = fmt.Sprintf("user%d@example.com", i), "REJECT"
		}
		fmt.Fprintf(&text, "%s %s\n", k, v)
		keys = append(keys, k)
		want[k] = v
	}
	keys = append(keys, "not.there") // answered by nothing
	for _, format := range []string{"cdb", "lmdb"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			ours := filepath.Join(dir, "ours")
			if out, err := runCmd(t, text.String(), binary(t), "access", "make", ours+"."+format); err != nil {
				t.Fatalf("popgate access make: %v\n%s", err, out)
			}
			lines := postmaptest.Query(t, postmap, pfconf, format, ours, keys)
			if len(lines) != len(want) {
				t.Fatalf("postmap found %d keys, want %d", len(lines), len(want))
			}
			for _, l := range lines {
				if k, v, _ := strings.Cut(l, "\t"); want[k] != v {
					t.Fatalf("postmap -q %s = %q, want %q", k, v, want[k])
				}
			}

			theirs := filepath.Join(dir, "theirs")
			postmaptest.Build(t, postmap, pfconf, format, theirs, text.String())
			for _, k := range []string{"10.0.0.0", "user99999@example.com", "10.1.134.158"} {
				out, err := runCmd(t, "", binary(t), "access", "get", theirs+"."+format, k)
				if err != nil || strings.TrimSpace(out) != want[k] {
					t.Errorf("popgate access get %s = %q, %v; want %q", k, out, err, want[k])
				}
			}
			out, err := exec.Command(binary(t), "access", "list", theirs+"."+format).Output()
			if err != nil {
				t.Fatalf("popgate access list: %v", err)
			}
			if n := strings.Count(string(out), "\n"); n != len(want) {
				t.Errorf("popgate access list printed %d lines, want %d", n, len(want))
			}
		})
	}
}
