package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// MD5-crypt ("$1$"), Poul-Henning Kamp's 1994 FreeBSD algorithm, found in
// old /etc/shadow files and as Dovecot's MD5-CRYPT. It is weak (1000 MD5
// rounds, seconds per million guesses on a GPU): it is accepted so users
// migrated from an old server can log in, and the users file load warns
// about it. Implemented here from the algorithm's description; the tests
// check it against glibc/libxcrypt's `mkpasswd -m md5crypt` and
// `openssl passwd -1`.
const (
	md5CryptPrefix  = "$1$"
	md5CryptSaltMax = 8 // PHK: "the salt is at most 8 characters"
	md5CryptRounds  = 1000
	md5CryptChars   = 22 // 16 bytes in crypt base-64
)

// errMD5CryptFormat is wrapped by every parse failure of a "$1$" string.
var errMD5CryptFormat = errors.New("malformed MD5-crypt hash")

// md5CryptHash is a parsed "$1$salt$hash".
type md5CryptHash struct {
	name    string
	salt    string
	encoded string
}

func parseMD5Crypt(scheme, data string) (verifier, error) {
	rest, ok := strings.CutPrefix(data, md5CryptPrefix)
	if !ok {
		return nil, fmt.Errorf("{%s}: %w: want $1$ prefix", scheme, errMD5CryptFormat)
	}
	salt, encoded, found := strings.Cut(rest, "$")
	switch {
	case !found:
		return nil, fmt.Errorf("{%s}: %w: missing $ before the hash", scheme, errMD5CryptFormat)
	case len(salt) > md5CryptSaltMax:
		return nil, fmt.Errorf("{%s}: %w: salt longer than %d characters", scheme, errMD5CryptFormat, md5CryptSaltMax)
	case strings.ContainsAny(salt, ":\n"):
		return nil, fmt.Errorf("{%s}: %w: bad character in salt", scheme, errMD5CryptFormat)
	case len(encoded) != md5CryptChars:
		return nil, fmt.Errorf("{%s}: %w: hash is %d characters, want %d", scheme, errMD5CryptFormat, len(encoded), md5CryptChars)
	}
	for i := range len(encoded) {
		if strings.IndexByte(cryptAlphabet, encoded[i]) < 0 {
			return nil, fmt.Errorf("{%s}: %w: character %q outside the crypt alphabet", scheme, errMD5CryptFormat, encoded[i])
		}
	}
	return md5CryptHash{name: scheme, salt: salt, encoded: encoded}, nil
}

// md5CryptDigest runs the algorithm and returns the 22-character hash.
func md5CryptDigest(password, salt []byte) []byte {
	// Alternate sum: MD5(password salt password).
	h := md5.New()
	h.Write(password)
	h.Write(salt)
	h.Write(password)
	alt := h.Sum(nil)

	h.Reset()
	h.Write(password)
	h.Write([]byte(md5CryptPrefix))
	h.Write(salt)
	for n := len(password); n > 0; n -= md5.Size {
		h.Write(alt[:min(n, md5.Size)])
	}
	// The original's quirk: for each bit of the length, a NUL byte for a
	// one and the password's first byte for a zero.
	for n := len(password); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(password[:1])
		}
	}
	final := h.Sum(nil)

	// 1000 rounds "to slow things down".
	for i := range md5CryptRounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(password)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write(salt)
		}
		if i%7 != 0 {
			h.Write(password)
		}
		if i&1 != 0 {
			h.Write(final)
		} else {
			h.Write(password)
		}
		final = h.Sum(final[:0])
	}

	out := make([]byte, 0, md5CryptChars)
	for _, t := range [5][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		out = appendCrypt64(out, final[t[0]], final[t[1]], final[t[2]], 4)
	}
	return appendCrypt64(out, 0, 0, final[11], 2)
}

func (m md5CryptHash) verify(password string) bool {
	got := md5CryptDigest([]byte(password), []byte(m.salt))
	return subtle.ConstantTimeCompare(got, []byte(m.encoded)) == 1
}

func (m md5CryptHash) scheme() string { return m.name }

func (m md5CryptHash) dummy() (verifier, error) {
	salt := rand.Text()[:max(len(m.salt), 1)]
	return md5CryptHash{name: m.name, salt: salt, encoded: string(md5CryptDigest([]byte(rand.Text()), []byte(salt)))}, nil
}
