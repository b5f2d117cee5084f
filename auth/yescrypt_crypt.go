package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// The "$y$" crypt(3) string of yescrypt: "$y$" PARAMS "$" SALT "$" HASH.
// PARAMS are variable-length numbers in yescrypt's own base-64 encoding
// (flavor, log2 N, r, and optionally a "have" mask followed by p, t, g and
// log2 NROM); SALT and HASH are bytes in its little-endian base-64 (least
// significant 6 bits first), which differs from both RFC 4648 and the
// byte order SHA-crypt uses. The reference is yescrypt-common.c.

// yescryptHashChars is the length of the encoded 32-byte hash.
const yescryptHashChars = 43

// errYescryptFormat is wrapped by every parse failure of a "$y$" string.
var errYescryptFormat = errors.New("malformed yescrypt hash")

// atoi64 maps a crypt alphabet character to its value, or -1.
func atoi64(c byte) int {
	switch {
	case c == '.' || c == '/':
		return int(c - '.') // '.'=0, '/'=1
	case c >= '0' && c <= '9':
		return int(c-'0') + 2
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 12
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 38
	}
	return -1
}

// decode64Uint32 reads one variable-length number (decode64_uint32): the
// first character says how many follow. Values start at min. It returns
// the rest of src.
func decode64Uint32(src string, min uint32) (uint32, string, error) {
	if src == "" {
		return 0, "", fmt.Errorf("%w: parameters end early", errYescryptFormat)
	}
	c := atoi64(src[0])
	if c < 0 {
		return 0, "", fmt.Errorf("%w: character %q in the parameters", errYescryptFormat, src[0])
	}
	src = src[1:]
	start, end, chars, shift := uint64(0), uint64(47), 1, uint(0)
	val := uint64(min)
	for uint64(c) > end {
		val += (end + 1 - start) << shift
		start = end + 1
		end = start + (62-end)/2
		chars++
		shift += 6
	}
	val += (uint64(c) - start) << shift
	for chars--; chars > 0; chars-- {
		if src == "" {
			return 0, "", fmt.Errorf("%w: parameters end early", errYescryptFormat)
		}
		d := atoi64(src[0])
		if d < 0 {
			return 0, "", fmt.Errorf("%w: character %q in the parameters", errYescryptFormat, src[0])
		}
		src = src[1:]
		shift -= 6
		val += uint64(d) << shift
	}
	if val > 1<<32-1 {
		return 0, "", fmt.Errorf("%w: parameter out of range", errYescryptFormat)
	}
	return uint32(val), src, nil
}

// decode64Bytes decodes yescrypt's little-endian base-64 (decode64): each
// group of up to 4 characters gives up to 3 bytes, least significant
// first; a final partial group must leave no stray bits set.
func decode64Bytes(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4)
	for len(s) > 0 {
		n := min(len(s), 4)
		if n == 1 {
			return nil, fmt.Errorf("%w: base-64 ends in a lone character", errYescryptFormat)
		}
		var v uint32
		for i := range n {
			c := atoi64(s[i])
			if c < 0 {
				return nil, fmt.Errorf("%w: character %q outside the crypt alphabet", errYescryptFormat, s[i])
			}
			v |= uint32(c) << (6 * i)
		}
		nb := n * 6 / 8
		for range nb {
			out = append(out, byte(v))
			v >>= 8
		}
		if v != 0 {
			return nil, fmt.Errorf("%w: stray bits in base-64", errYescryptFormat)
		}
		s = s[n:]
	}
	return out, nil
}

