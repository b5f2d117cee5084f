package promtext

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// A Collector writes one or more metric families when the registry is
// scraped.
type Collector interface {
	Collect(w *Writer)
}

// Registry is an ordered set of collectors. The zero value is not usable;
// call NewRegistry.
type Registry struct {
	mu         sync.Mutex
	collectors []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds collectors; they are written in the order registered.
func (r *Registry) Register(cs ...Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, cs...)
}

// WriteTo writes every collector's families to w.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	cs := append([]Collector(nil), r.collectors...)
	r.mu.Unlock()
	cw := &countingWriter{w: w}
	pw := &Writer{w: bufio.NewWriter(cw)}
	for _, c := range cs {
		c.Collect(pw)
	}
	err := pw.w.Flush()
	return cw.n, err
}

// Handler serves the registry, one scrape per GET.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = r.WriteTo(w) // an error here is the client gone
	})
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Label is one name="value" pair of a sample.
type Label struct {
	Name, Value string
}

// Writer writes metric families in the text format. Collectors get one
// from the registry; its errors surface in Registry.WriteTo.
type Writer struct {
	w *bufio.Writer
}

// Family starts a family: its HELP and TYPE lines. typ is counter, gauge,
// histogram or untyped.
func (w *Writer) Family(name, help, typ string) {
	w.w.WriteString("# HELP ")
	w.w.WriteString(name)
	w.w.WriteByte(' ')
	w.w.WriteString(helpEscaper.Replace(help))
	w.w.WriteString("\n# TYPE ")
	w.w.WriteString(name)
	w.w.WriteByte(' ')
	w.w.WriteString(typ)
	w.w.WriteByte('\n')
}

// Single writes a family of one sample without labels.
func (w *Writer) Single(name, help, typ string, v float64) {
	w.Family(name, help, typ)
	w.Sample(name, nil, v)
}

// Sample writes one sample line of the current family.
func (w *Writer) Sample(name string, labels []Label, v float64) {
	w.w.WriteString(name)
	if len(labels) > 0 {
		w.w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.w.WriteByte(',')
			}
			w.w.WriteString(l.Name)
			w.w.WriteString(`="`)
			w.w.WriteString(valueEscaper.Replace(l.Value))
			w.w.WriteByte('"')
		}
		w.w.WriteByte('}')
	}
	w.w.WriteByte(' ')
	w.w.WriteString(formatFloat(v))
	w.w.WriteByte('\n')
}

// Escaping as the format requires: backslash and newline in HELP text,
// and also the double quote in label values.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
