package acl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/afero"
)

// maxAccessLine bounds one line of an access file; makemap's own buffer is
// BUFSIZ-sized, far below this.
const maxAccessLine = 64 * 1024

// Verdict is what an access rule's value means.
type Verdict int

// Verdicts an access rule can carry.
const (
	VerdictOK      Verdict = iota + 1 // accept (not relay)
	VerdictRelay                      // accept and allow relaying
	VerdictReject                     // permanent refusal with the default text
	VerdictDiscard                    // accept and throw away
	VerdictSkip                       // stop searching, no verdict
	VerdictError                      // refusal with the rule's own code and text
	VerdictFriend                     // Spam: FRIEND
	VerdictHater                      // Spam: HATER
	VerdictOpaque                     // value of a tag popgate does not interpret
)

// String names the verdict as the access file spells it.
func (v Verdict) String() string {
	switch v {
	case VerdictOK:
		return "OK"
	case VerdictRelay:
		return "RELAY"
	case VerdictReject:
		return "REJECT"
	case VerdictDiscard:
		return "DISCARD"
	case VerdictSkip:
		return "SKIP"
	case VerdictError:
		return "ERROR"
	case VerdictFriend:
		return "FRIEND"
	case VerdictHater:
		return "HATER"
	case VerdictOpaque:
		return "OPAQUE"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Rule is one line of an access file.
type Rule struct {
	Line     int     // 1-based line number in the file
	Tag      string  // canonical tag ("Connect", "From", "To", "Spam", ...) or "" when untagged
	Key      string  // normalised key without the tag, lowercase
	RawKey   string  // the key as written, tag included
	Value    string  // the value as written
	Verdict  Verdict // what Value means
	Code     int     // SMTP reply code for VerdictError
	Enhanced string  // enhanced status code for VerdictError, e.g. "5.7.1"
	Text     string  // reply text for VerdictError, without the codes

	kind keyKind
}

// MapKey is the key exactly as sendmail looks it up in access.db: tag and
// key lowercased ("connect:192.168.0", "ipv6:2002:c0a8:0:0:0:0:0:1").
func (r Rule) MapKey() string {
	if r.Tag == "" {
		return r.Key
	}
	return strings.ToLower(r.Tag) + ":" + r.Key
}

// String renders the rule as written, for logs: `Connect:192.168.0 RELAY`.
func (r Rule) String() string { return r.RawKey + " " + r.Value }

// describe is the Reason text naming a rule.
func (r Rule) describe() string {
	return fmt.Sprintf("access rule %q (line %d)", r.String(), r.Line)
}

// keyKind is what a rule's key names.
type keyKind int

const (
	kindIPv4    keyKind = iota + 1 // dotted octets, 1 to 4
	kindIPv6                       // "ipv6:" + 1 to 8 groups
	kindHost                       // host or domain name
	kindAddress                    // user@domain
	kindUser                       // user@
	kindOpaque                     // key of an uninterpreted tag
)

// Rules is a parsed access file: sendmail access rules as read by sendmail 8.17 with FEATURE(`access_db')
// and FEATURE(`blocklist_recipients') (cf/m4/proto.m4, cf/README "ANTI-SPAM
// CONFIGURATION CONTROL").
//
// File syntax (what `makemap hash` reads): one "key<whitespace>value" a
// line; a line whose first non-blank character is '#' is a comment, blank
// lines are skipped. '#' after a key is NOT a comment (makemap would store
// "RELAY # x" as the value, which sendmail reads as an error message), so
// such lines are rejected here with a clear error. Keys are compared
// case-insensitively: they are stored lowercased, as makemap does.
//
// Keys:
//   - an optional tag: Connect:, From:, To:, Spam: (kept, FRIEND/HATER only),
//     or one of sendmail's other tags (GreetPause:, ClientRate:, ClientConn:,
//     Srv_Features:, Clt_Features:, Try_TLS:, TLS_Clt:, TLS_Srv:, TLS_Rcpt:,
//     Compat:, QGrp:) whose values are kept opaque for the mirror and never
//     used in decisions. Any other "word:" prefix is an error.
//   - an untagged key is looked up by every check, exactly like sendmail's
//     "+" lookups (tagged first, then untagged, at each specificity level).
//   - IPv4 addresses or networks by leading octets: "192.168.0" is
//     192.168.0.0/24, "10" is 10.0.0.0/8.
//   - "IPv6:" + an address or network by leading 16-bit groups. sendmail
//     (IPV6_FULL, the default) looks up the full form: 8 groups, no "::",
//     each group without leading zeros, e.g. "IPv6:2002:c0a8:51d2:0:0:0:0:23f4",
//     then strips groups from the right: "IPv6:2002:c0a8" covers 2002:c0a8::/32.
//     A key written in compressed form ("IPv6:2002:c0a8:51d2::23f4") is a
//     single address and is normalised to the full form here, so it matches
//     (sendmail itself would never match it).
//   - host and domain names, matched on label boundaries from the most
//     specific: "spamford.com" covers "mail.spamford.com"; a more specific
//     "ok.spamford.com" wins for that subtree.
//   - e-mail addresses "user@domain" and "user@" (that local part in any
//     domain) for From:, To:, Spam: and untagged keys. Connect: keys are
//     never addresses.
//
// Values: OK, RELAY, REJECT, DISCARD, SKIP (host, domain and IP keys only:
// stops the search without a verdict), ERROR:### text, ERROR:"### text",
// ERROR:D.S.N:### text, ERROR:D.S.N:"### text" (also ERROR:"D.S.N:### text"),
// and the deprecated bare "### text" form. A 4xx code is a temporary
// failure, 5xx permanent; an enhanced code must have the same class as the
// reply code. QUARANTINE: is not supported and is an error.
//
// Lookup order (proto.m4 rulesets D, A and SearchList), which Policy uses:
//
//   - Connect (check_relay): the client host name, most specific domain
//     first, each level "Connect:name" then "name"; only if nothing is found,
//     the client IP, most specific first ("Connect:1.2.3.4", "1.2.3.4",
//     "Connect:1.2.3", "1.2.3", ...). SKIP at a level ends that search.
//   - From (check_mail): "From:user@domain", "user@domain", then
//     "From:user@", "user@", then the domain search as above with From:.
//   - To (check_rcpt with blocklist_recipients): "To:user@domain",
//     "user@domain", "To:user@", "user@" (local domains only, as sendmail),
//     then the domain search with To:. OK, RELAY and SKIP mean "no objection".
//   - Relaying (Rcpt_ok, Relay_ok): a RELAY found by the To: domain search of
//     the recipient domain, by the Connect: address search of the client IP,
//     or by the Connect: domain search of the client host name.
//
// The cases are pinned by tests: TestParseRulesValid and
// TestParseRulesInvalid (syntax), TestLookupPrecedence (the HOWTO's
// "192.168.0 RELAY", "spamford.com REJECT", "ok.spamford.com OK", tagged
// against untagged, SKIP, IPv6 networks), TestCheckConnect, TestCheckFrom
// and TestCheckRcpt (decisions). A nil *Rules has no rules.
type Rules struct {
	list     []Rule
	byKey    map[string]int // MapKey → index in list (duplicate detection)
	tagged   map[tagKey]int // lowercase tag and key → index in list
	untagged map[string]int // key → index in list
}

// tagKey indexes tagged rules without building "tag:key" strings on the
// lookup path.
type tagKey struct{ tag, key string }

// ParseError is a syntax error in an access file.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("access: line %d: %s", e.Line, e.Msg) }

// List returns the rules in file order.
func (r *Rules) List() []Rule {
	if r == nil {
		return nil
	}
	return append([]Rule(nil), r.list...)
}

// Len returns the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.list)
}

// ParseRules reads an access file. The first bad line is reported as a
// *ParseError naming the line.
func ParseRules(rd io.Reader) (*Rules, error) {
	rules := &Rules{byKey: make(map[string]int), tagged: make(map[tagKey]int), untagged: make(map[string]int)}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 4096), maxAccessLine)
	line := 0
	for sc.Scan() {
		line++
		rule, ok, err := parseLine(sc.Text(), line)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		mk := rule.MapKey()
		if prev, dup := rules.byKey[mk]; dup {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("duplicate key %q (first on line %d)", rule.RawKey, rules.list[prev].Line)}
		}
		rules.byKey[mk] = len(rules.list)
		if rule.Tag == "" {
			rules.untagged[rule.Key] = len(rules.list)
		} else {
			rules.tagged[tagKey{strings.ToLower(rule.Tag), rule.Key}] = len(rules.list)
		}
		rules.list = append(rules.list, rule)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxAccessLine)}
		}
		return nil, fmt.Errorf("access: read: %w", err)
	}
	return rules, nil
}

