package scrape

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
)

var (
	plainDesc   = prometheus.NewDesc("test_plain", "Values with \\ and \nin help.", []string{"b", "a"}, nil)
	counterDesc = prometheus.NewDesc("test_total", "A counter.", []string{"domain", "uuid", "dev"}, nil)
	summaryDesc = prometheus.NewDesc("test_summary", "A summary.", nil, nil)
	histDesc    = prometheus.NewDesc("test_hist", "A histogram.", []string{"x"}, nil)
	untypedDesc = prometheus.NewDesc("test_untyped", "Untyped.", nil, nil)
	helpADesc   = prometheus.NewDesc("test_clash", "One help.", nil, nil)
	helpBDesc   = prometheus.NewDesc("test_clash", "Another help.", []string{"k"}, nil)
	dupDesc     = prometheus.NewDesc("test_dup", "Sent twice.", []string{"k"}, nil)
)

// mixed sends what real collectors send: const metrics with awkward label
// values and special floats, a summary and a histogram, and Sender metrics
// out of label order.
type mixed struct{}

func (mixed) Update(ch chan<- prometheus.Metric) error {
	for i, v := range []float64{0, 1, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e-12, 123456789.125, -2.5e300} {
		ch <- prometheus.MustNewConstMetric(plainDesc, prometheus.GaugeValue, v, fmt.Sprintf("v%d", i), `quote " back \ nl `+"\n")
	}
	ch <- prometheus.NewMetricWithTimestamp(time.UnixMilli(1700000000123), prometheus.MustNewConstMetric(plainDesc, prometheus.GaugeValue, 7, "ts", "x"))
	ch <- prometheus.MustNewConstSummary(summaryDesc, 3, 12.5, map[float64]float64{0.5: 4, 0.99: 9})
	ch <- prometheus.MustNewConstHistogram(histDesc, 3, 12.5, map[float64]uint64{1: 1, 10: 3}, "h")
	ch <- prometheus.MustNewConstMetric(untypedDesc, prometheus.UntypedValue, 42)
	out := NewSender(ch)
	for _, d := range []string{"vm-b", "vm-a", "vm-c"} { // out of order: Gather sorts
		dom, uuid := Pair("domain", d), Pair("uuid", "u-"+d)
		for _, dev := range []string{"vdb", "vda"} {
			out.Counter(counterDesc, float64(len(d)+len(dev)), Labels(Pair("dev", dev), uuid, dom))
		}
	}
	return nil
}

// failing sends the series Gather must reject or report.
type failing struct{}

func (failing) Update(ch chan<- prometheus.Metric) error {
	ch <- prometheus.MustNewConstMetric(helpADesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(helpBDesc, prometheus.GaugeValue, 2, "k")
	ch <- prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 1, "same")
	ch <- prometheus.MustNewConstMetric(dupDesc, prometheus.GaugeValue, 2, "same")
	return nil
}

func newTestSet(cs map[string]Collector) *Set {
	s := NewSet(cs, slog.New(slog.DiscardHandler))
	at := time.Unix(1700000000, 0)
	s.now = func() time.Time { return at } // scrape durations of 0: comparable output
	return s
}

func text(t *testing.T, mfs []*dto.MetricFamily) string {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		require.NoError(t, enc.Encode(mf))
	}
	return b.String()
}

func TestGatherMatchesRegistry(t *testing.T) {
	set := newTestSet(map[string]Collector{"mixed": mixed{}})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(set))
	want, err := reg.Gather()
	require.NoError(t, err)
	got, err := set.Gather()
	require.NoError(t, err)
	require.Equal(t, text(t, want), text(t, got))
	require.Contains(t, text(t, got), `test_total{dev="vda",domain="vm-a",uuid="u-vm-a"} 7`)
}

func TestGatherReportsWhatTheRegistryRejects(t *testing.T) {
	set := newTestSet(map[string]Collector{"failing": failing{}})
	mfs, err := set.Gather()
	require.ErrorContains(t, err, `collected metric test_clash has help "Another help."`)
	require.ErrorContains(t, err, `collected metric "test_dup"`)
	require.ErrorContains(t, err, "was collected before with the same name and label values")
	out := text(t, mfs)
	require.Equal(t, 1, strings.Count(out, "test_dup{"), "one of the duplicates is kept")
	require.Contains(t, out, "test_clash 1")

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(set))
	_, err = reg.Gather()
	require.ErrorContains(t, err, "was collected before with the same name and label values", "the registry agrees")
}

func TestWriteTextMatchesExpfmt(t *testing.T) {
	mfs, err := newTestSet(map[string]Collector{"mixed": mixed{}}).Gather()
	require.NoError(t, err)
	// A family with a name only UTF-8 escaping accepts goes through expfmt.
	utf8Desc := prometheus.NewDesc("test.dotted", "Dotted name.", []string{"la.bel"}, nil)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(oneMetric{prometheus.MustNewConstMetric(utf8Desc, prometheus.GaugeValue, 3, "v")}))
	dotted, err := reg.Gather()
	require.NoError(t, err)
	mfs = append(mfs, dotted...)
	for _, format := range []expfmt.Format{
		expfmt.NewFormat(expfmt.TypeTextPlain),
		expfmt.NewFormat(expfmt.TypeTextPlain).WithEscapingScheme(0), // allow UTF-8 names
		expfmt.FmtText,
	} {
		var want, got bytes.Buffer
		enc := expfmt.NewEncoder(&want, format)
		for _, mf := range mfs {
			require.NoError(t, enc.Encode(mf))
		}
		require.NoError(t, writeText(&got, mfs, format))
		require.Equal(t, want.String(), got.String(), "format %s", format)
	}
}

