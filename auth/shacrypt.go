package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt ("Unix crypt using SHA-256 and SHA-512", Ulrich Drepper, 2007-2008),
// the $5$ and $6$ hashes of glibc's crypt(3), Dovecot's SHA256-CRYPT and
// SHA512-CRYPT. Implemented here from the specification; the spec's own
// test vectors and hashes made by mkpasswd, openssl and doveadm check it.
const (
	shaCryptSaltMax       = 16        // spec: "the salt string is limited to 16 characters"
	shaCryptRoundsDefault = 5000      // spec: used when no rounds=N is given
	shaCryptRoundsMin     = 1000      // spec: smaller values are raised to this
	shaCryptRoundsMax     = 999999999 // spec: larger values are lowered to this
	shaCryptRoundsPrefix  = "rounds="
)

// cryptAlphabet is crypt(3)'s base-64 alphabet (not RFC 4648's).
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// shaCryptVariant holds what differs between $5$ and $6$: the hash and the
// order in which the final digest's bytes are encoded (spec, step 22).
type shaCryptVariant struct {
	prefix  string
	newHash func() hash.Hash
	// order lists byte triples (spec, step 22), most significant first, each encoded as 4
	// characters; tail is the last partial group.
	order [][3]int
	tail  []int // indexes of the last group's bytes, most significant first; -1 means a zero byte
	// tailChars is how many characters the tail group yields.
	tailChars int
}

