package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/smtp/aliases"
)

// maxImportLine bounds one line of a sendmail file; makemap's own limit
// is far lower.
const maxImportLine = 64 * 1024

// smImport collects what `popgate import sendmail` carries over from an
// /etc/mail tree, and every line it cannot carry.
type smImport struct {
	from        string
	userDomain  string            // domain of bare local users named by virtusertable
	domains     []string          // in the order found
	domainSet   map[string]bool   //
	access      []string          // lines of the new access file
	accessKeys  map[string]string // map key → where it came from
	aliases     []string          // lines of the new aliases file
	aliasKeys   map[string]string // alias name → where it came from
	smarthost   string
	routes      map[string]string
	skipped     []string // "file:line: reason: text"
	notes       []string // carried, but not exactly: "file:line: note"
	filesRead   []string
	filesAbsent []string
}

func newSMImport(from string) *smImport {
	return &smImport{from: from, domainSet: map[string]bool{}, accessKeys: map[string]string{},
		aliasKeys: map[string]string{}, routes: map[string]string{}}
}

// skip records a line that is not carried over.
func (im *smImport) skip(file string, line int, text, format string, args ...any) {
	im.skipped = append(im.skipped, fmt.Sprintf("%s:%d: %s: %s", filepath.Join(im.from, file), line, fmt.Sprintf(format, args...), strings.TrimSpace(text)))
}

// note records a line carried over with a difference worth knowing.
func (im *smImport) note(file string, line int, format string, args ...any) {
	im.notes = append(im.notes, fmt.Sprintf("%s:%d: %s", filepath.Join(im.from, file), line, fmt.Sprintf(format, args...)))
}

// eachLine calls fn for every line of the file name in the --from
// directory that is not blank or a '#' comment. A missing file is fine:
// sendmail runs without most of them.
func (im *smImport) eachLine(name string, fn func(n int, line string)) error {
	path := filepath.Join(im.from, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		im.filesAbsent = append(im.filesAbsent, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("import sendmail: %w", err)
	}
	defer f.Close()
	im.filesRead = append(im.filesRead, name)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), maxImportLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		fn(n, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("import sendmail: %s:%d: %w", path, n+1, err)
	}
	return nil
}

// addDomain adds a local domain once; it reports false for a name popgate
// cannot use as a domain.
func (im *smImport) addDomain(d string) bool {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if !isHostName(d) {
		return false
	}
	if !im.domainSet[d] {
		im.domainSet[d] = true
		im.domains = append(im.domains, d)
	}
	return true
}

// addAccess adds one access rule after checking it with popgate's own
// parser; a rule whose key is already there is skipped. It reports
// whether the rule was added.
func (im *smImport) addAccess(file string, n int, src, key, value string) bool {
	line := key + "\t" + value
	rules, err := acl.ParseRulesString(line)
	if err != nil {
		var pe *acl.ParseError
		if errors.As(err, &pe) {
			err = errors.New(pe.Msg)
		}
		im.skip(file, n, src, "popgate cannot read it as an access rule (%v)", err)
		return false
	}
	mk := rules.List()[0].MapKey()
	if where, dup := im.accessKeys[mk]; dup {
		im.skip(file, n, src, "key %s already set by %s", key, where)
		return false
	}
	im.accessKeys[mk] = fmt.Sprintf("%s:%d", file, n)
	im.access = append(im.access, line)
	return true
}

// addAlias adds one aliases(5) entry after checking it with popgate's own
// parser.
func (im *smImport) addAlias(file string, n int, src, name string, targets []string) {
	name = strings.ToLower(name)
	line := name + ": " + strings.Join(targets, ", ")
	if _, err := aliases.Parse(strings.NewReader(line + "\n")); err != nil {
		im.skip(file, n, src, "popgate cannot read it as an alias (%v)", strings.TrimPrefix(err.Error(), "aliases: line 1: "))
		return
	}
	if where, dup := im.aliasKeys[name]; dup {
		im.skip(file, n, src, "%s already set by %s", name, where)
		return
	}
	im.aliasKeys[name] = fmt.Sprintf("%s:%d", file, n)
	im.aliases = append(im.aliases, line)
}

