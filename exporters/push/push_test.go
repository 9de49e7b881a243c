package push

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/push/pushtest"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

func TestBatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"instance"})
	c.WithLabelValues("own").Add(3)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "h"})
	g.Set(1.5)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h", Buckets: []float64{0.1, 1}})
	h.Observe(0.5)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "s", Help: "h", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(2)
	reg.MustRegister(c, g, h, s)
	mfs, err := reg.Gather()
	require.NoError(t, err)

	b := Batch(mfs, 1234, labels.FromStrings("instance", "hv-07:9177", "job", "ballast-exporter"))
	got := map[string]float64{}
	for _, s := range b.Series {
		require.Len(t, s.Samples, 1)
		require.Equal(t, int64(1234), s.Samples[0].T)
		require.Equal(t, s.Labels.Hash(), s.Hash)
		got[s.Labels.String()] = s.Samples[0].V
	}
	require.Equal(t, map[string]float64{
		`{__name__="c_total", instance="own", job="ballast-exporter"}`:                            3, // the series' own label wins
		`{__name__="g", instance="hv-07:9177", job="ballast-exporter"}`:                           1.5,
		`{__name__="h_seconds_bucket", instance="hv-07:9177", job="ballast-exporter", le="0.1"}`:  0,
		`{__name__="h_seconds_bucket", instance="hv-07:9177", job="ballast-exporter", le="1"}`:    1,
		`{__name__="h_seconds_bucket", instance="hv-07:9177", job="ballast-exporter", le="+Inf"}`: 1,
		`{__name__="h_seconds_sum", instance="hv-07:9177", job="ballast-exporter"}`:               0.5,
		`{__name__="h_seconds_count", instance="hv-07:9177", job="ballast-exporter"}`:             1,
		`{__name__="s", instance="hv-07:9177", job="ballast-exporter", quantile="0.5"}`:           2,
		`{__name__="s_sum", instance="hv-07:9177", job="ballast-exporter"}`:                       2,
		`{__name__="s_count", instance="hv-07:9177", job="ballast-exporter"}`:                     1,
	}, got)
	require.Equal(t, 10, b.Len())
}

func batchAt(series int, t int64) *bus.SampleBatch {
	b := &bus.SampleBatch{}
	for i := range series {
		l := labels.FromStrings("__name__", "push_test_value", "series", fmt.Sprint(i))
		b.Series = append(b.Series, bus.Series{Labels: l, Samples: []bus.Sample{{T: t, V: float64(t + int64(i))}}})
	}
	return b
}

func newRemoteWrite(t *testing.T, cfg RemoteWriteConfig) (*RemoteWrite, *scrapetest.Logs) {
	t.Helper()
	logger, logs := scrapetest.Logger()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.MinBackoff, cfg.MaxBackoff, cfg.BatchSendDeadline = 10*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond
	rw, err := NewRemoteWrite(cfg, prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	return rw, logs
}

// A restart of the receiving server loses nothing: samples published while
// it is down wait in the on-disk queue and arrive once it listens again.
func TestReceiverRestartLosesNothing(t *testing.T) {
	recv, err := pushtest.Start()
	require.NoError(t, err)
	defer recv.Stop()
	rw, _ := newRemoteWrite(t, RemoteWriteConfig{URL: recv.URL()})
	defer rw.Close()

	const series, batches = 100, 10
	// Timestamps after the WAL watcher's start, as the push loop's are.
	base := time.Now().UnixMilli() + 1000
	ctx := context.Background()
	for i := range batches {
		switch i {
		case 3:
			require.Eventually(t, func() bool { return recv.Distinct() == 3*series }, time.Minute, 10*time.Millisecond,
				"the first batches arrive while the receiver is up")
			recv.Stop()
		case 7:
			require.NoError(t, recv.Restart())
		}
		require.NoError(t, rw.PublishSamples(ctx, batchAt(series, base+int64(i)*1000)))
	}
	require.Eventually(t, func() bool { return recv.Distinct() == series*batches }, 2*time.Minute, 20*time.Millisecond,
		"got %d of %d samples", recv.Distinct(), series*batches)
	for i := range batches {
		for s := range series {
			require.True(t, recv.Has([]string{"__name__=push_test_value", "series=" + fmt.Sprint(s)}, base+int64(i)*1000), "batch %d series %d", i, s)
		}
	}
}

// Credentials reach the receiver and never the logs or errors.
func TestSecretsNotLogged(t *testing.T) {
	recv, err := pushtest.Start()
	require.NoError(t, err)
	defer recv.Stop()
	const password, token = "pa55-w0rd-secret", "t0ken-secret"
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(password), 0o600))

	rw, logs := newRemoteWrite(t, RemoteWriteConfig{URL: recv.URL(), BasicAuthUsername: "agent", BasicAuthPasswordFile: pwFile})
	require.NoError(t, rw.PublishSamples(context.Background(), batchAt(5, time.Now().UnixMilli()+1000)))
	require.Eventually(t, func() bool { return recv.Distinct() == 5 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, rw.Close())
	require.NotEmpty(t, recv.Authorization())
	require.True(t, strings.HasPrefix(recv.Authorization()[0], "Basic "))

	// A password in the URL is redacted in the start-up log and in errors.
	withPass := strings.Replace(recv.URL(), "http://", "http://agent:"+password+"@", 1)
	rw2, logs2 := newRemoteWrite(t, RemoteWriteConfig{URL: withPass})
	require.NoError(t, rw2.PublishSamples(context.Background(), batchAt(7, time.Now().UnixMilli()+1000)))
	require.Eventually(t, func() bool { return recv.Distinct() == 12 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, rw2.Close())
	require.Len(t, recv.Authorization(), 2, "URL credentials are sent as basic auth")
	_, err = NewRemoteWrite(RemoteWriteConfig{URL: "ftp://agent:" + token + "@host/x", Dir: t.TempDir()}, nil, slogDiscard())
	require.Error(t, err)
	require.NotContains(t, err.Error(), token)

	for _, l := range []string{logs.String(), logs2.String()} {
		require.NotContains(t, l, password)
		require.NotContains(t, l, token)
	}
	require.Contains(t, logs2.String(), "Pushing with remote_write", "the URL is logged, without credentials")
}

func TestRemoteWriteConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  RemoteWriteConfig
		want string
	}{
		{RemoteWriteConfig{URL: "not a url", Dir: "x"}, "push.remote-write-url"},
		{RemoteWriteConfig{URL: "http://h/w"}, "push.queue.dir"},
		{RemoteWriteConfig{URL: "http://h/w", Dir: "x", BasicAuthUsername: "u"}, "basic-auth-password-file"},
		{RemoteWriteConfig{URL: "http://h/w", Dir: "x", BasicAuthUsername: "u", BasicAuthPasswordFile: "p", BearerTokenFile: "t"}, "bearer-token-file"},
		{RemoteWriteConfig{URL: "http://h/w", Dir: "x", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "max-backoff"},
	} {
		_, err := NewRemoteWrite(tc.cfg, nil, slogDiscard())
		require.ErrorContains(t, err, tc.want)
	}
}