var (
	// errShaCryptFormat is wrapped by every parse failure of a $5$/$6$ string.
	errShaCryptFormat = errors.New("malformed SHA-crypt hash")

	sha256Crypt = shaCryptVariant{
		prefix: "$5$", newHash: sha256.New,
		order: [][3]int{
			{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
			{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
		},
		tail:      []int{-1, 31, 30},
		tailChars: 3,
	}
	sha512Crypt = shaCryptVariant{
		prefix: "$6$", newHash: sha512.New,
		order: [][3]int{
			{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26},
			{6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32},
			{12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38},
			{18, 39, 60}, {40, 61, 19}, {62, 20, 41},
		},
		tail:      []int{-1, -1, 63},
		tailChars: 2,
	}
)

// shaCryptParams is a parsed $5$/$6$ string.
type shaCryptParams struct {
	v            *shaCryptVariant
	rounds       int
	roundsCustom bool   // rounds= was present (it is then repeated in the output)
	salt         string // at most 16 characters
	hash         string // encoded digest; empty when parsing a setting only
}

// parseShaCrypt parses "$6$[rounds=N$]salt$hash". Like glibc it takes at most
// 16 characters of salt and clamps rounds into [1000, 999999999]. The
// encoded hash must have exactly the right length and alphabet.
func parseShaCrypt(s string) (shaCryptParams, error) {
	var p shaCryptParams
	switch {
	case strings.HasPrefix(s, sha512Crypt.prefix):
		p.v = &sha512Crypt
	case strings.HasPrefix(s, sha256Crypt.prefix):
		p.v = &sha256Crypt
	default:
		return p, fmt.Errorf("%w: want $5$ or $6$ prefix", errShaCryptFormat)
	}
	rest := s[len(p.v.prefix):]
	p.rounds = shaCryptRoundsDefault
	if after, ok := strings.CutPrefix(rest, shaCryptRoundsPrefix); ok {
		num, tail, found := strings.Cut(after, "$")
		if !found {
			return p, fmt.Errorf("%w: rounds= without $", errShaCryptFormat)
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || num == "" || num[0] == '+' {
			return p, fmt.Errorf("%w: bad rounds %q", errShaCryptFormat, num)
		}
		p.rounds = int(min(max(n, shaCryptRoundsMin), shaCryptRoundsMax))
		p.roundsCustom = true
		rest = tail
	}
	salt, encoded, found := strings.Cut(rest, "$")
	if !found {
		return p, fmt.Errorf("%w: missing $ before the hash", errShaCryptFormat)
	}
	if len(salt) > shaCryptSaltMax {
		// glibc silently truncates the salt; a stored hash never has a
		// longer one, so a longer one means the string is damaged.
		return p, fmt.Errorf("%w: salt longer than %d characters", errShaCryptFormat, shaCryptSaltMax)
	}
	if strings.ContainsAny(salt, "$:\n") {
		return p, fmt.Errorf("%w: bad character in salt", errShaCryptFormat)
	}
	p.salt = salt
	want := 4*len(p.v.order) + p.v.tailChars
	if len(encoded) != want {
		return p, fmt.Errorf("%w: hash is %d characters, want %d", errShaCryptFormat, len(encoded), want)
	}
	for i := range len(encoded) {
		if strings.IndexByte(cryptAlphabet, encoded[i]) < 0 {
			return p, fmt.Errorf("%w: character %q outside the crypt alphabet", errShaCryptFormat, encoded[i])
		}
	}
	p.hash = encoded
	return p, nil
}

// shaCryptSetting turns a salt specification such as "$6$rounds=10$salt"
// (the spec's test-vector form, hash absent) into params; the salt is
// truncated to 16 characters like glibc does.
func shaCryptSetting(setting string) (shaCryptParams, error) {
	var p shaCryptParams
	switch {
	case strings.HasPrefix(setting, sha512Crypt.prefix):
		p.v = &sha512Crypt
	case strings.HasPrefix(setting, sha256Crypt.prefix):
		p.v = &sha256Crypt
	default:
		return p, fmt.Errorf("%w: want $5$ or $6$ prefix", errShaCryptFormat)
	}
	rest := setting[len(p.v.prefix):]
	p.rounds = shaCryptRoundsDefault
	if after, ok := strings.CutPrefix(rest, shaCryptRoundsPrefix); ok {
		num, tail, found := strings.Cut(after, "$")
		n, err := strconv.ParseUint(num, 10, 64)
		if !found || err != nil {
			return p, fmt.Errorf("%w: bad rounds %q", errShaCryptFormat, num)
		}
		p.rounds = int(min(max(n, shaCryptRoundsMin), shaCryptRoundsMax))
		p.roundsCustom = true
		rest = tail
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > shaCryptSaltMax {
		salt = salt[:shaCryptSaltMax]
	}
	p.salt = salt
	return p, nil
}

// prefixString is everything before the encoded digest, including the
// final '$', exactly as crypt(3) prints it.
func (p shaCryptParams) prefixString() string {
	var b strings.Builder
	b.WriteString(p.v.prefix)
	if p.roundsCustom {
		b.WriteString(shaCryptRoundsPrefix)
		b.WriteString(strconv.Itoa(p.rounds))
		b.WriteByte('$')
	}
	b.WriteString(p.salt)
	b.WriteByte('$')
	return b.String()
}

// digest runs the algorithm (spec steps 1-21) and returns the encoded hash
// (step 22) without the prefix.
func (p shaCryptParams) digest(password []byte) []byte {
	salt := []byte(p.salt)
	h := p.v.newHash()
	size := h.Size()

	// Steps 4-8: digest B = H(password salt password).
	h.Write(password)
	h.Write(salt)
	h.Write(password)
	b := h.Sum(nil)

	// Steps 1-3, 9-12: digest A.
	h.Reset()
	h.Write(password)
	h.Write(salt)
	n := len(password)
	for ; n > size; n -= size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n = len(password); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(password)
		}
	}
	a := h.Sum(nil)

	// Steps 13-16: P, the password hashed len(password) times, stretched.
	h.Reset()
	for range len(password) {
		h.Write(password)
	}
	dp := h.Sum(nil)
	pBytes := make([]byte, 0, len(password))
	for n = len(password); n > size; n -= size {
		pBytes = append(pBytes, dp...)
	}
	pBytes = append(pBytes, dp[:n]...)

	// Steps 17-20: S, the salt hashed 16+A[0] times, cut to the salt length.
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	ds := h.Sum(nil)
	sBytes := make([]byte, 0, len(salt))
	for n = len(salt); n > size; n -= size {
		sBytes = append(sBytes, ds...)
	}
	sBytes = append(sBytes, ds[:n]...)

	// Step 21: the rounds.
	c := a
	for i := range p.rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pBytes)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(pBytes)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pBytes)
		}
		c = h.Sum(c[:0])
	}

	// Step 22: encode.
	out := make([]byte, 0, 4*len(p.v.order)+p.v.tailChars)
	for _, t := range p.v.order {
		out = appendCrypt64(out, c[t[0]], c[t[1]], c[t[2]], 4)
	}
	var tail [3]byte
	for i, idx := range p.v.tail {
		if idx >= 0 {
			tail[i] = c[idx]
		}
	}
	return appendCrypt64(out, tail[0], tail[1], tail[2], p.v.tailChars)
}

// appendCrypt64 is the spec's b64_from_24bit: the 24-bit group b2 b1 b0
// written as n characters, least significant 6 bits first.
func appendCrypt64(dst []byte, b2, b1, b0 byte, n int) []byte {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		dst = append(dst, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return dst
}

// shaCryptString computes the full crypt(3) string for a password.
func (p shaCryptParams) shaCryptString(password string) string {
	return p.prefixString() + string(p.digest([]byte(password)))
}
