package maildir

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Limits on POP3 unique-ids, RFC 1939 §7 (UIDL): 1 to 70 characters, each
// in the range 0x21 to 0x7E.
const (
	maxUIDLen = 70
	minUIDChr = 0x21
	maxUIDChr = 0x7E
)

// infoSep starts the info part of a maildir name ("<base>:2,<flags>"), as
// the maildir specification defines it; only version 2 info is understood.
const infoSep = ":2,"

// hashedUIDPrefix marks a UID derived from a hash because the file name
// itself is not a valid POP3 unique-id.
const hashedUIDPrefix = "H"

// nameInfo is what a maildir file name tells without opening the file.
type nameInfo struct {
	base   string // name without the ":2,..." info part; stable across new/ -> cur/
	flags  string // flags after ":2,", empty when none or no info part
	uid    string // POP3 unique-id (RFC 1939 §7)
	ts     int64  // leading decimal timestamp; -1 if the name has none
	rest   string // base after the timestamp, used to order within a second
	wsize  int64  // CRLF size from ",W=", or -1 when absent or unusable
	ownUID bool   // uid comes from a ",U=" or ",X=" field (an imported message)
}

// parseName extracts the UID, the ordering key and, when present, the
// CRLF size from a maildir file name. It never fails: any name yields a
// valid UID, either the base name itself or a hash of it.
func parseName(name string) nameInfo {
	ni := nameInfo{base: name, ts: -1, wsize: -1}
	if i := strings.Index(name, infoSep); i >= 0 {
		ni.base, ni.flags = name[:i], name[i+len(infoSep):]
	}
	if u, ok := uidField(ni.base); ok {
		ni.uid, ni.ownUID = u, true
	} else {
		ni.uid = uidFor(ni.base)
	}
	ni.ts, ni.rest = splitTimestamp(ni.base)
	ni.wsize = sizeField(ni.base, "W=")
	return ni
}

// uidFor returns base when it is a valid POP3 unique-id and otherwise a
// stable substitute: "H" followed by the hex SHA-256 of base (65 chars).
func uidFor(base string) string {
	if validUID(base) {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	return hashedUIDPrefix + hex.EncodeToString(sum[:])
}

// validUID reports whether s may be sent as a POP3 unique-id (RFC 1939 §7).
func validUID(s string) bool {
	if len(s) == 0 || len(s) > maxUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < minUIDChr || s[i] > maxUIDChr {
			return false
		}
	}
	return true
}

// Name fields carrying the UID of an imported message, so that it keeps
// the unique-id its old POP3 server (qpopper's X-UIDL) gave it: ",U=" holds
// the UID as is when every character may appear in a maildir name, ",X="
// holds it in hex otherwise ('/' cannot be in a file name, ':' starts the
// info part, ',' separates fields, '%' is kept out for readers that
// unescape).
const (
	uidRawKey = "U="
	uidHexKey = "X="
)

// uidField returns the UID a name's ",U=" or ",X=" field carries, when it
// has one that is a valid POP3 unique-id.
func uidField(base string) (string, bool) {
	comma := strings.IndexByte(base, ',')
	if comma < 0 {
		return "", false
	}
	for f := range strings.SplitSeq(base[comma+1:], ",") {
		if v, ok := strings.CutPrefix(f, uidRawKey); ok {
			return v, validUID(v)
		}
		if v, ok := strings.CutPrefix(f, uidHexKey); ok {
			b, err := hex.DecodeString(v)
			return string(b), err == nil && validUID(string(b))
		}
	}
	return "", false
}

// uidNameField returns the ",U=..." or ",X=..." field that makes a
// maildir file name carry uid as its POP3 unique-id. uid must be valid
// (1-70 characters 0x21-0x7E, RFC 1939 §7).
func uidNameField(uid string) string {
	if strings.ContainsAny(uid, "/:,%") {
		return "," + uidHexKey + hex.EncodeToString([]byte(uid))
	}
	return "," + uidRawKey + uid
}

// ValidUID reports whether s may be used as a POP3 unique-id: 1 to 70
// characters in the range 0x21 to 0x7E (RFC 1939 §7).
func ValidUID(s string) bool { return validUID(s) }

// splitTimestamp splits "1732000000.rest" into 1732000000 and "rest".
// Names without a leading decimal number and a dot get -1 and the whole name.
func splitTimestamp(base string) (int64, string) {
	dot := strings.IndexByte(base, '.')
	if dot <= 0 || dot > 19 {
		return -1, base
	}
	var ts int64
	for i := 0; i < dot; i++ {
		c := base[i]
		if c < '0' || c > '9' {
			return -1, base
		}
		ts = ts*10 + int64(c-'0')
	}
	return ts, base[dot+1:]
}

// sizeField finds a ",<key><decimal>" field (key "S=" or "W=") in the part
// of base after its first comma, as Dovecot writes them, and returns the
// number or -1 when it is absent or not a plain non-negative decimal.
func sizeField(base, key string) int64 {
	comma := strings.IndexByte(base, ',')
	if comma < 0 {
		return -1
	}
	for f := range strings.SplitSeq(base[comma+1:], ",") {
		v, ok := strings.CutPrefix(f, key)
		if !ok {
			continue
		}
		if v == "" || len(v) > 18 || strings.TrimLeft(v, "0123456789") != "" {
			return -1
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// compareNames orders two parsed names by delivery: timestamp first, then
// the rest of the name with digit runs compared as numbers (so "M9" comes
// before "M10" and "Q2" before "Q11"), then byte-wise so the order is total.
func compareNames(a, b *nameInfo) int {
	if a.ts != b.ts {
		if a.ts < b.ts {
			return -1
		}
		return 1
	}
	if c := naturalCompare(a.rest, b.rest); c != 0 {
		return c
	}
	return strings.Compare(a.base, b.base)
}

// naturalCompare compares strings treating runs of ASCII digits as numbers.
// Equal-valued runs with different leading zeros compare equal here; the
// caller breaks such ties byte-wise.
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			da := strings.TrimLeft(a[si:i], "0")
			db := strings.TrimLeft(b[sj:j], "0")
			if len(da) != len(db) {
				if len(da) < len(db) {
					return -1
				}
				return 1
			}
			if c := strings.Compare(da, db); c != 0 {
				return c
			}
			continue
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
		i++
		j++
	}
	switch {
	case len(a)-i < len(b)-j:
		return -1
	case len(a)-i > len(b)-j:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// maxHostnameLen bounds the hostname part of generated names so that a
// whole name stays a valid POP3 unique-id (at most 70 chars, RFC 1939 §7).
const maxHostnameLen = 20

// sanitizeHostname makes a hostname safe inside a maildir name: only
// letters, digits, '-', '_' and '.' survive ('/', ':' and ',' would break
// the maildir and Dovecot name syntax); the rest become '_'.
func sanitizeHostname(h string) string {
	var b strings.Builder
	for i := 0; i < len(h) && b.Len() < maxHostnameLen; i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', isDigit(c), c == '-', c == '.':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "localhost"
	}
	return b.String()
}

// addSeenFlag returns the info flags with 'S' added, kept in ASCII order as
// the maildir specification requires.
func addSeenFlag(flags string) string {
	if strings.IndexByte(flags, 'S') >= 0 {
		return flags
	}
	b := []byte(flags)
	i := 0
	for i < len(b) && b[i] < 'S' {
		i++
	}
	b = append(b[:i], append([]byte{'S'}, b[i:]...)...)
	return string(b)
}