// The loop publishes through the bus seam: here the in-process bus, as the
// server mounts it; the Kafka bus takes the same calls.
func TestPusherThroughBus(t *testing.T) {
	b := bus.NewInProc(bus.InProcOptions{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var batches []*bus.SampleBatch
	var events []bus.Event
	go func() {
		_ = b.ConsumeSamples(ctx, "test", func(_ context.Context, sb *bus.SampleBatch) error {
			mu.Lock()
			defer mu.Unlock()
			batches = append(batches, sb)
			return nil
		})
	}()
	go func() {
		_ = b.ConsumeEvents(ctx, "test", []string{bus.TypeInventory}, func(_ context.Context, e bus.Event) error {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
			return nil
		})
	}()
	require.Eventually(t, func() bool { return b.PublishSamples(ctx, &bus.SampleBatch{}) == nil }, 10*time.Second, time.Millisecond)
	mu.Lock()
	batches = nil
	mu.Unlock()

	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "node_load1", Help: "h"})
	reg.MustRegister(g)
	inv := &inventory.Inventory{SchemaVersion: inventory.SchemaVersion, Host: inventory.Host{Hostname: "hv-1", CPUs: 8}}
	now := time.Unix(1700000000, 0)
	self := prometheus.NewRegistry()
	logger, _ := scrapetest.Logger()
	p, err := New(Config{Labels: map[string]string{"instance": "hv-1:9177"}},
		Deps{Gatherer: reg, Samples: b, Events: b, Registry: self,
			Inventory: func() (*inventory.Inventory, error) { c := *inv; c.CollectedAt = now; return &c, nil },
			Now:       func() time.Time { return now }}, logger)
	require.NoError(t, err)

	g.Set(0.5)
	require.NoError(t, p.Push(ctx))
	now = now.Add(15 * time.Second)
	g.Set(0.7)
	require.NoError(t, p.Push(ctx)) // inventory unchanged: no event
	inv.Host.CPUs = 16
	require.NoError(t, p.Push(ctx)) // changed: event

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 }, 10*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, batches, 3)
	require.Equal(t, `{__name__="node_load1", instance="hv-1:9177"}`, batches[1].Series[0].Labels.String())
	require.Equal(t, []bus.Sample{{T: now.UnixMilli(), V: 0.7}}, batches[1].Series[0].Samples)
	var got inventory.Inventory
	require.NoError(t, events[1].Decode(&got))
	require.Equal(t, uint64(16), got.Host.CPUs)
	require.Equal(t, "hv-1", events[1].Subject)
	require.Equal(t, 3.0, scrapetest.Value(t, self, "ballast_exporter_push_batches_total", map[string]string{"result": "ok"}))
}

func TestPusherValidation(t *testing.T) {
	_, err := New(Config{}, Deps{}, slogDiscard())
	require.Error(t, err)
	_, err = New(Config{Labels: map[string]string{"bad-name": "x"}}, Deps{Gatherer: prometheus.NewRegistry(), Samples: bus.NewInProc(bus.InProcOptions{})}, slogDiscard())
	require.ErrorContains(t, err, "push.label")
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Close stops every goroutine RemoteWrite started: the nudger, the WAL
// watcher, the shards and the agent WAL's truncation loop.
func TestRemoteWriteCloseLeaksNoGoroutine(t *testing.T) {
	recv, err := pushtest.Start()
	require.NoError(t, err)
	defer recv.Stop()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// net/http keeps idle keep-alive connections to the receiver for a while.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	rw, _ := newRemoteWrite(t, RemoteWriteConfig{URL: recv.URL()})
	require.NoError(t, rw.PublishSamples(context.Background(), batchAt(3, time.Now().UnixMilli()+1000)))
	require.Eventually(t, func() bool { return recv.Distinct() == 3 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, rw.Close())
}
