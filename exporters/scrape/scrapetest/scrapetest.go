// Package scrapetest holds the test helpers every exporter collector uses:
// golden-file comparison through testutil.GatherAndCompare, promtool's
// lint over real output, and reading a collector's success gauge and logs.
package scrapetest

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
	"github.com/ballast-cloud/ballast/exporters/scrape"
)

var update = flag.Bool("update", false, "rewrite golden files from the collectors' current output")

// Logs is a concurrency-safe log sink for asserting on what a collector logged.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger returns a debug-level text logger writing to a new Logs.
func Logger() (*slog.Logger, *Logs) {
	l := &Logs{}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// Registry returns a registry holding c as the only collector of a scrape.Set.
func Registry(t testing.TB, name string, c scrape.Collector, logger *slog.Logger) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(scrape.NewSet(map[string]scrape.Collector{name: c}, logger)))
	return reg
}

// Success returns the value of ballast_exporter_scrape_collector_success for name.
func Success(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	return Value(t, g, scrape.Namespace+"_scrape_collector_success", map[string]string{"collector": name})
}

// Value returns the value of the single series of family with the given
// labels (a subset match); it fails the test when none or several match.
func Value(t testing.TB, g prometheus.Gatherer, family string, lbls map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var found []float64
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range lbls {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				found = append(found, m.GetGauge().GetValue())
			case m.Counter != nil:
				found = append(found, m.GetCounter().GetValue())
			default:
				found = append(found, m.GetUntyped().GetValue())
			}
		}
	}
	require.Len(t, found, 1, "series %s%v", family, lbls)
	return found[0]
}

// Families returns the names of the families gathered from g.
func Families(t testing.TB, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names
}

// CompareGolden compares the families named (all but the per-collector
// scrape metrics when none are named) with the golden file; go test -update
// rewrites the file.
func CompareGolden(t testing.TB, g prometheus.Gatherer, golden string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		for _, n := range Families(t, g) {
			if !strings.HasPrefix(n, scrape.Namespace+"_scrape_") {
				names = append(names, n)
			}
		}
	}
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		require.NoError(t, os.WriteFile(golden, Text(t, g, names...), 0o644))
	}
	f, err := os.Open(golden)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, testutil.GatherAndCompare(g, f, names...))
}

// Text renders the named families (all when none are named) in the text
// exposition format.
func Text(t testing.TB, g prometheus.Gatherer, names ...string) []byte {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if len(want) > 0 && !want[mf.GetName()] {
			continue
		}
		require.NoError(t, enc.Encode(mf))
	}
	return buf.Bytes()
}

// Promtool runs `promtool check metrics` over everything g exposes and
// fails the test on any finding that no pattern in accepted matches (as
// node_exporter's checkmetrics.sh does for names it must keep, such as
// node_memory_MemTotal_bytes).
func Promtool(t testing.TB, g prometheus.Gatherer, accepted ...*regexp.Regexp) {
	t.Helper()
	bin := testenv.RequireBinary(t, "promtool")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(Text(t, g))
	out, err := cmd.CombinedOutput()
	var findings []string
next:
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		for _, re := range accepted {
			if re.MatchString(line) {
				continue next
			}
		}
		findings = append(findings, line)
	}
	require.Empty(t, findings, "promtool check metrics (%v)", err)
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "run promtool")
		require.Equal(t, 3, ee.ExitCode(), "promtool exits 3 for lint findings only:\n%s", out)
	}
}
