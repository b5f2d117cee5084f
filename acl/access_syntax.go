package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on names from RFC 1035 §2.3.4 (labels 63 octets, names 255; 253
// printable characters without the root label).
const (
	maxLabelLen  = 63
	maxDomainLen = 253
	// maxLocalPartLen is RFC 5321 §4.5.3.1.1.
	maxLocalPartLen = 64
)

// parseIPv6Key normalises the part of an "IPv6:" key after the colon to
// sendmail's full form: groups in lowercase hex without leading zeros,
// separated by ':' and never compressed. Fewer than 8 groups is a network.
func parseIPv6Key(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty IPv6 address")
	}
	if strings.Contains(s, "::") || strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("bad IPv6 address %q", s)
		}
		return fullIPv6(a), nil
	}
	parts := strings.Split(s, ":")
	if len(parts) > 8 {
		return "", fmt.Errorf("IPv6 key %q has more than 8 groups", s)
	}
	for i, p := range parts {
		if p == "" || len(p) > 4 {
			return "", fmt.Errorf("bad IPv6 group %q in %q", p, s)
		}
		v, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return "", fmt.Errorf("bad IPv6 group %q in %q", p, s)
		}
		parts[i] = strconv.FormatUint(v, 16)
	}
	return strings.Join(parts, ":"), nil
}

// fullIPv6 writes an IPv6 address as sendmail does with IPV6_FULL: eight
// groups, each in lowercase hex without leading zeros.
func fullIPv6(a netip.Addr) string {
	b := a.As16()
	var sb strings.Builder
	sb.Grow(39)
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
	}
	return sb.String()
}

func isNumericDotted(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// checkIPv4Key accepts 1 to 4 decimal octets without leading zeros
// (sendmail compares strings, and {client_addr} never has leading zeros).
func checkIPv4Key(s string) error {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return fmt.Errorf("IPv4 key %q has more than 4 octets", s)
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return fmt.Errorf("bad IPv4 octet %q in %q", p, s)
		}
		if v, _ := strconv.Atoi(p); v > 255 {
			return fmt.Errorf("IPv4 octet %q in %q is over 255", p, s)
		}
	}
	return nil
}

// checkDomain accepts host and domain names: dot-separated labels of
// letters, digits, '-' and '_' (the latter appears in real host names).
func checkDomain(s string) error {
	if len(s) > maxDomainLen {
		return fmt.Errorf("domain longer than %d characters", maxDomainLen)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return fmt.Errorf("empty label in domain %q", s)
		}
		if len(label) > maxLabelLen {
			return fmt.Errorf("label longer than %d characters in %q", maxLabelLen, s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("bad character %q in domain %q", c, s)
			}
		}
	}
	return nil
}

// checkLocalPart accepts a local part without quoting: printable ASCII
// except '@', quotes and angle brackets.
func checkLocalPart(s string) error {
	if s == "" {
		return errors.New("empty local part")
	}
	if len(s) > maxLocalPartLen {
		return fmt.Errorf("local part longer than %d characters", maxLocalPartLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`@"<>()[]\,;:`, c) >= 0 {
			return fmt.Errorf("bad character %q in local part %q", c, s)
		}
	}
	return nil
}

// parseValue fills Verdict (and Code, Enhanced, Text for errors) from Value.
func parseValue(r *Rule) error {
	if r.kind == kindOpaque {
		r.Verdict = VerdictOpaque
		return nil
	}
	upper := strings.ToUpper(r.Value)
	if r.Tag == "Spam" {
		switch upper {
		case "FRIEND":
			r.Verdict = VerdictFriend
		case "HATER":
			r.Verdict = VerdictHater
		default:
			return errors.New("values tagged Spam: are FRIEND or HATER")
		}
		return nil
	}
	switch upper {
	case "OK":
		r.Verdict = VerdictOK
	case "RELAY":
		r.Verdict = VerdictRelay
	case "REJECT":
		r.Verdict = VerdictReject
	case "DISCARD":
		r.Verdict = VerdictDiscard
	case "SKIP":
		if r.kind == kindAddress || r.kind == kindUser {
			return errors.New("SKIP applies only to host, domain and IP keys")
		}
		r.Verdict = VerdictSkip
	default:
		switch {
		case strings.HasPrefix(upper, "ERROR:"):
			return parseErrorValue(r, r.Value[len("ERROR:"):])
		case strings.HasPrefix(upper, "QUARANTINE:"):
			return errors.New("QUARANTINE is not supported")
		case r.Value[0] == '"' || r.Value[0] >= '0' && r.Value[0] <= '9':
			// The deprecated "### text" form.
			return parseErrorValue(r, r.Value)
		case strings.Contains(r.Value, "#"):
			return errors.New("unknown value ('#' starts a comment only at the beginning of a line)")
		default:
			return errors.New("unknown value: want OK, RELAY, REJECT, DISCARD, SKIP or ERROR:### text")
		}
	}
	return nil
}

// parseErrorValue parses what follows "ERROR:": [D.S.N:]### text, either
// part optionally in double quotes.
func parseErrorValue(r *Rule, s string) error {
	s = strings.TrimSpace(s)
	enhanced, s := cutEnhanced(s)
	s, err := unquote(s)
	if err != nil {
		return err
	}
	if enhanced == "" {
		enhanced, s = cutEnhanced(s)
	}
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ') {
		return errors.New("error value needs a three-digit reply code followed by a space and text")
	}
	code, err := strconv.Atoi(s[:3])
	// RFC 5321 §4.2: the first digit says the class; only 4 and 5 refuse.
	if err != nil || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9' {
		return fmt.Errorf("reply code %q is not 4xx or 5xx", s[:3])
	}
	if enhanced == "" {
		enhanced = s[:1] + ".0.0"
	} else if enhanced[0] != s[0] {
		return fmt.Errorf("enhanced code %s and reply code %d differ in class", enhanced, code)
	}
	r.Verdict = VerdictError
	r.Code = code
	r.Enhanced = enhanced
	r.Text = strings.TrimSpace(s[3:])
	return nil
}

// cutEnhanced splits a leading "D.S.N:" (RFC 3463 §2: class 4 or 5 here,
// subject and detail of 1 to 3 digits) off s.
func cutEnhanced(s string) (string, string) {
	c := strings.IndexByte(s, ':')
	if c < 0 {
		return "", s
	}
	if !isEnhancedCode(s[:c]) {
		return "", s
	}
	return s[:c], s[c+1:]
}

func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0][0] != '4' && parts[0][0] != '5') {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		if strings.Contains(s, `"`) {
			return "", errors.New("quote in the middle of an error text")
		}
		return s, nil
	}
	if len(s) < 2 || !strings.HasSuffix(s, `"`) || strings.Contains(s[1:len(s)-1], `"`) {
		return "", errors.New("unbalanced quotes")
	}
	return s[1 : len(s)-1], nil
}
