package acl

import (
	"net/netip"
	"strings"
)

// The checks in this file answer for another MTA (a Postfix smtpd asking
// over the policy delegation protocol, a sendmail or Postfix reading the
// access map through a socket map). They never look at recipients being
// local to popgate: the asking MTA has its own idea of what is local.

// CheckRelayClient decides whether the client of req may relay to req.To,
// for a policy server asked by another MTA. Connect: rules come first: a
// REJECT, ERROR or DISCARD for the client is returned as it is. Then To:
// rules on the recipient may refuse it, as in CheckRcpt. Then the relay
// check of CheckRcpt for a remote recipient: trusted networks, RELAY
// rules for the client or the recipient domain, a live POP3 grant (req's
// AuthUser counts too, so callers speaking for another MTA leave it
// empty). An allowed relay is Action Relay; no objection and no
// permission is Action Accept (the policy protocol's DUNNO).
func (p *Policy) CheckRelayClient(req Request) Decision {
	if d := p.CheckConnect(req); d.Action != Accept {
		return d
	}
	if req.To == "" {
		return Decision{Action: Accept, Reason: "no recipient: client accepted"}
	}
	local, domain := splitAddress(req.To)
	if rule := p.rules.searchAddress("to", local, domainKey(domain), false); rule != nil {
		switch rule.Verdict {
		case VerdictOK, VerdictRelay, VerdictSkip:
		default:
			return ruleDecision(rule, rcptRejected)
		}
	}
	d := p.relay(req, local, domain)
	if d.Action != Relay {
		return Decision{Action: Accept, Reason: d.Reason}
	}
	return d
}

// SendmailMapValue is what the access map written by a FlavorSendmail
// Mirror holds for key, read without writing the map: the static rule
// whose lowercased key is key, else for "connect:IP" (IPv6 as
// "connect:ipv6:" + the full form) the live grant's RELAY. Keys are
// compared in lowercase, as makemap stores them.
func SendmailMapValue(rules *Rules, grants GrantStore, key string) (string, bool) {
	key = strings.ToLower(key)
	if rules != nil {
		if i, ok := rules.byKey[key]; ok {
			return rules.list[i].Value, true
		}
	}
	if grants == nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(key, "connect:")
	if !ok {
		return "", false
	}
	var ip netip.Addr
	if v6, ok := strings.CutPrefix(rest, "ipv6:"); ok {
		full, err := parseIPv6Key(v6)
		if err != nil || full != v6 || strings.Count(full, ":") != 7 {
			return "", false
		}
		a, err := netip.ParseAddr(full)
		if err != nil {
			return "", false
		}
		ip = a
	} else {
		a, err := netip.ParseAddr(rest)
		if err != nil || !a.Is4() || a.String() != rest {
			return "", false
		}
		ip = a
	}
	if _, ok := grants.Lookup(ip); !ok {
		return "", false
	}
	_, value := grantEntry(ip, FlavorSendmail)
	return value, true
}
