package acl

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// BenchmarkCheckRcptWith100kGrants measures one relay decision with
// 100,000 live grants, the access rules of the HOWTO and two trusted
// networks. It reports the median and 99th percentile of single decisions
// (p50-ns, p99-ns); on a loaded machine the tail is the scheduler's.
func BenchmarkCheckRcptWith100kGrants(b *testing.B) {
	const n = 100_000
	rules, err := ParseRulesString(howtoAccess)
	if err != nil {
		b.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	grants, err := NewGrants(GrantsConfig{TTL: time.Hour, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	ips := make([]netip.Addr, n)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{100, byte(64 + i>>16), byte(i >> 8), byte(i)})
		grants.LoginSucceeded("user@example.com", ips[i])
	}
	if len(grants.List()) != n {
		b.Fatalf("%d grants, want %d", len(grants.List()), n)
	}
	p := NewPolicy(Config{
		LocalDomains:    []string{"example.com"},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Rules:           rules,
		Grants:          grants,
	})
	durations := make([]time.Duration, 0, 1<<20) // b.N is not known before b.Loop
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := Request{IP: ips[(i*7919)%n], Hostname: "client.dialup.example", From: "user@example.com", To: "someone@elsewhere.example"}
		start := time.Now()
		d := p.CheckRcpt(req)
		if len(durations) < cap(durations) {
			durations = append(durations, time.Since(start))
		}
		if d.Action != Relay {
			b.Fatalf("decision %v: %s", d.Action, d.Reason)
		}
	}
	b.StopTimer()
	if len(durations) > 0 {
		slices.Sort(durations)
		at := func(q float64) float64 { return float64(durations[int(float64(len(durations)-1)*q)].Nanoseconds()) }
		b.ReportMetric(at(0.50), "p50-ns")
		b.ReportMetric(at(0.99), "p99-ns")
	}
}