// readSendmailCf takes the Cw lines (local host names) and the DS line
// (smart host) of sendmail.cf. The rest of the file is sendmail's rule
// machinery, which has no popgate counterpart and is not listed.
func (im *smImport) readSendmailCf() error {
	const file = "sendmail.cf"
	return im.eachLine(file, func(n int, line string) {
		switch {
		case strings.HasPrefix(line, "Cw"):
			for _, d := range strings.Fields(line[2:]) {
				if !im.addDomain(d) {
					im.skip(file, n, line, "%q is not a domain name", d)
				}
			}
		case strings.HasPrefix(line, "DS"):
			v := strings.TrimSpace(line[2:])
			if v == "" {
				im.smarthost = "" // the last DS wins, as in sendmail
				return
			}
			// DSmailer:host names the mailer too ("DSsmtp:[relay]").
			if m, rest, ok := strings.Cut(v, ":"); ok && m != "" && strings.Trim(strings.ToLower(m), "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
				v = rest
			}
			hp, direct, err := mailerHost(v)
			if err != nil {
				im.skip(file, n, line, "smart host: %v", err)
				return
			}
			if !direct {
				im.note(file, n, "smart host %s was looked up by MX; popgate dials %s directly", v, hp)
			}
			im.smarthost = hp
		}
	})
}

// readDomainList reads local-host-names: one host or domain name a line.
func (im *smImport) readDomainList(file string) error {
	return im.eachLine(file, func(n int, line string) {
		d := strings.TrimSpace(line)
		if !im.addDomain(d) {
			im.skip(file, n, line, "%q is not a domain name popgate can serve", d)
		}
	})
}

// readRelayDomains turns relay-domains into access rules: sendmail's
// class R lets clients in those domains (or networks) relay and lets
// anyone relay to those domains, which is To:domain RELAY and
// Connect:domain RELAY in sendmail's own access syntax.
func (im *smImport) readRelayDomains() error {
	const file = "relay-domains"
	return im.eachLine(file, func(n int, line string) {
		d := strings.ToLower(strings.TrimSpace(line))
		if isNetworkKey(d) {
			im.addAccess(file, n, line, "Connect:"+d, "RELAY")
			return
		}
		if im.addAccess(file, n, line, "To:"+d, "RELAY") {
			im.addAccess(file, n, line, "Connect:"+d, "RELAY")
		}
	})
}

