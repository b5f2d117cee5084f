package acl

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Config configures a Policy.
type Config struct {
	LocalDomains    []string       // mail for these domains is delivered locally
	TrustedNetworks []netip.Prefix // clients here may always relay; empty: nobody is trusted
	Rules           *Rules         // static access rules; may be nil
	Grants          GrantStore     // POP-before-SMTP grants; may be nil
	Logger          *slog.Logger   // may be nil
}

// Request is what the SMTP server knows when it asks.
type Request struct {
	IP       netip.Addr // client address; IPv4-mapped IPv6 is unmapped
	Hostname string     // verified client host name, or "" (an unverified PTR name must not be passed: it could claim a RELAY domain)
	// From and To are bare, normalised addresses "local@domain" (domain in
	// lowercase, possibly an IP literal "[1.2.3.4]", which is never local).
	// From may be "" (the null sender).
	From     string
	To       string
	AuthUser string // SMTP AUTH identity, or ""
}

// Action is what the SMTP server should do with a command.
type Action int

// Actions a Decision can carry.
const (
	Accept   Action = iota + 1 // continue; for RCPT: local delivery
	Relay                      // RCPT to a remote domain is allowed
	Reject                     // permanent refusal (5xx)
	TempFail                   // temporary refusal (4xx)
	Discard                    // accept, then throw the message away
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Relay:
		return "relay"
	case Reject:
		return "reject"
	case TempFail:
		return "tempfail"
	case Discard:
		return "discard"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is the answer to one check.
type Decision struct {
	Action   Action
	Code     int    // SMTP reply code for Reject and TempFail, e.g. 554
	Enhanced string // enhanced status code, e.g. "5.7.1"
	Text     string // reply text, e.g. "Relaying denied"
	Reason   string // why, for logs and `popgate access why`
	// GrantUser and GrantTime are set when a POP3 grant allowed the relay.
	GrantUser string
	GrantTime time.Time
}

// Policy decides connections, senders and recipients. It is safe for
// concurrent use; it holds no mutable state of its own.
type Policy struct {
	local   map[string]bool
	trusted []netip.Prefix
	rules   *Rules
	grants  GrantStore
	logger  *slog.Logger
}

// Default replies, as sendmail's proto.m4 words them. A connection refused
// before the greeting gets 554 (RFC 5321 §3.1).
var (
	connectRejected = Decision{Action: Reject, Code: 554, Enhanced: "5.7.1", Text: "Access denied"}
	senderRejected  = Decision{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Access denied"}
	rcptRejected    = Decision{Action: Reject, Code: 550, Enhanced: "5.2.1", Text: "Mailbox disabled for this recipient"}
	relayDenied     = Decision{Action: Reject, Code: 554, Enhanced: "5.7.1", Text: "Relaying denied"}
	rcptMissing     = Decision{Action: Reject, Code: 553, Enhanced: "5.1.3", Text: "User address required"}
)

// NewPolicy builds a Policy. Domains are compared case-insensitively.
func NewPolicy(cfg Config) *Policy {
	p := &Policy{
		local:  make(map[string]bool, len(cfg.LocalDomains)),
		rules:  cfg.Rules,
		grants: cfg.Grants,
		logger: cfg.Logger,
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range cfg.LocalDomains {
		p.local[strings.TrimSuffix(strings.ToLower(d), ".")] = true
	}
	for _, n := range cfg.TrustedNetworks {
		if n.IsValid() {
			p.trusted = append(p.trusted, netip.PrefixFrom(n.Addr().Unmap(), unmappedBits(n)).Masked())
		}
	}
	return p
}

// unmappedBits converts an IPv4-mapped IPv6 prefix length to IPv4.
func unmappedBits(n netip.Prefix) int {
	if n.Addr().Is4In6() && n.Bits() >= 96 {
		return n.Bits() - 96
	}
	return n.Bits()
}

// CheckConnect applies Connect: and untagged rules to the client: its host
// name first, then, only if nothing matched, its address (check_relay).
func (p *Policy) CheckConnect(req Request) Decision {
	ip := req.IP.Unmap()
	rule := p.rules.lookupDomain("connect", hostKey(req.Hostname))
	if rule == nil {
		rule = p.rules.lookupAddr("connect", ip)
	}
	if rule == nil {
		return Decision{Action: Accept, Reason: "no rule: connection accepted"}
	}
	return ruleDecision(rule, connectRejected)
}

// CheckFrom applies From: and untagged rules to the envelope sender:
// "user@domain", "user@", then the domain and its parents (check_mail).
// The null sender is always accepted (RFC 1123 §5.2.9).
func (p *Policy) CheckFrom(req Request) Decision {
	if req.From == "" {
		return Decision{Action: Accept, Reason: "null sender"}
	}
	local, domain := splitAddress(req.From)
	rule := p.rules.searchAddress("from", local, domainKey(domain), true)
	if rule == nil {
		return Decision{Action: Accept, Reason: "no rule: sender accepted"}
	}
	return ruleDecision(rule, senderRejected)
}

// CheckRcpt decides one recipient. To: and untagged rules on the address
// can refuse it (blocklist_recipients); a local recipient is accepted; a
// remote one is relayed only for an SMTP-AUTH session, a trusted network,
// a RELAY rule for the client IP, client host name or recipient domain, or
// a live POP3 grant for the client IP. Everything else gets 554 5.7.1.
// Call it for every RCPT: a grant that expired since the last one no
// longer counts.
func (p *Policy) CheckRcpt(req Request) Decision {
	if req.To == "" {
		d := rcptMissing
		d.Reason = "empty recipient"
		return d
	}
	local, domain := splitAddress(req.To)
	isLocal := p.isLocal(local, domain)
	// blocklist_recipients: user@ is searched only for local domains.
	if rule := p.rules.searchAddress("to", local, domainKey(domain), isLocal); rule != nil {
		switch rule.Verdict {
		case VerdictOK, VerdictRelay, VerdictSkip:
			// No objection; relaying is decided below.
		default:
			return ruleDecision(rule, rcptRejected)
		}
	}
	if isLocal {
		return Decision{Action: Accept, Reason: fmt.Sprintf("local domain %s", domain)}
	}
	return p.relay(req, local, domain)
}

// Trusted reports whether ip is in one of the trusted networks.
func (p *Policy) Trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// relay decides whether the client may send to a remote recipient.
func (p *Policy) relay(req Request, local, domain string) Decision {
	if req.AuthUser != "" {
		return Decision{Action: Relay, Reason: fmt.Sprintf("SMTP AUTH as %s", req.AuthUser)}
	}
	ip := req.IP.Unmap()
	if ip.IsValid() {
		for _, n := range p.trusted {
			if n.Contains(ip) {
				return Decision{Action: Relay, Reason: fmt.Sprintf("trusted network %s", n)}
			}
		}
	}
	// A To: RELAY names the recipient domain; it never covers a local part
	// that routes elsewhere (user%other@domain, host!user@domain).
	if !hasRouting(local) {
		if rule := p.rules.lookupDomain("to", domainKey(domain)); rule != nil && rule.Verdict == VerdictRelay {
			return relayByRule(rule)
		}
	}
	if rule := p.rules.lookupAddr("connect", ip); rule != nil && rule.Verdict == VerdictRelay {
		return relayByRule(rule)
	}
	if rule := p.rules.lookupDomain("connect", hostKey(req.Hostname)); rule != nil && rule.Verdict == VerdictRelay {
		return relayByRule(rule)
	}
	if p.grants != nil && ip.IsValid() {
		if g, ok := p.grants.Lookup(ip); ok {
			return Decision{
				Action:    Relay,
				Reason:    fmt.Sprintf("POP3 grant for %s until %s", g.User, g.Expires.UTC().Format(time.RFC3339)),
				GrantUser: g.User,
				GrantTime: g.Granted,
			}
		}
	}
	d := relayDenied
	d.Reason = "no rule: relaying denied"
	p.logger.Debug("acl relay denied", "ip", ip.String(), "host", req.Hostname, "to", req.To)
	return d
}

func relayByRule(rule *Rule) Decision {
	return Decision{Action: Relay, Reason: rule.describe()}
}

// ruleDecision turns a found rule into a decision; reject is the reply
// for a plain REJECT.
func ruleDecision(rule *Rule, reject Decision) Decision {
	reason := rule.describe()
	switch rule.Verdict {
	case VerdictReject:
		d := reject
		d.Reason = reason
		return d
	case VerdictDiscard:
		return Decision{Action: Discard, Reason: reason}
	case VerdictError:
		a := Reject
		if rule.Code < 500 {
			a = TempFail
		}
		return Decision{Action: a, Code: rule.Code, Enhanced: rule.Enhanced, Text: rule.Text, Reason: reason}
	default: // OK, RELAY
		return Decision{Action: Accept, Reason: reason}
	}
}

// isLocal reports whether local@domain is delivered here. An IP literal,
// an unknown domain, or a local part with routing characters is not.
func (p *Policy) isLocal(local, domain string) bool {
	if domain == "" || strings.HasPrefix(domain, "[") || hasRouting(local) {
		return false
	}
	return p.local[strings.ToLower(domain)]
}

// hasRouting reports local parts that would route mail on: the percent
// hack, UUCP bang paths, a second '@' (quoted), source-route colons.
func hasRouting(local string) bool {
	return strings.ContainsAny(local, "%!@:")
}

// splitAddress splits at the last '@'; an address without one is all
// local part.
func splitAddress(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return strings.ToLower(addr), ""
	}
	return strings.ToLower(addr[:at]), strings.ToLower(addr[at+1:])
}

// domainKey is the domain as access keys can name it: IP literals and
// anything else that is not a plain name never match a domain rule.
func domainKey(domain string) string {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if domain == "" || strings.ContainsAny(domain, "[]:") {
		return ""
	}
	return domain
}

// hostKey is the client host name for Connect: lookups; sendmail's
// unresolved "[1.2.3.4]" form is no name.
func hostKey(host string) string {
	return domainKey(host)
}
