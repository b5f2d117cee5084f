package smtp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address limits, RFC 5321 §4.5.3.1.
const (
	maxLocalPartOctets = 64  // §4.5.3.1.1
	maxDomainOctets    = 255 // §4.5.3.1.2
	maxPathOctets      = 256 // §4.5.3.1.3, including the angle brackets
	maxLabelOctets     = 63  // RFC 1035 §2.3.4
)

// Errors from ParseAddress. Each one is wrapped with the offending input.
var (
	// ErrAddressSyntax: not a mailbox this server accepts (RFC 5321 §4.1.2).
	ErrAddressSyntax = errors.New("malformed address")
	// ErrAddressTooLong: a part exceeds RFC 5321 §4.5.3.1.
	ErrAddressTooLong = errors.New("address too long")
	// ErrRoutingSyntax: the local part carries routing ('%', '!', or an '@'
	// from a quoted local part), the old ways to make a server relay.
	ErrRoutingSyntax = errors.New("routing syntax in local part")
	// ErrQuotedLocalPart: the local part needs quoting (spaces, specials).
	ErrQuotedLocalPart = errors.New("quoted local part not supported")
)

// Address is a normalised mailbox: Local is kept as given (case preserved,
// RFC 5321 §2.4), Domain is lowercase ASCII (A-label form for IDN) without
// a trailing dot, or a normalised address literal such as "[192.0.2.1]".
type Address struct {
	Local   string
	Domain  string
	Literal bool // Domain is an address literal; never a local domain
}

