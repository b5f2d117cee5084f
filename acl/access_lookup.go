package acl

import (
	"net/netip"
	"strings"
)

// Lookups mirror sendmail's proto.m4 rulesets with the "+" mark: at each
// key, the tagged form first, then the untagged one.

// get looks up one key with tag (lowercase, e.g. "connect"), then without.
func (r *Rules) get(tag, key string) *Rule {
	if i, ok := r.tagged[tagKey{tag, key}]; ok {
		return &r.list[i]
	}
	if i, ok := r.untagged[key]; ok {
		return &r.list[i]
	}
	return nil
}

// LookupDomain is sendmail's ruleset D: the domain itself, then each parent
// ("mail.spamford.com", "spamford.com", "com"). SKIP ends the search
// without a result. tag is "Connect", "From" or "To".
func (r *Rules) LookupDomain(tag, domain string) (Rule, bool) {
	if rule := r.lookupDomain(strings.ToLower(tag), strings.ToLower(domain)); rule != nil {
		return *rule, true
	}
	return Rule{}, false
}

func (r *Rules) lookupDomain(tag, domain string) *Rule {
	if r == nil || len(r.list) == 0 || domain == "" {
		return nil
	}
	for d := domain; ; {
		if rule := r.get(tag, d); rule != nil {
			if rule.Verdict == VerdictSkip {
				return nil
			}
			return rule
		}
		dot := strings.IndexByte(d, '.')
		if dot < 0 {
			return nil
		}
		d = d[dot+1:]
	}
}

// LookupAddr is sendmail's ruleset A: the address, then shorter networks
// ("1.2.3.4", "1.2.3", "1.2", "1"; IPv6 by dropping groups from the right).
// SKIP ends the search without a result.
func (r *Rules) LookupAddr(tag string, ip netip.Addr) (Rule, bool) {
	if rule := r.lookupAddr(strings.ToLower(tag), ip); rule != nil {
		return *rule, true
	}
	return Rule{}, false
}

func (r *Rules) lookupAddr(tag string, ip netip.Addr) *Rule {
	if r == nil || len(r.list) == 0 || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap()
	var key, sep string
	if ip.Is4() {
		key, sep = ip.WithZone("").String(), "."
	} else {
		key, sep = "ipv6:"+fullIPv6(ip), ":"
	}
	for {
		if rule := r.get(tag, key); rule != nil {
			if rule.Verdict == VerdictSkip {
				return nil
			}
			return rule
		}
		i := strings.LastIndex(key, sep)
		if i < 0 || key[:i] == "ipv6" {
			return nil
		}
		key = key[:i]
	}
}

// searchAddress is sendmail's SearchList over <F:user@domain> <U:user@>
// <D:domain>, the user@ step only when withUser is set (check_rcpt skips
// it for remote domains). A found SKIP or nothing returns nil.
func (r *Rules) searchAddress(tag, local, domain string, withUser bool) *Rule {
	if r == nil || len(r.list) == 0 {
		return nil
	}
	if local != "" && domain != "" {
		if rule := r.get(tag, local+"@"+domain); rule != nil {
			return rule
		}
	}
	if local != "" && withUser {
		if rule := r.get(tag, local+"@"); rule != nil {
			return rule
		}
	}
	return r.lookupDomain(tag, domain)
}