func TestHandler(t *testing.T) {
	set := newTestSet(map[string]Collector{"mixed": mixed{}})
	h := Handler(set, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	ref := promhttp.HandlerFor(set, promhttp.HandlerOpts{})
	get := func(h http.Handler, header map[string]string, query string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, "/metrics"+query, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	body := func(r *http.Response) string {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			require.NoError(t, err)
			rd = zr
		}
		b, err := io.ReadAll(rd)
		require.NoError(t, err)
		return string(b)
	}

	for _, tc := range []struct {
		name    string
		header  map[string]string
		query   string
		gzipped bool
	}{
		{"prometheus", map[string]string{"Accept": "text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "Accept-Encoding": "gzip"}, "", true},
		{"prometheus 3", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,*/*;q=0.1", "Accept-Encoding": "gzip"}, "", true},
		{"curl", nil, "", false},
		{"gzip refused", map[string]string{"Accept-Encoding": "gzip;q=0, *"}, "", false},
		{"protobuf goes to promhttp", map[string]string{"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}, "", false},
		{"filter goes to promhttp", nil, "?name[]=test_total", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := get(h, tc.header, tc.query), get(ref, tc.header, tc.query)
			require.Equal(t, http.StatusOK, got.StatusCode)
			require.Equal(t, want.Header.Get("Content-Type"), got.Header.Get("Content-Type"))
			require.Equal(t, tc.gzipped, got.Header.Get("Content-Encoding") == "gzip")
			require.Equal(t, want.Header.Values("Vary"), got.Header.Values("Vary"))
			require.Equal(t, body(want), body(got))
		})
	}

	t.Run("nothing gathered", func(t *testing.T) {
		h := Handler(newTestSet(map[string]Collector{"failing": failing{}}), promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
		r := get(h, nil, "")
		require.Equal(t, http.StatusInternalServerError, r.StatusCode)
		require.Contains(t, body(r), "was collected before")
	})
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "deflate": false, "GZIP;q=0.5": true,
		"gzip;q=0": false, "*": true, "gzip;q=0, *": false, "*;q=0": false, "br, *;q=0.1": true,
	} {
		require.Equal(t, want, acceptsGzip(header), "%q", header)
	}
}

// BenchmarkWriteText encodes 30 000 series of 1000 domains, the instance
// collector's scrape.
func BenchmarkWriteText(b *testing.B) {
	ch := make(chan prometheus.Metric, 40000)
	out := NewSender(ch)
	for d := range 1000 {
		name := fmt.Sprintf("instance-%08x", d)
		dom, uuid := Pair("domain", name), Pair("uuid", fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a7b-%012x", d))
		set := Labels(dom, uuid, Pair("dev", "vda"))
		for range 30 {
			out.Counter(counterDesc, float64(d)*1e6+0.5, set)
		}
	}
	close(ch)
	mf := &dto.MetricFamily{Name: new("test_total"), Help: new("A counter."), Type: dto.MetricType_COUNTER.Enum()}
	for m := range ch {
		var dm dto.Metric
		require.NoError(b, m.Write(&dm))
		mf.Metric = append(mf.Metric, &dm)
	}
	mfs := []*dto.MetricFamily{mf}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	b.Run("writeText", func(b *testing.B) {
		for b.Loop() {
			_ = writeText(io.Discard, mfs, format)
		}
	})
	b.Run("expfmt", func(b *testing.B) {
		enc := expfmt.NewEncoder(bufio.NewWriterSize(io.Discard, 64<<10), format)
		for b.Loop() {
			_ = enc.Encode(mf)
		}
	})
}

func TestPairInterned(t *testing.T) {
	a, b := Pair("os_type", "hvm"), Pair("os_type", "hvm")
	require.Same(t, a, b, "one pair for every label set that has it")
	require.Same(t, a.Name, Pair("os_type", "xen").Name, "one name for every pair")
	require.Equal(t, "bad\uFFFDvalue", Pair("serial", "bad\xffvalue").GetValue(), "invalid UTF-8 replaced")
	require.Equal(t, []string{"a", "b", "c"}, func() (names []string) {
		for _, p := range Labels(Pair("c", "3"), Pair("a", "1"), Pair("b", "2")) {
			names = append(names, p.GetName())
		}
		return names
	}())

	// A pair no label set holds any more is forgotten.
	count := func() int {
		pairs.Lock()
		defer pairs.Unlock()
		return len(pairs.m)
	}
	for i := range 1000 {
		Pair("scratch", fmt.Sprint(i))
	}
	require.Eventually(t, func() bool {
		runtime.GC()
		return count() < 1000
	}, 10*time.Second, 10*time.Millisecond)
}