// String returns local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// ASCII reports whether the address is pure ASCII (no SMTPUTF8 needed).
func (a Address) ASCII() bool {
	for i := 0; i < len(a.Local); i++ {
		if a.Local[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true // Domain is always ASCII after normalisation
}

// ParseAddress parses and normalises a mailbox as go-smtp hands it over
// (angle brackets removed, a quoted local part already unquoted), optionally
// still wrapped in <> and carrying an RFC 5321 source route.
//
// Decisions, so that routing tricks never reach the relay decision:
//   - a source route ("@hop1,@hop2:user@domain") is stripped and only the
//     final mailbox is evaluated (RFC 5321 §3.6.1 and appendix C: the route
//     SHOULD be ignored); go-smtp strips it before us as well;
//   - '%' and '!' in the local part ("user%remote@local", "host!user@local")
//     and an '@' inside the local part (from "\"user@remote\"@local") are
//     refused with ErrRoutingSyntax, whatever the domain;
//   - local parts that need quoting are refused (ErrQuotedLocalPart): no
//     mailbox here has one, and refusing them keeps re-quoting out of relay;
//   - the domain loses one trailing dot, is lowercased, and IDN U-labels are
//     converted to A-labels (UTS #46 lookup profile), so "Bücher.Example."
//     and "xn--bcher-kva.example" are the same domain;
//   - a domain whose last label is numeric ("user@127.0.0.1") is refused;
//     address literals ("user@[192.0.2.1]") parse with Literal set, and the
//     caller must never treat them as local.
func ParseAddress(s string) (Address, error) {
	in := s
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	if len(s)+2 > maxPathOctets {
		return Address{}, fmt.Errorf("%w: %d octets", ErrAddressTooLong, len(s))
	}
	if strings.HasPrefix(s, "@") {
		route, rest, ok := strings.Cut(s, ":")
		if !ok || !validRoute(route) {
			return Address{}, fmt.Errorf("%w: bad source route in %q", ErrAddressSyntax, in)
		}
		s = rest
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: no domain in %q", ErrAddressSyntax, in)
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocalPart(local); err != nil {
		return Address{}, fmt.Errorf("%w in %q", err, in)
	}
	if strings.HasPrefix(domain, "[") {
		lit, err := parseAddressLiteral(domain)
		if err != nil {
			return Address{}, fmt.Errorf("%w in %q", err, in)
		}
		return Address{Local: local, Domain: lit, Literal: true}, nil
	}
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Address{}, fmt.Errorf("%w in %q", err, in)
	}
	return Address{Local: local, Domain: d}, nil
}

// validRoute checks "@domain(,@domain)*" loosely: the route is discarded,
// it only has to look like one.
func validRoute(route string) bool {
	for _, hop := range strings.Split(route, ",") {
		if len(hop) < 2 || hop[0] != '@' || strings.ContainsAny(hop[1:], "@<>\" \t") {
			return false
		}
	}
	return true
}

func checkLocalPart(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("%w: empty local part", ErrAddressSyntax)
	case len(local) > maxLocalPartOctets:
		return fmt.Errorf("%w: local part of %d octets", ErrAddressTooLong, len(local))
	case !utf8.ValidString(local):
		return fmt.Errorf("%w: local part is not UTF-8", ErrAddressSyntax)
	case strings.ContainsAny(local, "@%!"):
		return ErrRoutingSyntax
	}
	// dot-atom (RFC 5322 §3.2.3, RFC 6531 §3.3 adds UTF-8): atext runs
	// separated by single dots.
	prevDot := true
	for _, r := range local {
		switch {
		case r == '.':
			if prevDot {
				return fmt.Errorf("%w: misplaced dot", ErrQuotedLocalPart)
			}
			prevDot = true
			continue
		case r >= utf8.RuneSelf:
			if r == utf8.RuneError || r < 0xA0 { // U+0080..U+009F are C1 controls
				return fmt.Errorf("%w: control character", ErrAddressSyntax)
			}
		case !isAtext(byte(r)):
			return fmt.Errorf("%w: character %q", ErrQuotedLocalPart, r)
		}
		prevDot = false
	}
	if prevDot {
		return fmt.Errorf("%w: misplaced dot", ErrQuotedLocalPart)
	}
	return nil
}

// isAtext reports RFC 5322 §3.2.3 atext for ASCII.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// parseAddressLiteral accepts "[IPv4]" and "[IPv6:addr]" (RFC 5321 §4.1.3)
// and returns the normalised literal.
func parseAddressLiteral(d string) (string, error) {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return "", fmt.Errorf("%w: unterminated address literal", ErrAddressSyntax)
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		ip, err := netip.ParseAddr(inner[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 literal", ErrAddressSyntax)
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("%w: bad address literal", ErrAddressSyntax)
	}
	return "[" + ip.String() + "]", nil
}

// NormalizeDomain returns the canonical form of a domain name: one trailing
// dot removed, IDN converted to lowercase A-labels, every label LDH and at
// most 63 octets, the whole at most 255 octets, the last label not numeric.
// Local domains from the configuration go through the same function, so the
// comparison with recipient domains is exact.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", fmt.Errorf("%w: empty domain", ErrAddressSyntax)
	}
	if len(d) > maxDomainOctets {
		return "", fmt.Errorf("%w: domain of %d octets", ErrAddressTooLong, len(d))
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("%w: domain: %v", ErrAddressSyntax, err)
	}
	a = strings.ToLower(a)
	if len(a) > maxDomainOctets {
		return "", fmt.Errorf("%w: domain of %d octets", ErrAddressTooLong, len(a))
	}
	labels := strings.Split(a, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxLabelOctets || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: bad domain label %q", ErrAddressSyntax, l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", fmt.Errorf("%w: bad character in domain", ErrAddressSyntax)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("%w: numeric top-level label (use an address literal)", ErrAddressSyntax)
	}
	if strings.HasPrefix(a, "xn--") || strings.Contains(a, ".xn--") {
		// A-labels must round-trip (RFC 5891 §5.4), so "xn--" garbage
		// cannot alias a real domain.
		if _, err := idna.Lookup.ToUnicode(a); err != nil {
			return "", fmt.Errorf("%w: bad A-label: %v", ErrAddressSyntax, err)
		}
	}
	return a, nil
}
