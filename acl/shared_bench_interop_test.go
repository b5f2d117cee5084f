//go:build interop

package acl

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/popgate/popgate/internal/redistest"
)

// reportPercentiles adds p50-ns and p99-ns of durations to b.
func reportPercentiles(b *testing.B, durations []time.Duration) {
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	at := func(q float64) float64 { return float64(durations[int(float64(len(durations)-1)*q)].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkInteropSharedGrantLatency measures, on a real redis-server,
// the time from a login on instance A (LoginSucceeded, which writes the
// key and publishes) until instance B's RCPT check relays for that IP.
func BenchmarkInteropSharedGrantLatency(b *testing.B) {
	srv := redistest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newBenchInstance(b, ctx, srv.URL(0))
	bb := newBenchInstance(b, ctx, srv.URL(0))
	for !a.s.Status().Up || !bb.s.Status().Up {
		time.Sleep(time.Millisecond)
	}
	changed := make(chan struct{}, 1)
	bb.g.OnChange(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	durations := make([]time.Duration, 0, 1<<16)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		client := netip.AddrFrom4([4]byte{100, byte(64 + i>>16&63), byte(i >> 8), byte(i)})
		start := time.Now()
		a.g.LoginSucceeded("alice@example.com", client)
		for !bb.relays(client) {
			<-changed
		}
		if len(durations) < cap(durations) {
			durations = append(durations, time.Since(start))
		}
	}
	b.StopTimer()
	reportPercentiles(b, durations)
}

// BenchmarkInteropCheckRcptShared100k is BenchmarkCheckRcptWith100kGrants
// in shared mode: instance A makes 100,000 grants through a real
// redis-server, and one relay decision is timed on instance B, whose
// replica received them all. There is no Redis round trip per decision.
func BenchmarkInteropCheckRcptShared100k(b *testing.B) {
	const n = 100_000
	srv := redistest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxA, stopA := context.WithCancel(ctx)
	a := newBenchInstance(b, ctxA, srv.URL(0))
	bb := newBenchInstance(b, ctx, srv.URL(0))
	for !a.s.Status().Up || !bb.s.Status().Up {
		time.Sleep(time.Millisecond)
	}
	ips := make([]netip.Addr, n)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{100, byte(64 + i>>16), byte(i >> 8), byte(i)})
	}
	var wg sync.WaitGroup
	const writers = 16
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				a.g.LoginSucceeded("user@example.com", ips[i])
			}
		})
	}
	wg.Wait()
	for len(bb.g.List()) < n {
		time.Sleep(10 * time.Millisecond)
	}
	// Only B is measured: A, which wrote the grants, stops, as it would
	// be another machine.
	stopA()
	_ = a.g.Close()
	a = nil
	runtime.GC()
	rules, err := ParseRulesString(howtoAccess)
	if err != nil {
		b.Fatal(err)
	}
	p := NewPolicy(Config{
		LocalDomains:    []string{"example.com"},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Rules:           rules,
		Grants:          bb.g,
	})
	durations := make([]time.Duration, 0, 1<<20)
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
	reportPercentiles(b, durations)
}

func newBenchInstance(b *testing.B, ctx context.Context, url string) *redisInstance {
	b.Helper()
	g, err := NewGrants(GrantsConfig{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewShared(g, url, "", SharedConfig{Retry: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	go g.Start(ctx)
	go s.Run(ctx)
	b.Cleanup(func() { _ = g.Close() })
	return &redisInstance{g: g, s: s, policy: NewPolicy(Config{LocalDomains: []string{"example.com"}, Grants: g}), logs: &logBuffer{}}
}
