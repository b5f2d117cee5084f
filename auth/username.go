package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUsernameLen bounds a user name: RFC 5321 §4.5.3.1.3 limits a path to
// 256 octets including the angle brackets, so an address has at most 254.
const MaxUsernameLen = 254

// ValidateUsername checks that name can be a login and a users-file key:
// "local@domain" with both parts non-empty, at most 254 bytes, valid UTF-8,
// and free of what would break the file format or a maildir path: ':',
// '/', '\', "..", NUL and other control characters, and white space.
// Neither part may start or end with '.', which keeps "." and ".." out of
// paths built from them. The error names the rule that failed.
func ValidateUsername(name string) error {
	switch {
	case name == "":
		return errors.New("user name is empty")
	case len(name) > MaxUsernameLen:
		return fmt.Errorf("user name is %d bytes, longer than %d", len(name), MaxUsernameLen)
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r == 0:
			return errors.New("user name contains a NUL byte")
		case unicode.IsControl(r):
			return fmt.Errorf("user name contains control character %U", r)
		case unicode.IsSpace(r):
			return errors.New("user name contains white space")
		case r == ':':
			return errors.New("user name contains ':', which separates fields in the users file")
		case r == '/' || r == '\\':
			return fmt.Errorf("user name contains %q, a path separator", r)
		}
	}
	if strings.Contains(name, "..") {
		return errors.New(`user name contains ".."`)
	}
	local, domain, ok := strings.Cut(name, "@")
	switch {
	case !ok:
		return errors.New("user name has no '@': want local@domain")
	case strings.Contains(domain, "@"):
		return errors.New("user name has more than one '@'")
	case local == "":
		return errors.New("user name has an empty local part before '@'")
	case domain == "":
		return errors.New("user name has an empty domain after '@'")
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, "."):
		return errors.New("user name's local part starts or ends with '.'")
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, "."):
		return errors.New("user name's domain starts or ends with '.'")
	}
	return nil
}

// CanonicalUsername is the form users are stored and compared in: the
// whole address lowercased. Mail administrators and users expect logins to
// be case-insensitive, and RFC 5321's case-sensitive local parts are not
// honoured by any mail system an office would migrate from.
func CanonicalUsername(name string) string {
	return strings.ToLower(name)
}