// LoadRules reads and parses the access file at path.
func LoadRules(fs afero.Fs, path string) (*Rules, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	defer f.Close()
	rules, err := ParseRules(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// ParseRulesString is ParseRules on a string.
func ParseRulesString(s string) (*Rules, error) { return ParseRules(strings.NewReader(s)) }

// parseLine parses one line; ok is false for blank lines and comments.
func parseLine(text string, line int) (Rule, bool, error) {
	fail := func(format string, args ...any) (Rule, bool, error) {
		return Rule{}, false, &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	text = strings.TrimRight(text, " \t\r")
	trimmed := strings.TrimLeft(text, " \t")
	if trimmed == "" || trimmed[0] == '#' {
		return Rule{}, false, nil
	}
	if strings.IndexByte(trimmed, 0) >= 0 {
		return fail("NUL byte")
	}
	i := strings.IndexAny(trimmed, " \t")
	if i < 0 {
		return fail("key %q has no value", trimmed)
	}
	rawKey := trimmed[:i]
	value := strings.TrimLeft(trimmed[i:], " \t")
	rule := Rule{Line: line, RawKey: rawKey, Value: value}
	if err := parseKey(&rule); err != nil {
		return fail("key %q: %v", rawKey, err)
	}
	if err := parseValue(&rule); err != nil {
		return fail("key %q: value %q: %v", rawKey, value, err)
	}
	return rule, true, nil
}

// tags maps a lowercased tag to its canonical spelling; interpreted says
// whether popgate uses the tag in decisions (or, for Spam:, checks values).
var tags = map[string]struct {
	name        string
	interpreted bool
}{
	"connect": {"Connect", true}, "from": {"From", true}, "to": {"To", true}, "spam": {"Spam", true},
	"greetpause": {"GreetPause", false}, "clientrate": {"ClientRate", false},
	"clientconn": {"ClientConn", false}, "srv_features": {"Srv_Features", false},
	"clt_features": {"Clt_Features", false}, "try_tls": {"Try_TLS", false},
	"tls_clt": {"TLS_Clt", false}, "tls_srv": {"TLS_Srv", false}, "tls_rcpt": {"TLS_Rcpt", false},
	"compat": {"Compat", false}, "qgrp": {"QGrp", false},
}

// parseKey fills Tag, Key and kind from RawKey.
func parseKey(r *Rule) error {
	key := r.RawKey
	if c := strings.IndexByte(key, ':'); c >= 0 {
		word := strings.ToLower(key[:c])
		if t, ok := tags[word]; ok {
			r.Tag = t.name
			key = key[c+1:]
			if !t.interpreted {
				if key == "" {
					return errors.New("empty key after tag")
				}
				r.Key = strings.ToLower(key)
				r.kind = kindOpaque
				return nil
			}
		} else if word != "ipv6" {
			return fmt.Errorf("unknown tag %q", key[:c+1])
		}
	}
	if key == "" {
		return errors.New("empty key")
	}
	norm, kind, err := normaliseKey(key)
	if err != nil {
		return err
	}
	r.Key, r.kind = norm, kind
	switch r.Tag {
	case "Connect":
		if kind == kindAddress || kind == kindUser {
			return errors.New("keys tagged Connect: are IP addresses, networks or host names, not e-mail addresses")
		}
	case "From", "To", "Spam":
		if kind == kindIPv4 || kind == kindIPv6 {
			return fmt.Errorf("%s: keys are e-mail addresses or domains, not IP addresses", r.Tag)
		}
	}
	return nil
}

// normaliseKey classifies an untagged key and returns its lowercase form.
func normaliseKey(key string) (string, keyKind, error) {
	lk := strings.ToLower(key)
	if rest, ok := strings.CutPrefix(lk, "ipv6:"); ok {
		groups, err := parseIPv6Key(rest)
		if err != nil {
			return "", 0, err
		}
		return "ipv6:" + groups, kindIPv6, nil
	}
	if at := strings.LastIndexByte(lk, '@'); at >= 0 {
		local, domain := lk[:at], lk[at+1:]
		if err := checkLocalPart(local); err != nil {
			return "", 0, err
		}
		if domain == "" {
			return lk, kindUser, nil
		}
		if err := checkDomain(domain); err != nil {
			return "", 0, err
		}
		return lk, kindAddress, nil
	}
	if isNumericDotted(lk) {
		if err := checkIPv4Key(lk); err != nil {
			return "", 0, err
		}
		return lk, kindIPv4, nil
	}
	if err := checkDomain(lk); err != nil {
		return "", 0, err
	}
	return lk, kindHost, nil
}
