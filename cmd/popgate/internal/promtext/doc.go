// Package promtext keeps popgate's metrics and writes them in the
// Prometheus text exposition format, version 0.0.4: counters and
// histograms by one label, gauges read at scrape time, and the Go runtime
// and process metrics that Prometheus's own Go client exports under the
// same names.
//
// It is what popgate needs of a metrics library and no more: about twenty
// series, written on demand. The whole of prometheus/client_golang with
// its protobuf runtime was a fifth of the CPU time of a first
// `go tool task run`; the format is one page of specification, and the
// tests read this package's output back with Prometheus's own parser.
package promtext
