package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// TestPrometheusRemoteWritePeer runs Debian's Prometheus 2.42 as a real peer:
// it scrapes a target and remote-writes everything to Ballast, and the same
// PromQL asked of both must give the same answer.
func TestPrometheusRemoteWritePeer(t *testing.T) {
	promBin := testenv.RequireBinary(t, "prometheus")
	ballast := startServer(t, t.TempDir())

	// The scraped target: gauges and a counter that move every scrape.
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "peer_temperature_celsius", Help: "A gauge."}, []string{"sensor"})
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "peer_requests_total", Help: "A counter."}, []string{"code"})
	reg.MustRegister(gauge, counter)
	scrapes := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes++
		for i := 0; i < 5; i++ {
			gauge.WithLabelValues(fmt.Sprint(i)).Set(float64(20 + i + scrapes%3))
			counter.WithLabelValues(fmt.Sprint(200 + i)).Add(float64(i + 1))
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	defer target.Close()

	dir := t.TempDir()
	promAddr := freePort(t)
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: peer
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
`, strings.TrimPrefix(target.URL, "http://"), ballast.url)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	cmd := exec.Command(promBin, "--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", promAddr, "--log.level", "warn")
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", logs.String())
		}
	}()
	pc, err := api.NewClient(api.Config{Address: "http://" + promAddr})
	require.NoError(t, err)
	prom := promv1.NewAPI(pc)
	ours := ballast.api(t)
	ctx := context.Background()

	// Let a few scrapes happen and reach Ballast.
	require.Eventually(t, func() bool {
		v, _, _, err := ours.Query(ctx, `count_over_time(peer_requests_total{code="200"}[1m])`, time.Now())
		return err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value >= 6
	}, 60*time.Second, 250*time.Millisecond, "samples from Prometheus's remote write reach Ballast")

	// Ask both about a moment whose samples have surely been forwarded.
	// (Range selectors are left out: Prometheus 3, which Ballast embeds,
	// made them left-open, so rate() over the same samples can differ from
	// 2.42's by design.)
	at := time.Now().Add(-3 * time.Second)
	for _, q := range []string{
		`peer_temperature_celsius`,
		`sum by (code) (peer_requests_total)`,
		`peer_requests_total * 2 + on() group_left() vector(1)`,
		`up{job="peer"}`,
		`scrape_samples_scraped{job="peer"}`,
	} {
		want, _, _, err := prom.Query(ctx, q, at)
		require.NoError(t, err, q)
		got, _, _, err := ours.Query(ctx, q, at)
		require.NoError(t, err, q)
		require.NotEmpty(t, want.(model.Vector), q)
		require.Equal(t, vectorString(want.(model.Vector)), vectorString(got.(model.Vector)), q)
	}
	r := promv1.Range{Start: at.Add(-4 * time.Second), End: at, Step: time.Second}
	want, _, _, err := prom.QueryRange(ctx, `peer_requests_total`, r)
	require.NoError(t, err)
	got, _, _, err := ours.QueryRange(ctx, `peer_requests_total`, r)
	require.NoError(t, err)
	require.Equal(t, want.String(), got.String())
}

// vectorString renders a vector in a stable order for comparison.
func vectorString(v model.Vector) string {
	lines := make([]string, 0, len(v))
	for _, s := range v {
		lines = append(lines, s.Metric.String()+" "+s.Value.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
