package smtptest

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// HeapPeak samples the heap every 5 ms from now on, after a GC, to show
// that a message is streamed rather than held: a benchmark calls the
// returned function after b.StopTimer to report, as "peak-heap-MB", how
// far the heap in use rose above where it started.
func HeapPeak(b *testing.B) (report func()) {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	go func() {
		defer close(done)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		p := peak.Load()
		b.ReportMetric(float64(p-min(p, base.HeapInuse))/(1<<20), "peak-heap-MB")
	}
}
