//go:build interop

package auth

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"
)

// mkpasswd runs Debian's mkpasswd (package whois, libxcrypt's crypt(3))
// with the password on stdin.
func mkpasswd(t *testing.T, pw string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("mkpasswd")
	if err != nil {
		t.Fatal("mkpasswd (Debian package whois) is required for interop tests: ", err)
	}
	cmd := exec.Command(path, append(args, "--stdin")...)
	cmd.Stdin = strings.NewReader(pw + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkpasswd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// randomPassword is 1-40 printable characters, some non-ASCII.
func randomPassword() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(40))
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#%&()*+,-./:;<=>?@[]^_{|}~äöüßé€")
	out := make([]rune, n.Int64()+1)
	for i := range out {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		out[i] = alphabet[k.Int64()]
	}
	return strings.TrimSpace(string(out)) + "x" // mkpasswd --stdin strips trailing blanks
}

// TestInteropMkpasswdSchemes: random passwords hashed by libxcrypt with
// every method /etc/shadow may hold and popgate imports; each must verify
// here with the right password and fail with a wrong one.
func TestInteropMkpasswdSchemes(t *testing.T) {
	for _, method := range []string{"yescrypt", "sha-512", "sha-256", "md5crypt", "bcrypt"} {
		for range 4 {
			pw := randomPassword()
			args := []string{"-m", method}
			if method == "bcrypt" {
				args = append(args, "-R", "5")
			}
			stored := mkpasswd(t, pw, args...)
			v, err := parseHash(stored)
			if err != nil {
				t.Fatalf("mkpasswd -m %s: %s: %v", method, stored, err)
			}
			if !v.verify(pw) {
				t.Errorf("mkpasswd -m %s %q = %s: not verified", method, pw, stored)
			}
			if v.verify(pw + "!") {
				t.Errorf("mkpasswd -m %s %q = %s: wrong password verified", method, pw, stored)
			}
		}
	}
}

// TestInteropYescryptCosts fails if the pure-Go yescrypt disagrees with
// libxcrypt at any cost mkpasswd offers up to 64 MiB (-R 1: N=1024 r=8 …
// -R 7: N=16384 r=32), including Debian's default (5), and also at the
// settings only a hand-made setting reaches (p > 1, t > 0, classic scrypt
// and WORM), hashed by libxcrypt through Python's crypt module.
func TestInteropYescryptCosts(t *testing.T) {
	for cost := 1; cost <= 7; cost++ {
		pw := randomPassword()
		stored := mkpasswd(t, pw, "-m", "yescrypt", "-R", fmt.Sprint(cost))
		ys, err := parseYescrypt(stored, true)
		if err != nil {
			t.Fatalf("-R %d: %s: %v", cost, stored, err)
		}
		if got := ys.prefix + ys.digest([]byte(pw)); got != stored {
			t.Errorf("-R %d, password %q (N=%d r=%d):\n libxcrypt %s\n     here %s", cost, pw, ys.params.n, ys.params.r, stored, got)
		}
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required: ", err)
	}
	salt := encode64Bytes([]byte(rand.Text())[:16])
	for _, params := range []string{"j75..", "j75/.", "j75//", "j750.0", "j850.0", "j65.A", ".75", ".65..", "/75", "/75/.", "/65//"} {
		pw := randomPassword()
		setting := "$y$" + params + "$" + salt + "$"
		out, err := exec.Command(python, "-W", "ignore", "-c",
			"import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))", pw, setting).Output()
		if err != nil {
			t.Fatalf("python3 crypt %s: %v", setting, err)
		}
		stored := strings.TrimSpace(string(out))
		if !strings.HasPrefix(stored, setting) {
			t.Fatalf("libxcrypt refused %s: %q", setting, stored)
		}
		ys, err := parseYescrypt(stored, true)
		if err != nil {
			t.Fatalf("%s: %v", stored, err)
		}
		if got := ys.prefix + ys.digest([]byte(pw)); got != stored {
			t.Errorf("%s, password %q (%+v):\n libxcrypt %s\n     here %s", setting, pw, ys.params, stored, got)
		}
	}
}
