package promtext

import (
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// Counter is a value that only goes up. It is safe for concurrent use.
type Counter struct {
	bits atomic.Uint64 // a float64
}

// Inc adds 1.
func (c *Counter) Inc() { c.Add(1) }

// Add adds v, which must not be negative; a negative v is ignored.
func (c *Counter) Add(v float64) {
	if !(v >= 0) { // also NaN
		return
	}
	for {
		old := c.bits.Load()
		if c.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Value is the current count.
func (c *Counter) Value() float64 { return math.Float64frombits(c.bits.Load()) }

// CounterVec is a family of counters told apart by one label.
type CounterVec struct {
	name, help, label string

	mu       sync.Mutex
	counters map[string]*Counter
}

// NewCounterVec returns an empty family; With adds its members.
func NewCounterVec(name, help, label string) *CounterVec {
	return &CounterVec{name: name, help: help, label: label, counters: map[string]*Counter{}}
}

// With returns the counter for the label value, created at 0 on first
// use, so that a value known in advance shows before its first event.
func (v *CounterVec) With(value string) *Counter {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.counters[value]
	if !ok {
		c = &Counter{}
		v.counters[value] = c
	}
	return c
}

// Collect writes the family, its counters ordered by label value.
func (v *CounterVec) Collect(w *Writer) {
	values, counters := snapshot(&v.mu, v.counters)
	w.Family(v.name, v.help, "counter")
	for i, k := range values {
		w.Sample(v.name, []Label{{v.label, k}}, counters[i].Value())
	}
}

// snapshot returns m's label values in order and their members, read
// under mu, so that a scrape writes them without holding it.
func snapshot[T any](mu *sync.Mutex, m map[string]T) ([]string, []T) {
	mu.Lock()
	defer mu.Unlock()
	keys := slices.Sorted(maps.Keys(m))
	vals := make([]T, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return keys, vals
}

// GaugeFunc is a gauge whose value is read when it is scraped.
type GaugeFunc struct {
	Name, Help string
	Labels     []Label // constant labels; may be nil
	Value      func() float64
}

// Collect writes the gauge.
func (g GaugeFunc) Collect(w *Writer) {
	w.Family(g.Name, g.Help, "gauge")
	w.Sample(g.Name, g.Labels, g.Value())
}
