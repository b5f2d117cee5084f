package promtext

import (
	"slices"
	"sync"
)

// Histogram counts observations into buckets with fixed upper bounds. It
// is safe for concurrent use.
type Histogram struct {
	bounds []float64 // ascending; +Inf is implicit

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // first bound >= v: le is inclusive
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// HistogramVec is a family of histograms told apart by one label, all
// with the same buckets.
type HistogramVec struct {
	name, help, label string
	bounds            []float64

	mu    sync.Mutex
	hists map[string]*Histogram
}

// NewHistogramVec returns an empty family with the given bucket upper
// bounds (sorted here; +Inf is added).
func NewHistogramVec(name, help, label string, bounds []float64) *HistogramVec {
	b := slices.Clone(bounds)
	slices.Sort(b)
	return &HistogramVec{name: name, help: help, label: label, bounds: slices.Compact(b), hists: map[string]*Histogram{}}
}

// With returns the histogram for the label value, created empty on first
// use.
func (v *HistogramVec) With(value string) *Histogram {
	v.mu.Lock()
	defer v.mu.Unlock()
	h, ok := v.hists[value]
	if !ok {
		h = &Histogram{bounds: v.bounds, counts: make([]uint64, len(v.bounds)+1)}
		v.hists[value] = h
	}
	return h
}

// Collect writes the family: cumulative buckets, sum and count per label
// value, ordered by label value.
func (v *HistogramVec) Collect(w *Writer) {
	values, hists := snapshot(&v.mu, v.hists)
	w.Family(v.name, v.help, "histogram")
	for i, k := range values {
		h := hists[i]
		h.mu.Lock()
		counts, sum, count := slices.Clone(h.counts), h.sum, h.count
		h.mu.Unlock()
		var cum uint64
		for j, c := range counts {
			cum += c
			le := "+Inf"
			if j < len(v.bounds) {
				le = formatFloat(v.bounds[j])
			}
			w.Sample(v.name+"_bucket", []Label{{v.label, k}, {"le", le}}, float64(cum))
		}
		w.Sample(v.name+"_sum", []Label{{v.label, k}}, sum)
		w.Sample(v.name+"_count", []Label{{v.label, k}}, float64(count))
	}
}
