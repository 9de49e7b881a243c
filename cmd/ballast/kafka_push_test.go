package main

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
)

// TestExporterPushThroughKafka: `ballast exporter --push.kafka-brokers` →
// Kafka → two `ballast server --role=ingester` in one consumer group → TSDB.
// PromQL over both ingesters finds every pushed sample exactly once.
func TestExporterPushThroughKafka(t *testing.T) {
	brokers := strings.Join(kfaketest.New(t, kfaketest.Options{MinSessionTimeout: time.Second}), ",")
	a := startServer(t, t.TempDir(), "--kafka.brokers", brokers, "--role", "ingester")
	b := startServer(t, t.TempDir(), "--kafka.brokers", brokers, "--role", "ingester")

	require.Eventually(t, func() bool { return assigned(a) && assigned(b) }, 60*time.Second, 200*time.Millisecond,
		"both ingesters are assigned samples partitions")

	exp := exec.Command(binary, "exporter", "--web.listen-address", freePort(t), "--push.kafka-brokers", brokers,
		"--push.interval", "300ms", "--push.label", "job=e2e", "--libvirt.uri=",
		"--no-collector.instance", "--no-collector.inventory", "--no-collector.ceph")
	logs := &syncBuffer{}
	exp.Stdout, exp.Stderr = logs, logs
	require.NoError(t, exp.Start())
	defer func() {
		_ = exp.Process.Kill()
		_ = exp.Wait()
		if t.Failed() {
			t.Logf("exporter logs:\n%s", logs.String())
		}
	}()

	ctx := context.Background()
	query := func(p *proc, q string) model.Vector {
		v, _, _, err := p.api(t).Query(ctx, q, time.Now().Add(time.Second))
		require.NoError(t, err, q)
		return v.(model.Vector)
	}
	// Let it push several times, then stop it gracefully (it flushes).
	require.Eventually(t, func() bool {
		return len(query(a, `node_memory_MemTotal_bytes{job="e2e"}`))+len(query(b, `node_memory_MemTotal_bytes{job="e2e"}`)) == 1
	}, 60*time.Second, 200*time.Millisecond, "pushed samples reach an ingester")
	time.Sleep(2 * time.Second)
	require.NoError(t, exp.Process.Signal(syscall.SIGTERM))
	require.NoError(t, exp.Wait())

	// Each series holds one sample per push. A series normally lives on one
	// ingester; a consumer-group rebalance can move its partition, so the
	// check merges both by timestamp (as a querier in front of several
	// ingesters, Thanos or Mimir, does).
	perSeries := map[string]float64{}
	var stable int
	require.Eventually(t, func() bool {
		clear(perSeries)
		stamps := map[string]map[model.Time]bool{}
		for _, p := range []*proc{a, b} {
			// node_* series exist from the first push (some of the
			// agent's own metrics appear only after their first event).
			v, _, _, err := p.api(t).Query(ctx, `{job="e2e",__name__=~"node_.+"}[10m]`, time.Now().Add(time.Second))
			require.NoError(t, err)
			for _, s := range v.(model.Matrix) {
				key := s.Metric.String()
				if stamps[key] == nil {
					stamps[key] = map[model.Time]bool{}
				}
				for _, v := range s.Values {
					stamps[key][v.Timestamp] = true
				}
			}
		}
		for key, ts := range stamps {
			perSeries[key] = float64(len(ts))
		}
		n := len(perSeries)
		if n > 0 && n == stable {
			return true
		}
		stable = n
		return false
	}, 60*time.Second, time.Second)
	pushes := 0.0
	for _, c := range perSeries {
		pushes = max(pushes, c)
	}
	require.GreaterOrEqual(t, pushes, 3.0)
	for key, c := range perSeries {
		require.Equal(t, pushes, c, "series %s has a sample from every push (no gaps)", key)
	}
	// Sums: a constant gauge summed over all pushes is pushes × its value.
	var mem, memSum float64
	for _, p := range []*proc{a, b} {
		if v := query(p, `node_memory_MemTotal_bytes{job="e2e"}`); len(v) == 1 {
			mem = float64(v[0].Value)
		}
		if v := query(p, `sum_over_time(node_memory_MemTotal_bytes{job="e2e"}[10m])`); len(v) == 1 {
			memSum += float64(v[0].Value)
		}
	}
	require.Positive(t, mem)
	require.Equal(t, pushes*mem, memSum, "no sample lost, none stored twice")
	require.NotEmpty(t, query(a, `count({job="e2e"})`), "both ingesters hold part of the series")
	require.NotEmpty(t, query(b, `count({job="e2e"})`), "both ingesters hold part of the series")
	t.Logf("%d series × %.0f pushes through Kafka", len(perSeries), pushes)
}
