package auth

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Scheme names as Dovecot writes them between braces.
const (
	SchemeArgon2ID    = "ARGON2ID"
	SchemeArgon2I     = "ARGON2I"
	SchemeBlfCrypt    = "BLF-CRYPT"
	SchemeSHA512Crypt = "SHA512-CRYPT"
	SchemeSHA256Crypt = "SHA256-CRYPT"
	SchemeMD5Crypt    = "MD5-CRYPT"
	SchemeCrypt       = "CRYPT"
	SchemePlain       = "PLAIN"
	SchemeSSHA512     = "SSHA512"
	SchemeSHA512      = "SHA512"
)

// bcryptMaxPassword is the number of password bytes bcrypt uses; crypt(3)
// and Dovecot ignore the rest, and so does verification here.
const bcryptMaxPassword = 72

// ErrUnknownScheme is wrapped when a stored hash names a scheme this
// package cannot verify.
var ErrUnknownScheme = errors.New("unknown password scheme")

// verifier checks a password against one stored hash.
type verifier interface {
	// verify reports whether password matches, comparing derived bytes in
	// constant time.
	verify(password string) bool
	// scheme is the Dovecot scheme name the hash was stored under.
	scheme() string
	// dummy returns a hash of a random password with the same cost, so a
	// lookup of a missing user costs what a real one would.
	dummy() (verifier, error)
}

// ParseHash parses a stored password as found after the user name in the
// users file: "{SCHEME}data", or a bare crypt(3) string ("$y$…", "$6$…",
// "$5$…", "$2y$…", "$1$…"), which counts as {CRYPT}. It returns the scheme name. The error
// says what is wrong without echoing the hash.
func ParseHash(stored string) (scheme string, err error) {
	v, err := parseHash(stored)
	if err != nil {
		return "", err
	}
	return v.scheme(), nil
}

func parseHash(stored string) (verifier, error) {
	scheme, data := SchemeCrypt, stored
	if strings.HasPrefix(stored, "{") {
		end := strings.IndexByte(stored, '}')
		if end < 0 {
			return nil, errors.New("scheme has no closing '}'")
		}
		scheme, data = strings.ToUpper(stored[1:end]), stored[end+1:]
	} else if !strings.HasPrefix(stored, "$") {
		return nil, errors.New("password has no {SCHEME} prefix and is not a crypt(3) hash")
	}
	if data == "" {
		return nil, fmt.Errorf("empty {%s} password", scheme)
	}
	switch scheme {
	case SchemePlain, "CLEAR", "CLEARTEXT": // Dovecot's aliases
		return plainHash(data), nil
	case SchemeArgon2ID, SchemeArgon2I:
		h, err := parseArgon2(data)
		if err != nil {
			return nil, fmt.Errorf("{%s}: %w", scheme, err)
		}
		if h.variant != strings.ToLower(scheme) {
			return nil, fmt.Errorf("{%s} holds a $%s$ hash", scheme, h.variant)
		}
		return h, nil
	case SchemeBlfCrypt:
		if !isBcrypt(data) {
			return nil, fmt.Errorf("{%s} wants a $2y$, $2b$ or $2a$ hash", scheme)
		}
		return parseBcrypt(scheme, data)
	case SchemeSHA512Crypt, SchemeSHA256Crypt:
		want := sha512Crypt.prefix
		if scheme == SchemeSHA256Crypt {
			want = sha256Crypt.prefix
		}
		if !strings.HasPrefix(data, want) {
			return nil, fmt.Errorf("{%s} wants a %s hash", scheme, want)
		}
		return parseShaCryptHash(scheme, data)
	case SchemeMD5Crypt:
		return parseMD5Crypt(scheme, data)
	case SchemeCrypt:
		switch {
		case strings.HasPrefix(data, "$y$"):
			return parseYescryptHash(scheme, data)
		case strings.HasPrefix(data, "$6$"), strings.HasPrefix(data, "$5$"):
			return parseShaCryptHash(scheme, data)
		case strings.HasPrefix(data, md5CryptPrefix):
			return parseMD5Crypt(scheme, data)
		case isBcrypt(data):
			return parseBcrypt(scheme, data)
		case strings.HasPrefix(data, "$argon2"):
			// A bare PHC string (as libsodium writes) is unambiguous.
			h, err := parseArgon2(data)
			if err != nil {
				return nil, fmt.Errorf("{%s}: %w", scheme, err)
			}
			return h, nil
		}
		return nil, fmt.Errorf("{CRYPT}: unsupported crypt(3) format (supported: $y$, $6$, $5$, $2y$, $2b$, $2a$, $1$, $argon2id$, $argon2i$)")
	case SchemeSSHA512, SchemeSHA512,
		SchemeSSHA512 + ".HEX", SchemeSHA512 + ".HEX",
		SchemeSSHA512 + ".B64", SchemeSHA512 + ".B64",
		SchemeSSHA512 + ".BASE64", SchemeSHA512 + ".BASE64":
		return parseSHA512(scheme, data)
	}
	return nil, fmt.Errorf("%w {%s}", ErrUnknownScheme, scheme)
}

