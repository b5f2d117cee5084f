//go:build interop

package auth

import (
	"crypto/rand"
	"os/exec"
	"strings"
	"testing"
)

// TestInteropOpenSSLShaCrypt hashes fresh random passwords with random
// salts using `openssl passwd -5/-6` and verifies them here, beyond the
// committed vectors.
func TestInteropOpenSSLShaCrypt(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is required for interop tests: ", err)
	}
	for _, flag := range []string{"-5", "-6"} {
		for i := range 5 {
			pw := rand.Text()[:5+i*5] + " ü:"
			salt := rand.Text()[:4+i*3]
			out, err := exec.Command("openssl", "passwd", flag, "-salt", salt, pw).Output()
			if err != nil {
				t.Fatalf("openssl passwd %s: %v", flag, err)
			}
			stored := strings.TrimSpace(string(out))
			v, err := parseHash(stored)
			if err != nil {
				t.Fatalf("%s: %v", stored, err)
			}
			if !v.verify(pw) || v.verify(pw+"x") {
				t.Errorf("openssl passwd %s -salt %s %q = %s: not verified", flag, salt, pw, stored)
			}
			p, _ := shaCryptSetting(stored)
			if got := p.shaCryptString(pw); got != stored {
				t.Errorf("computed %s, openssl %s", got, stored)
			}
		}
	}
}
