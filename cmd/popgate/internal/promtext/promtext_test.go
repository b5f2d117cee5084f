package promtext

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads r's output back with Prometheus's own text parser, which
// refuses what a Prometheus server would refuse.
func parse(t *testing.T, r *Registry) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the output: %v\n%s", err, buf.String())
	}
	return buf.String(), fams
}

func TestCountersAndGauges(t *testing.T) {
	r := NewRegistry()
	logins := NewCounterVec("x_logins_total", "Logins by result.", "result")
	logins.With("ok").Inc()
	logins.With("ok").Add(2.5)
	logins.With("failed")
	logins.With("ok").Add(-1)         // ignored: counters only go up
	logins.With("ok").Add(math.NaN()) // ignored
	level := 7.0
	r.Register(logins, GaugeFunc{Name: "x_level", Help: "A level.", Value: func() float64 { return level }},
		GaugeFunc{Name: "x_build_info", Help: "Always 1.", Labels: []Label{{"version", "v1.2"}}, Value: func() float64 { return 1 }})
	text, fams := parse(t, r)
	want := `# HELP x_logins_total Logins by result.
# TYPE x_logins_total counter
x_logins_total{result="failed"} 0
x_logins_total{result="ok"} 3.5
# HELP x_level A level.
# TYPE x_level gauge
x_level 7
# HELP x_build_info Always 1.
# TYPE x_build_info gauge
x_build_info{version="v1.2"} 1
`
	if text != want {
		t.Errorf("got\n%s\nwant\n%s", text, want)
	}
	if fams["x_logins_total"].GetType() != dto.MetricType_COUNTER || fams["x_level"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("types: %v", fams)
	}
	level = math.Inf(1)
	if text, _ := parse(t, r); !strings.Contains(text, "x_level +Inf\n") {
		t.Errorf("+Inf written as:\n%s", text)
	}
}

func TestEscaping(t *testing.T) {
	r := NewRegistry()
	v := NewCounterVec("x_total", "Help with a \\ backslash\nand a second line.", "path")
	odd := "C:\\dir \"quoted\"\nnext"
	v.With(odd).Inc()
	r.Register(v)
	text, fams := parse(t, r)
	if !strings.Contains(text, `# HELP x_total Help with a \\ backslash\nand a second line.`+"\n") {
		t.Errorf("help not escaped:\n%s", text)
	}
	m := fams["x_total"].GetMetric()
	if len(m) != 1 || m[0].GetLabel()[0].GetValue() != odd || fams["x_total"].GetHelp() != "Help with a \\ backslash\nand a second line." {
		t.Errorf("read back: %v", fams["x_total"])
	}
}

func TestHistogram(t *testing.T) {
	r := NewRegistry()
	h := NewHistogramVec("x_seconds", "Durations.", "result", []float64{0.5, 0.1, 1, 0.5})
	h.With("ok").Observe(0.1) // on a bound: counted in it (le is inclusive)
	h.With("ok").Observe(0.3)
	h.With("ok").Observe(7)
	h.With("error")
	r.Register(h)
	text, fams := parse(t, r)
	for _, want := range []string{
		`x_seconds_bucket{result="ok",le="0.1"} 1`,
		`x_seconds_bucket{result="ok",le="0.5"} 2`,
		`x_seconds_bucket{result="ok",le="1"} 2`,
		`x_seconds_bucket{result="ok",le="+Inf"} 3`,
		`x_seconds_sum{result="ok"} 7.4`,
		`x_seconds_count{result="ok"} 3`,
		`x_seconds_bucket{result="error",le="+Inf"} 0`,
		`x_seconds_count{result="error"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, `le="0.5"`) != 2 {
		t.Errorf("duplicate bound not merged:\n%s", text)
	}
	hist := fams["x_seconds"].GetMetric()[1].GetHistogram() // ordered: error, ok
	if fams["x_seconds"].GetType() != dto.MetricType_HISTOGRAM || hist.GetSampleCount() != 3 || len(hist.GetBucket()) != 4 {
		t.Errorf("read back: %v", fams["x_seconds"])
	}
}

// TestRuntimeAndProcess: the Go and process families exist under the
// names Prometheus's Go client uses, and hold plausible values.
func TestRuntimeAndProcess(t *testing.T) {
	r := NewRegistry()
	r.Register(GoCollector{}, ProcessCollector{})
	_, fams := parse(t, r)
	for _, name := range []string{"go_goroutines", "go_threads", "go_info", "go_gc_duration_seconds",
		"go_memstats_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if g := fams["go_goroutines"].GetMetric()[0].GetGauge().GetValue(); g < 1 {
		t.Errorf("go_goroutines = %v", g)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_open_fds", "process_max_fds",
		"process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds"} {
		if fams[name] == nil || len(fams[name].GetMetric()) != 1 {
			t.Errorf("no %s", name)
		}
	}
	if rss := fams["process_resident_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); rss < 1<<20 {
		t.Errorf("resident memory %v bytes", rss)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses: the fields
	// start after the last ')'.
	line := "4242 (pop) gate (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12 5 0 0 20 0 9 0 777 1234567 890 18446744073709551615"
	st, ok := parseStat([]byte(line))
	if !ok || st.start != 777 || st.vsize != 1234567 || st.rss != 890 {
		t.Errorf("parseStat = %+v, %v", st, ok)
	}
	for _, bad := range []string{"", "4242 (popgate S 1", "4242 (popgate) S 1 2 3", "4242 (p) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12 5 0 0 20 0 9 0 x 1 2"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	v := NewCounterVec("x_total", "X.", "k")
	v.With("a").Inc()
	r.Register(v)
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ContentType || !strings.Contains(rec.Body.String(), `x_total{k="a"} 1`) {
		t.Errorf("%d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

// TestConcurrent counts and observes from many goroutines while
// scraping; -race checks it, and no increment may be lost.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	v := NewCounterVec("x_total", "X.", "k")
	h := NewHistogramVec("x_seconds", "X.", "k", []float64{1})
	r.Register(v, h)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 1000 {
				v.With("a").Inc()
				h.With([]string{"a", "b"}[i%2]).Observe(0.5)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			parse(t, r)
		}
	})
	wg.Wait()
	if got := v.With("a").Value(); got != 8000 {
		t.Errorf("counted %v, want 8000", got)
	}
}
