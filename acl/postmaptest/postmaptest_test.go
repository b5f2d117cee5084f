//go:build interop

package postmaptest_test

import (
	"os"
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
	if err := os.WriteFile(src, []byte("192.168.0 RELAY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(postmap, "-c", dir, "cdb:"+src).CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v\n%s", err, out)
	}
	out, err := exec.Command(postmap, "-c", dir, "-q", "192.168.0", "cdb:"+src).Output()
	if err != nil || strings.TrimSpace(string(out)) != "RELAY" {
		t.Fatalf("postmap -q = %q, %v; want RELAY", out, err)
	}
	if out, err := exec.Command(postmap, "-c", dir, "-q", "10.0.0.1", "cdb:"+src).Output(); err == nil {
		t.Fatalf("postmap -q of a missing key = %q, want exit status 1", out)
	}
}