// encode64Bytes is the inverse of decode64Bytes (encode64).
func encode64Bytes(src []byte) string {
	var b strings.Builder
	for i := 0; i < len(src); i += 3 {
		var v uint32
		n := min(len(src)-i, 3)
		for k := range n {
			v |= uint32(src[i+k]) << (8 * k)
		}
		for range (n*8 + 5) / 6 {
			b.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	return b.String()
}

// yescryptSetting is a parsed "$y$" string.
type yescryptSetting struct {
	params  yescryptParams
	prefix  string // "$y$PARAMS$SALT$", what crypt(3) prints before the hash
	salt    []byte
	encoded string // the 43-character hash; empty for a setting alone
}

// parseYescrypt parses a "$y$" setting (withHash false) or a full hash.
// It refuses what libxcrypt refuses (ROM, hash upgrades, unknown
// flavors) and costs above this package's limits.
func parseYescrypt(s string, withHash bool) (yescryptSetting, error) {
	var ys yescryptSetting
	rest, ok := strings.CutPrefix(s, "$y$")
	if !ok {
		return ys, fmt.Errorf("%w: want $y$ prefix", errYescryptFormat)
	}
	flavor, rest, err := decode64Uint32(rest, 0)
	if err != nil {
		return ys, err
	}
	yp := yescryptParams{p: 1}
	switch {
	case flavor < yescryptRW:
		yp.flags = flavor
	case flavor <= yescryptRW+(yescryptFlavorMask>>2):
		yp.flags = yescryptRW + (flavor-yescryptRW)<<2
	default:
		return ys, fmt.Errorf("%w: unknown flavor %d", errYescryptFormat, flavor)
	}
	nLog2, rest, err := decode64Uint32(rest, 1)
	if err != nil {
		return ys, err
	}
	if nLog2 > 63 {
		return ys, fmt.Errorf("%w: log2(N)=%d", errYescryptFormat, nLog2)
	}
	yp.n = 1 << nLog2
	if yp.r, rest, err = decode64Uint32(rest, 1); err != nil {
		return ys, err
	}
	if rest != "" && rest[0] != '$' {
		var have uint32
		if have, rest, err = decode64Uint32(rest, 1); err != nil {
			return ys, err
		}
		if have&^3 != 0 {
			// 4: g (hash upgrades), 8: NROM (a ROM): libxcrypt has neither.
			return ys, fmt.Errorf("%w: hash upgrades and ROMs are not supported", errYescryptFormat)
		}
		if have&1 != 0 {
			if yp.p, rest, err = decode64Uint32(rest, 2); err != nil {
				return ys, err
			}
		}
		if have&2 != 0 {
			if yp.t, rest, err = decode64Uint32(rest, 1); err != nil {
				return ys, err
			}
		}
	}
	rest, ok = strings.CutPrefix(rest, "$")
	if !ok {
		return ys, fmt.Errorf("%w: no $ after the parameters", errYescryptFormat)
	}
	if err := yp.check(); err != nil {
		return ys, fmt.Errorf("%w: %w", errYescryptFormat, err)
	}
	saltStr, encoded, found := strings.Cut(rest, "$")
	if withHash && !found {
		return ys, fmt.Errorf("%w: missing $ before the hash", errYescryptFormat)
	}
	if len(saltStr) > (64*8+5)/6 {
		return ys, fmt.Errorf("%w: salt longer than 64 bytes", errYescryptFormat)
	}
	if ys.salt, err = decode64Bytes(saltStr); err != nil {
		return ys, fmt.Errorf("salt: %w", err)
	}
	if withHash {
		if len(encoded) != yescryptHashChars {
			return ys, fmt.Errorf("%w: hash is %d characters, want %d", errYescryptFormat, len(encoded), yescryptHashChars)
		}
		if raw, err := decode64Bytes(encoded); err != nil || len(raw) != 32 {
			return ys, fmt.Errorf("%w: hash is not 32 bytes of base-64", errYescryptFormat)
		}
		ys.encoded = encoded
	}
	ys.params = yp
	ys.prefix = s[:len(s)-len(rest)] + saltStr + "$"
	return ys, nil
}

// digest computes the encoded hash of password under this setting.
func (ys yescryptSetting) digest(password []byte) string {
	return encode64Bytes(yescryptKDF(password, ys.salt, ys.params))
}

// yescryptHash is a "$y$" hash, stored as {CRYPT}$y$… or {YESCRYPT}$y$….
type yescryptHash struct {
	name string
	ys   yescryptSetting
}

func parseYescryptHash(scheme, data string) (verifier, error) {
	ys, err := parseYescrypt(data, true)
	if err != nil {
		return nil, fmt.Errorf("{%s}: %w", scheme, err)
	}
	return yescryptHash{name: scheme, ys: ys}, nil
}

func (y yescryptHash) verify(password string) bool {
	got := y.ys.digest([]byte(password))
	return subtle.ConstantTimeCompare([]byte(got), []byte(y.ys.encoded)) == 1
}

func (y yescryptHash) scheme() string { return y.name }

func (y yescryptHash) dummy() (verifier, error) {
	d := y.ys
	d.salt = make([]byte, len(y.ys.salt))
	rand.Read(d.salt)
	// Same parameters: keep everything of the prefix up to the salt.
	params := strings.TrimSuffix(y.ys.prefix, "$")
	params = params[:strings.LastIndexByte(params, '$')+1]
	d.prefix = params + encode64Bytes(d.salt) + "$"
	d.encoded = d.digest([]byte(rand.Text()))
	return yescryptHash{name: y.name, ys: d}, nil
}
