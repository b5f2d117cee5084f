package shadow

import (
	"fmt"
	"strings"
	"time"

	"github.com/popgate/popgate/auth"
)

// Options steer Plan.
type Options struct {
	Domain string    // users become NAME@Domain
	MinUID int       // accounts below are system accounts
	Now    time.Time // for account expiry
}

// nobodyUID is the overflow UID (nobody, nfsnobody): never a person.
const nobodyUID = 65534

// Decision is what happens to one passwd account.
type Decision struct {
	Account string // the Unix name
	User    string // NAME@domain; empty when skipped before a name was made
	Stored  string // the users-file password field ("{SCHEME}hash"); empty when skipped
	Scheme  string // a short name of the hash, e.g. "yescrypt"; empty when skipped
	Skip    string // why the account is not imported; empty when it is
	Line    int    // in the passwd file
}

// schemes maps crypt(3) prefixes to the users-file scheme (Dovecot's names;
// yescrypt has none and goes under {CRYPT}, as Dovecot stores libxcrypt
// strings) and a readable name.
var schemes = []struct{ prefix, scheme, name string }{
	{"$y$", "{CRYPT}", "yescrypt"},
	{"$6$", "{SHA512-CRYPT}", "SHA-512-crypt"},
	{"$5$", "{SHA256-CRYPT}", "SHA-256-crypt"},
	{"$2b$", "{BLF-CRYPT}", "bcrypt"},
	{"$2y$", "{BLF-CRYPT}", "bcrypt"},
	{"$2a$", "{BLF-CRYPT}", "bcrypt"},
	{"$1$", "{MD5-CRYPT}", "MD5-crypt (weak)"},
}

// unsupported names crypt(3) formats popgate does not verify, for the report.
var unsupported = []struct{ prefix, name string }{
	{"$7$", "scrypt ($7$)"},
	{"$gy$", "gost-yescrypt ($gy$)"},
	{"$sm3y$", "sm3-yescrypt ($sm3y$)"},
	{"$sha1$", "NetBSD sha1crypt ($sha1$)"},
	{"$md5", "Sun MD5 ($md5$)"},
	{"$3$", "NT hash ($3$)"},
	{"_", "BSDi extended DES (_)"},
}

// Plan decides for every passwd account, in file order, whether it becomes
// a user and with which stored hash. The hash comes from shadow, or from
// passwd itself when its field is not "x" (systems without shadow).
func Plan(passwd []PasswdEntry, shadow map[string]ShadowEntry, o Options) []Decision {
	out := make([]Decision, 0, len(passwd))
	users := map[string]string{} // canonical user → account that took it
	for _, p := range passwd {
		d := Decision{Account: p.Name, Line: p.Line}
		d.Skip = decide(&d, p, shadow, o, users)
		if d.Skip != "" {
			d.Stored, d.Scheme = "", ""
		} else {
			users[d.User] = p.Name
		}
		out = append(out, d)
	}
	return out
}

func decide(d *Decision, p PasswdEntry, shadow map[string]ShadowEntry, o Options, users map[string]string) string {
	if isNIS(p.Name) {
		return "NIS compat entry: import from the NIS/LDAP source instead"
	}
	if p.UID < o.MinUID {
		return fmt.Sprintf("system account (uid %d < min-uid %d)", p.UID, o.MinUID)
	}
	if p.UID == nobodyUID {
		return fmt.Sprintf("system account (uid %d is nobody)", p.UID)
	}
	hash := p.Password
	if hash == "x" {
		s, ok := shadow[p.Name]
		if !ok {
			return "no entry in the shadow file"
		}
		hash = s.Hash
		if s.Expire >= 0 && !o.Now.IsZero() && s.Expire*86400 <= o.Now.Unix() {
			return "account expired on " + time.Unix(s.Expire*86400, 0).UTC().Format(time.DateOnly)
		}
	}
	switch {
	case hash == "":
		return "no password (empty hash field): give one with `popgate user passwd`"
	case strings.HasPrefix(hash, "!"):
		return "locked (hash starts with '!')"
	case strings.HasPrefix(hash, "*"):
		return "no password login ('*')"
	}
	user := auth.CanonicalUsername(p.Name + "@" + o.Domain)
	if err := auth.ValidateUsername(user); err != nil {
		return fmt.Sprintf("name not usable as an address: %v", err)
	}
	d.User = user
	if prev, dup := users[user]; dup {
		return fmt.Sprintf("same address as account %s", prev)
	}
	for _, s := range schemes {
		if strings.HasPrefix(hash, s.prefix) {
			stored := s.scheme + hash
			if _, err := auth.ParseHash(stored); err != nil {
				return fmt.Sprintf("%s hash not usable: %v", s.name, err)
			}
			d.Stored, d.Scheme = stored, s.name
			return ""
		}
	}
	for _, u := range unsupported {
		if strings.HasPrefix(hash, u.prefix) {
			return "unsupported scheme " + u.name
		}
	}
	if len(hash) == 13 && !strings.HasPrefix(hash, "$") {
		return "unsupported scheme DES crypt (weak, uses only 8 characters): set a new password with `popgate user add`"
	}
	return "unrecognised hash format"
}
