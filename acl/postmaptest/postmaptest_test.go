//go:build interop

package postmaptest_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/acl/postmaptest"
)

// TestInteropPostmapUsesPrivateConfig: postmap builds and queries a cdb
// map with only the private, empty main.cf, and a missing key is not
// found.
func TestInteropPostmapUsesPrivateConfig(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	src := filepath.Join(dir, "access")
	postmaptest.Build(t, postmap, dir, "cdb", src, "192.168.0 RELAY\n")
	if got := postmaptest.Query(t, postmap, dir, "cdb", src, []string{"10.0.0.1", "192.168.0"}); len(got) != 1 || got[0] != "192.168.0\tRELAY" {
		t.Fatalf("postmap -q - = %q, want the one key found", got)
	}
	out, err := exec.Command(postmap, "-c", dir, "-q", "192.168.0", "cdb:"+src).Output()
	if err != nil || strings.TrimSpace(string(out)) != "RELAY" {
		t.Fatalf("postmap -q = %q, %v; want RELAY", out, err)
	}
	if out, err := exec.Command(postmap, "-c", dir, "-q", "10.0.0.1", "cdb:"+src).Output(); err == nil {
		t.Fatalf("postmap -q of a missing key = %q, want exit status 1", out)
	}
}
