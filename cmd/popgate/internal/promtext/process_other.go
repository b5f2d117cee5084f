//go:build !linux

package promtext

// ProcessCollector writes nothing where there is no /proc: popgate's
// process metrics are read from Linux's.
type ProcessCollector struct{}

// Collect writes nothing.
func (ProcessCollector) Collect(*Writer) {}