// plainHash is a {PLAIN} password: the password itself.
type plainHash string

func (p plainHash) verify(password string) bool {
	// ConstantTimeCompare returns early on differing lengths; that reveals
	// only the length of a password stored in clear text anyway.
	return subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
}
func (plainHash) scheme() string { return SchemePlain }
func (p plainHash) dummy() (verifier, error) {
	return plainHash(strings.Repeat("\x00", len(p))), nil
}

// bcryptHash is a bcrypt hash ($2y$, $2b$, $2a$).
type bcryptHash struct {
	name string
	hash []byte
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2y$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2a$")
}

func parseBcrypt(scheme, data string) (verifier, error) {
	// bcrypt.Cost parses the whole string and checks the cost range.
	if _, err := bcrypt.Cost([]byte(data)); err != nil {
		return nil, fmt.Errorf("{%s}: malformed bcrypt hash: %w", scheme, err)
	}
	if len(data) != 60 {
		return nil, fmt.Errorf("{%s}: malformed bcrypt hash: %d characters, want 60", scheme, len(data))
	}
	return bcryptHash{name: scheme, hash: []byte(data)}, nil
}

func (b bcryptHash) verify(password string) bool {
	pw := []byte(password)
	if len(pw) > bcryptMaxPassword {
		pw = pw[:bcryptMaxPassword]
	}
	// CompareHashAndPassword compares the derived bytes with
	// subtle.ConstantTimeCompare.
	return bcrypt.CompareHashAndPassword(b.hash, pw) == nil
}
func (b bcryptHash) scheme() string { return b.name }
func (b bcryptHash) dummy() (verifier, error) {
	cost, err := bcrypt.Cost(b.hash)
	if err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy bcrypt hash: %w", err)
	}
	return bcryptHash{name: b.name, hash: h}, nil
}

// shaCryptHash is a glibc SHA-crypt hash ($5$, $6$).
type shaCryptHash struct {
	name string
	p    shaCryptParams
}

func parseShaCryptHash(scheme, data string) (verifier, error) {
	p, err := parseShaCrypt(data)
	if err != nil {
		return nil, fmt.Errorf("{%s}: %w", scheme, err)
	}
	return shaCryptHash{name: scheme, p: p}, nil
}

func (s shaCryptHash) verify(password string) bool {
	got := s.p.digest([]byte(password))
	return subtle.ConstantTimeCompare(got, []byte(s.p.hash)) == 1
}
func (s shaCryptHash) scheme() string { return s.name }
func (s shaCryptHash) dummy() (verifier, error) {
	p := s.p
	salt := rand.Text() // base32 is within the crypt alphabet's letters and digits
	p.salt = salt[:min(len(salt), len(s.p.salt), shaCryptSaltMax)]
	p.hash = string(p.digest([]byte(rand.Text())))
	return shaCryptHash{name: s.name, p: p}, nil
}

// sha512Hash is Dovecot's {SHA512} (no salt) or {SSHA512} (salt appended
// to the digest), base64 or hex encoded.
type sha512Hash struct {
	name string
	sum  []byte
	salt []byte
}

func parseSHA512(scheme, data string) (verifier, error) {
	base, enc, _ := strings.Cut(scheme, ".")
	var raw []byte
	var err error
	switch enc {
	case "HEX":
		raw, err = hex.DecodeString(data)
	case "", "B64", "BASE64":
		if enc == "" && base == SchemeSHA512 && len(data) == hex.EncodedLen(sha512.Size) {
			// Like Dovecot: without a suffix, a digest of hex length is hex.
			if raw, err = hex.DecodeString(data); err == nil {
				break
			}
		}
		raw, err = base64.StdEncoding.DecodeString(data)
	}
	if err != nil {
		return nil, fmt.Errorf("{%s}: bad encoding: %w", scheme, err)
	}
	scheme = base
	switch {
	case scheme == SchemeSHA512 && len(raw) != sha512.Size:
		return nil, fmt.Errorf("{%s}: digest is %d bytes, want %d", scheme, len(raw), sha512.Size)
	case scheme == SchemeSSHA512 && len(raw) <= sha512.Size:
		return nil, fmt.Errorf("{%s}: %d bytes leave no salt after the %d-byte digest", scheme, len(raw), sha512.Size)
	}
	return sha512Hash{name: scheme, sum: raw[:sha512.Size], salt: raw[sha512.Size:]}, nil
}

func (s sha512Hash) verify(password string) bool {
	h := sha512.New()
	h.Write([]byte(password))
	h.Write(s.salt)
	return subtle.ConstantTimeCompare(h.Sum(nil), s.sum) == 1
}
func (s sha512Hash) scheme() string { return s.name }
func (s sha512Hash) dummy() (verifier, error) {
	d := sha512Hash{name: s.name, salt: make([]byte, len(s.salt))}
	rand.Read(d.salt)
	sum := sha512.Sum512([]byte(rand.Text()))
	d.sum = sum[:]
	return d, nil
}
