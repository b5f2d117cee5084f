package promtext

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// FuzzExposition writes a counter with arbitrary help text and label value
// and a gauge with an arbitrary value: Prometheus's parser must accept the
// output and read back exactly what went in.
func FuzzExposition(f *testing.F) {
	f.Add("Logins by result.", "ok", 1.5)
	f.Add("a \\ backslash\nand a line", "C:\\dir \"q\"\n", math.Inf(1))
	f.Add("", "", math.NaN())
	f.Add("}{=,\"", "le", math.Copysign(0, -1))
	f.Fuzz(func(t *testing.T, help, value string, v float64) {
		if !utf8.ValidString(help) || !utf8.ValidString(value) {
			t.Skip("the format is UTF-8")
		}
		r := NewRegistry()
		c := NewCounterVec("x_total", help, "k")
		c.With(value).Inc()
		r.Register(c, GaugeFunc{Name: "x_gauge", Help: help, Value: func() float64 { return v }})
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("refused: %v\n%s", err, buf.String())
		}
		// The format cannot keep blanks between the name and the text.
		ctr := fams["x_total"]
		if ctr.GetHelp() != strings.TrimLeft(help, " \t") || ctr.GetMetric()[0].GetLabel()[0].GetValue() != value || ctr.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Fatalf("read back %v from\n%s", ctr, buf.String())
		}
		got := fams["x_gauge"].GetMetric()[0].GetGauge().GetValue()
		if got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
			t.Fatalf("gauge %v read back as %v", v, got)
		}
		if strings.Count(buf.String(), "\n") != 6 {
			t.Fatalf("a value broke a line:\n%s", buf.String())
		}
	})
}

// FuzzParseStat: any /proc/self/stat line is parsed or refused, never a
// panic, and the command name cannot shift the fields.
func FuzzParseStat(f *testing.F) {
	f.Add("4242 (popgate) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12 5 0 0 20 0 9 0 777 1234567 890 18446744073709551615")
	f.Add("1 (a) b)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		st, ok := parseStat([]byte(line))
		if !ok {
			return
		}
		// Whatever precedes the last ')' is the command: replacing it
		// changes nothing.
		i := strings.LastIndexByte(line, ')')
		again, ok2 := parseStat([]byte("1 (x" + line[i:]))
		if !ok2 || again != st {
			t.Fatalf("%q: %+v, with another command %+v", line, st, again)
		}
	})
}
