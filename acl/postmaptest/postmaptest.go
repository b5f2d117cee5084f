// Package postmaptest prepares Postfix's postmap(1) for interop tests:
// it finds the program and makes a private configuration directory with
// an empty main.cf, so `postmap -c DIR` reads and writes maps the same
// way whatever the machine's own Postfix setup is. Like net/http/httptest
// it is for _test.go files only.
package postmaptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// New returns the path of postmap, failing the test when it is not
// installed (.ci/install-peers.sh installs postfix, postfix-cdb and
// postfix-lmdb), and a fresh directory holding an empty main.cf for
// postmap's -c option (or MAIL_CONFIG). Tests may keep their maps in it.
func New(t testing.TB) (postmap, confDir string) {
	t.Helper()
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/postmap"); serr != nil {
			t.Fatalf("postmaptest: postmap not installed (postfix): %v", err)
		}
		postmap = "/usr/sbin/postmap"
	}
	confDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "main.cf"), nil, 0o644); err != nil {
		t.Fatalf("postmaptest: %v", err)
	}
	return postmap, confDir
}

// Build writes text ("key value" lines) to src and runs `postmap -c
// confDir table:src`, as an administrator makes a map; postmap writes
// src plus the table's suffix (.db, .cdb, .lmdb).
func Build(t testing.TB, postmap, confDir, table, src, text string) {
	t.Helper()
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatalf("postmaptest: %v", err)
	}
	if out, err := exec.Command(postmap, "-c", confDir, table+":"+src).CombinedOutput(); err != nil {
		t.Fatalf("postmaptest: postmap %s:%s: %v\n%s", table, src, err, out)
	}
}

// Query asks `postmap -c confDir -q - table:path` for every key at once
// (keys on standard input) and returns its answer lines, "key\tvalue" in
// input order, one for each key found.
func Query(t testing.TB, postmap, confDir, table, path string, keys []string) []string {
	t.Helper()
	cmd := exec.Command(postmap, "-c", confDir, "-q", "-", table+":"+path)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postmaptest: postmap -q - %s:%s: %v", table, path, err)
	}
	if len(out) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}
