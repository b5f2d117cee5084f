package promtext

import (
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"
)

// GoCollector writes the Go runtime's metrics under the names Prometheus's
// Go client uses (go_goroutines, go_memstats_*, go_gc_duration_seconds…),
// so that existing dashboards and alerts work unchanged.
type GoCollector struct{}

// Collect reads the runtime's statistics once and writes them.
func (GoCollector) Collect(w *Writer) {
	gauge := func(name, help string, v float64) { w.Single(name, help, "gauge", v) }
	counter := func(name, help string, v float64) { w.Single(name, help, "counter", v) }

	gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	gauge("go_threads", "Number of OS threads created.", float64(pprof.Lookup("threadcreate").Count()))
	w.Family("go_info", "Information about the Go environment.", "gauge")
	w.Sample("go_info", []Label{{"version", runtime.Version()}}, 1)

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5) // min, 25%, 50%, 75%, max
	debug.ReadGCStats(&gc)
	w.Family("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", "summary")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		w.Sample("go_gc_duration_seconds", []Label{{"quantile", q}}, gc.PauseQuantiles[i].Seconds())
	}
	w.Sample("go_gc_duration_seconds_sum", nil, gc.PauseTotal.Seconds())
	w.Sample("go_gc_duration_seconds_count", nil, float64(gc.NumGC))

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", float64(ms.Alloc))
	counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", float64(ms.TotalAlloc))
	gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", float64(ms.Sys))
	counter("go_memstats_mallocs_total", "Total number of heap objects allocated.", float64(ms.Mallocs))
	counter("go_memstats_frees_total", "Total number of heap objects frees.", float64(ms.Frees))
	gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", float64(ms.HeapAlloc))
	gauge("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", float64(ms.HeapSys))
	gauge("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", float64(ms.HeapIdle))
	gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse))
	gauge("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", float64(ms.HeapReleased))
	gauge("go_memstats_heap_objects", "Number of currently allocated objects.", float64(ms.HeapObjects))
	gauge("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator.", float64(ms.StackInuse))
	gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", float64(ms.NextGC))
	gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", float64(ms.LastGC)/1e9)
}
