package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// target is one host to try for a destination, in preference order.
type target struct {
	// name is the host's name: TLS server name and DSN Remote-MTA.
	name string
	// addrs, if set, are dialled as they are (smarthost "host:port" or an
	// address literal); otherwise name is resolved with LookupHost.
	addrs []string
}

// routeDest prefixes the destination of mail sent along a route, so that
// domains routed to one host share its connections.
const routeDest = "route "

// routeFor returns the "host:port" a route sends domain's mail to: the
// domain's own entry, else the nearest ".parent" entry.
func (q *Queue) routeFor(domain string) (string, bool) {
	if len(q.cfg.Routes) == 0 {
		return "", false
	}
	domain = strings.TrimSuffix(domain, ".")
	if hp, ok := q.cfg.Routes[domain]; ok {
		return hp, true
	}
	for d := domain; ; {
		dot := strings.IndexByte(d, '.')
		if dot < 0 {
			return "", false
		}
		if hp, ok := q.cfg.Routes[d[dot:]]; ok {
			return hp, true
		}
		d = d[dot+1:]
	}
}

// CheckRoutes rejects Config.Routes keys that are not (dot-prefixed) domain names in
// lowercase and values that are not host:port.
func CheckRoutes(routes map[string]string) error {
	for k, v := range routes {
		d := strings.TrimPrefix(k, ".")
		if d == "" || d != strings.ToLower(d) || strings.ContainsAny(d, " \t@[]:/") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("queue: config: route %q: want a lowercase domain, or .domain for the domains below it", k)
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("queue: config: route %s: %q is not host:port", k, v)
		}
	}
	return nil
}

// routeError is a routing failure with its enhanced status code; perm
// failures bounce at once.
type routeError struct {
	status string
	perm   bool
	err    error
}

func (e *routeError) Error() string { return e.err.Error() }

// route returns the hosts that receive mail for domain (RFC 5321 §5.1).
func (q *Queue) route(ctx context.Context, domain string) ([]target, error) {
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := domain[1 : len(domain)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
			lit = lit[5:]
		}
		ip, err := netip.ParseAddr(lit)
		if err != nil {
			// RFC 3463: X.1.2 bad destination system address.
			return nil, &routeError{status: "5.1.2", perm: true, err: fmt.Errorf("bad address literal %s", domain)}
		}
		return []target{{name: ip.String(), addrs: []string{net.JoinHostPort(ip.String(), q.cfg.Port)}}}, nil
	}
	mxs, err := q.cfg.Resolver.LookupMX(ctx, domain)
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			return nil, &routeError{status: "4.4.3", err: fmt.Errorf("MX lookup for %s: %w", domain, err)}
		}
		mxs = nil
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		// RFC 7505 §4.1: a null MX means the domain takes no mail.
		return nil, &routeError{status: "5.1.10", perm: true, err: fmt.Errorf("domain %s does not accept mail (null MX)", domain)}
	}
	if len(mxs) == 0 {
		// RFC 5321 §5.1: no MX, the domain itself is the implicit MX,
		// but only if it has an address at all.
		if _, err := q.cfg.Resolver.LookupHost(ctx, domain); err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return nil, &routeError{status: "5.1.2", perm: true, err: fmt.Errorf("domain %s not found", domain)}
			}
			return nil, &routeError{status: "4.4.3", err: fmt.Errorf("address lookup for %s: %w", domain, err)}
		}
		return []target{{name: domain}}, nil
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	out := make([]target, 0, len(mxs))
	for _, mx := range mxs {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			continue // a null MX among others is ignored (RFC 7505 §3)
		}
		out = append(out, target{name: h})
	}
	return out, nil
}

// addrsOf returns dialable host:port strings for t.
func (q *Queue) addrsOf(ctx context.Context, t target) ([]string, error) {
	if t.addrs != nil {
		return t.addrs, nil
	}
	ips, err := q.cfg.Resolver.LookupHost(ctx, t.name)
	if err != nil {
		return nil, fmt.Errorf("address lookup for %s: %w", t.name, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, q.cfg.Port))
	}
	return out, nil
}