// isNetworkKey reports a dotted IPv4 network or address as sendmail's
// class R and access keys write it ("192.168.0", "10").
func isNetworkKey(s string) bool {
	if s == "" {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// readAccess carries the access file line by line: whatever popgate's
// parser accepts goes over as it is, anything else is listed.
func (im *smImport) readAccess() error {
	const file = "access"
	return im.eachLine(file, func(n int, line string) {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			key, value, ok = strings.Cut(strings.TrimSpace(line), " ")
		}
		if !ok {
			im.skip(file, n, line, "no value after the key")
			return
		}
		im.addAccess(file, n, line, key, strings.TrimSpace(value))
	})
}

// readAliases carries aliases(5) entries (continuation lines joined).
// Program and file targets are dropped and listed: popgate delivers only
// to mailboxes. :include: stays.
func (im *smImport) readAliases() error {
	const file = "aliases"
	var cur string
	curLine := 0
	flush := func() {
		if cur == "" {
			return
		}
		entry := cur
		cur = ""
		name, rest, ok := strings.Cut(entry, ":")
		if !ok {
			im.skip(file, curLine, entry, "no ':' after the alias name")
			return
		}
		var keep []string
		for _, t := range splitQuoted(rest) {
			t = strings.TrimSpace(t)
			switch {
			case t == "":
			case strings.HasPrefix(t, "|"), strings.HasPrefix(t, `"|`), strings.HasPrefix(t, "/"):
				im.skip(file, curLine, name+": "+t, "popgate delivers only to mailboxes, not to programs or files")
			default:
				keep = append(keep, t)
			}
		}
		if len(keep) > 0 {
			im.addAlias(file, curLine, entry, strings.TrimSpace(name), keep)
		}
	}
	err := im.eachLine(file, func(n int, line string) {
		if line[0] == ' ' || line[0] == '\t' {
			if cur == "" {
				im.skip(file, n, line, "continuation line without an alias before it")
				return
			}
			cur += " " + strings.TrimSpace(line)
			return
		}
		flush()
		cur, curLine = line, n
	})
	flush()
	return err
}

// splitQuoted splits on commas outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// readVirtusertable turns virtusertable entries into aliases: user@domain
// and the @domain catch-all, local targets (a bare user is a mailbox in
// the user domain), "%1" kept for catch-alls, and error:... as a To:
// access rule that refuses the address (an error:nouser catch-all is
// popgate's default for unknown users and needs nothing).
func (im *smImport) readVirtusertable() error {
	const file = "virtusertable"
	return im.eachLine(file, func(n int, line string) {
		f := strings.Fields(line)
		if len(f) < 2 {
			im.skip(file, n, line, "no value after the key")
			return
		}
		key, value := strings.ToLower(f[0]), strings.Join(f[1:], " ")
		local, domain, ok := strings.Cut(key, "@")
		if !ok || domain == "" || strings.ContainsAny(local, "+*") {
			im.skip(file, n, line, "want user@domain or @domain (plus-detail keys are not supported)")
			return
		}
		if !im.domainSet[domain] {
			if !im.addDomain(domain) {
				im.skip(file, n, line, "%q is not a domain name", domain)
				return
			}
			im.note(file, n, "%s added to domains (virtusertable serves it)", domain)
		}
		if v, isErr := strings.CutPrefix(strings.ToLower(f[1]), "error:"); isErr {
			if local == "" {
				if strings.HasPrefix(v, "nouser") || strings.HasPrefix(v, "5.1.1") {
					im.note(file, n, "@%s refusing unknown users is what popgate does anyway", domain)
					return
				}
				im.skip(file, n, line, "an error for a whole domain is not carried over")
				return
			}
			rule, err := errorRule(value)
			if err != nil {
				im.skip(file, n, line, "%v", err)
				return
			}
			im.addAccess(file, n, line, "To:"+key, rule)
			return
		}
		if len(f) != 2 {
			im.skip(file, n, line, "one target expected")
			return
		}
		target := strings.ToLower(f[1])
		if strings.ContainsAny(target, "%") && (local != "" || strings.Count(target, "%") != 1 || !strings.HasPrefix(target, "%1@")) {
			im.skip(file, n, line, "only %%1@domain is carried over, and only for an @domain catch-all")
			return
		}
		if !strings.Contains(target, "@") {
			target += "@" + im.userDomain
		}
		if _, tdom, _ := strings.Cut(target, "@"); !im.domainSet[tdom] {
			im.skip(file, n, line, "popgate does not forward to remote addresses")
			return
		}
		im.addAlias(file, n, line, key, []string{target})
	})
}

// errorRule translates a virtusertable or mailertable error mailer value
// ("error:nouser", "error:nouser User unknown", "error:5.7.1:550 text")
// into an access ERROR value.
func errorRule(value string) (string, error) {
	v := strings.TrimSpace(value[len("error:"):])
	if rest, ok := cutFold(v, "nouser"); ok {
		text := strings.TrimSpace(rest)
		if text == "" {
			text = "User unknown"
		}
		return "ERROR:5.1.1:550 " + text, nil
	}
	rule := "ERROR:" + v
	if _, err := acl.ParseRulesString("To:x.example " + rule); err != nil {
		return "", fmt.Errorf("error value %q is not D.S.N:### text", v)
	}
	return rule, nil
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// readMailertable turns mailertable entries into queue routes: smtp,
// esmtp, smtp8, dsmtp and relay to a host (optionally :port) become
// queue.routes; "." becomes the smart host; local: makes the domain
// local; error: becomes a To: access rule for an exact domain.
func (im *smImport) readMailertable() error {
	const file = "mailertable"
	return im.eachLine(file, func(n int, line string) {
		f := strings.Fields(line)
		if len(f) != 2 && !(len(f) > 2 && strings.HasPrefix(strings.ToLower(f[1]), "error:")) {
			im.skip(file, n, line, "want \"domain mailer:host\"")
			return
		}
		key := strings.TrimSuffix(strings.ToLower(f[0]), ".")
		if f[0] == "." {
			key = "."
		}
		mailer, host, _ := strings.Cut(strings.Join(f[1:], " "), ":")
		switch strings.ToLower(mailer) {
		case "smtp", "esmtp", "smtp8", "dsmtp", "relay":
			hp, direct, err := mailerHost(host)
			if err != nil {
				im.skip(file, n, line, "%v", err)
				return
			}
			if !direct {
				im.note(file, n, "%s was looked up by MX; popgate dials %s directly", host, hp)
			}
			if key == "." {
				if im.smarthost != "" && im.smarthost != hp {
					im.note(file, n, "the default route %s replaces the DS smart host %s", hp, im.smarthost)
				}
				im.smarthost = hp
				return
			}
			if d := strings.TrimPrefix(key, "."); !validRouteDomain(d) {
				im.skip(file, n, line, "%q is not a domain name", f[0])
				return
			}
			im.routes[key] = hp
		case "local":
			if strings.HasPrefix(key, ".") || host != "" || !im.addDomain(key) {
				im.skip(file, n, line, "only \"domain local:\" is carried over (as a local domain)")
				return
			}
		case "error":
			if strings.HasPrefix(key, ".") || key == "." {
				im.skip(file, n, line, "an error route for subdomains is not carried over")
				return
			}
			rule, err := errorRule(strings.Join(f[1:], " "))
			if err != nil {
				im.skip(file, n, line, "%v", err)
				return
			}
			im.addAccess(file, n, line, "To:"+key, rule)
		default:
			im.skip(file, n, line, "mailer %q has no popgate counterpart", mailer)
		}
	})
}

func validRouteDomain(d string) bool { return isHostName(d) }

// isHostName accepts the names sendmail's files hold for hosts and
// domains: lowercase letters, digits, '-', '_' and dots between labels
// (internationalised names are written in their xn-- form).
func isHostName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// mailerHost reads a mailer host as sendmail writes it: "[host]" (no MX
// lookup) or "host" (MX lookup), an optional ":port", several hosts
// separated by ':' are not supported. It returns host:port for popgate.
func mailerHost(s string) (hostport string, direct bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, errors.New("no host")
	}
	host, port := s, "25"
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false, fmt.Errorf("%q: unclosed '['", s)
		}
		host, direct = s[1:end], true
		if rest := s[end+1:]; rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", false, fmt.Errorf("%q: unexpected text after ']'", s)
			}
			port = p
		}
		host = strings.TrimPrefix(strings.TrimPrefix(host, "IPv6:"), "ipv6:")
	} else if h, p, ok := strings.Cut(s, ":"); ok {
		host, port = h, p
	}
	if strings.Trim(port, "0123456789") != "" || port == "" || len(port) > 5 {
		return "", false, fmt.Errorf("%q: %q is not a port (several hosts are not supported)", s, port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		direct = true
		return net.JoinHostPort(a.String(), port), direct, nil
	}
	if host = strings.ToLower(host); !isHostName(host) {
		return "", false, fmt.Errorf("%q: bad host", s)
	}
	return host + ":" + port, direct, nil
}
