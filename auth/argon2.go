package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Defaults for new passwords: OWASP's Password Storage Cheat Sheet
// recommends Argon2id with m=19 MiB, t=2, p=1 as its minimum configuration.
const (
	DefaultArgon2MemoryKiB = 19456
	DefaultArgon2Time      = 2
	DefaultArgon2Threads   = 1
	argon2SaltLen          = 16 // libsodium's crypto_pwhash_SALTBYTES, as Dovecot writes
	argon2KeyLen           = 32 // libsodium's crypto_pwhash_STRBYTES hash part, as Dovecot writes
)

// Bounds on stored parameters, so a damaged or hostile users file cannot
// make one login allocate unbounded memory or run for hours.
const (
	argon2Version       = argon2.Version // 19 (0x13); v=16 hashes are not supported by x/crypto
	maxArgon2MemoryKiB  = 4 << 20        // 4 GiB
	maxArgon2Time       = 1 << 10
	minArgon2SaltLen    = 8 // RFC 9106 §3.1: salt at least 8 bytes
	maxArgon2SaltLen    = 64
	minArgon2KeyLen     = 16 // libsodium's crypto_pwhash_BYTES_MIN
	maxArgon2KeyLen     = 128
	argon2ParamsPattern = "m=N,t=N,p=N"
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// argon2Hash is a PHC-format Argon2 hash as libsodium and Dovecot write it:
// $argon2id$v=19$m=65536,t=3,p=1$salt$hash.
type argon2Hash struct {
	variant string // "argon2id" or "argon2i"
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var errArgon2Format = errors.New("malformed Argon2 PHC string")

func parseArgon2(s string) (*argon2Hash, error) {
	// "", variant, "v=19", params, salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$%s$salt$hash", errArgon2Format, argon2ParamsPattern)
	}
	h := &argon2Hash{variant: parts[1]}
	if h.variant != "argon2id" && h.variant != "argon2i" {
		return nil, fmt.Errorf("%w: unsupported variant %q", errArgon2Format, h.variant)
	}
	if parts[2] != "v="+strconv.Itoa(argon2Version) {
		return nil, fmt.Errorf("%w: unsupported version %q, want v=%d", errArgon2Format, parts[2], argon2Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: parameters %q, want %s", errArgon2Format, parts[3], argon2ParamsPattern)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		num, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return nil, fmt.Errorf("%w: parameters %q, want %s", errArgon2Format, parts[3], argon2ParamsPattern)
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || num[0] == '+' {
			return nil, fmt.Errorf("%w: parameter %q is not a number", errArgon2Format, params[i])
		}
		vals[i] = n
	}
	switch m, t, p := vals[0], vals[1], vals[2]; {
	case p < 1 || p > 255:
		return nil, fmt.Errorf("%w: p=%d outside 1..255", errArgon2Format, p)
	case m < 8*p || m > maxArgon2MemoryKiB:
		return nil, fmt.Errorf("%w: m=%d outside %d..%d KiB", errArgon2Format, m, 8*p, maxArgon2MemoryKiB)
	case t < 1 || t > maxArgon2Time:
		return nil, fmt.Errorf("%w: t=%d outside 1..%d", errArgon2Format, t, maxArgon2Time)
	}
	h.memory, h.time, h.threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	var err error
	if h.salt, err = decodePHC(parts[4]); err != nil {
		return nil, fmt.Errorf("%w: salt: %w", errArgon2Format, err)
	}
	if h.key, err = decodePHC(parts[5]); err != nil {
		return nil, fmt.Errorf("%w: hash: %w", errArgon2Format, err)
	}
	if len(h.salt) < minArgon2SaltLen || len(h.salt) > maxArgon2SaltLen {
		return nil, fmt.Errorf("%w: salt is %d bytes, want %d..%d", errArgon2Format, len(h.salt), minArgon2SaltLen, maxArgon2SaltLen)
	}
	if len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen {
		return nil, fmt.Errorf("%w: hash is %d bytes, want %d..%d", errArgon2Format, len(h.key), minArgon2KeyLen, maxArgon2KeyLen)
	}
	return h, nil
}

// decodePHC decodes unpadded base64 (PHC); padding some tools add is tolerated.
func decodePHC(s string) ([]byte, error) {
	return b64.DecodeString(strings.TrimRight(s, "="))
}

func (h *argon2Hash) derive(password string) []byte {
	if h.variant == "argon2i" {
		return argon2.Key([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	}
	return argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
}

func (h *argon2Hash) verify(password string) bool {
	return subtle.ConstantTimeCompare(h.derive(password), h.key) == 1
}

func (h *argon2Hash) scheme() string { return strings.ToUpper(h.variant) }

func (h *argon2Hash) dummy() (verifier, error) {
	d := *h
	d.salt = make([]byte, len(h.salt))
	rand.Read(d.salt)
	d.key = d.derive(rand.Text())
	return &d, nil
}

// String writes the hash in PHC form, without the {SCHEME} prefix.
func (h *argon2Hash) String() string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", h.variant, argon2Version,
		h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// HashPassword hashes a new password with the default scheme, {ARGON2ID}
// with m=19456 KiB, t=2, p=1, a 16-byte random salt and a 32-byte key,
// in the form Dovecot writes and `doveadm pw -t` accepts:
//
//	{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("auth: hash password: empty password")
	}
	if len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("auth: hash password: longer than %d bytes, which login would refuse", MaxPasswordLen)
	}
	h := &argon2Hash{
		variant: "argon2id",
		memory:  DefaultArgon2MemoryKiB,
		time:    DefaultArgon2Time,
		threads: DefaultArgon2Threads,
		salt:    make([]byte, argon2SaltLen),
	}
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program instead if the system's generator fails.
	rand.Read(h.salt)
	h.key = argon2.IDKey([]byte(pw), h.salt, h.time, h.memory, h.threads, argon2KeyLen)
	return "{" + SchemeArgon2ID + "}" + h.String(), nil
}
