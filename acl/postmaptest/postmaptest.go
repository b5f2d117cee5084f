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
