package policyd

import (
	"io"
	"slices"
	"testing"
	"time"
)

// BenchmarkPolicyAnswer measures one request and its answer over a real
// loopback connection to a real policy over real grants, as a Postfix
// smtpd asks at each RCPT, and reports the latency percentiles.
func BenchmarkPolicyAnswer(b *testing.B) {
	for _, c := range []struct{ name, client string }{
		{"granted", "198.51.100.7"},
		{"unknown", "203.0.113.5"},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, _, _ := newPolicy(b)
			cl := dial(b, start(b, New(Config{Decider: p})))
			req := request("RCPT", c.client, "unknown", "bob@remote.example")
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := io.WriteString(cl.c, req); err != nil {
					b.Fatal(err)
				}
				if _, err := cl.r.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				if _, err := cl.r.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
