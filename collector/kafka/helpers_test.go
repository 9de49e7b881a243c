package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

// roleEnv makes the test binary run a helper process instead of the tests:
// the ingester or the broker of the restart tests (see process_test.go).
const roleEnv = "BALLAST_KAFKA_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	goleak.VerifyTestMain(m)
}

// testLogger logs to the test output at debug level when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// fastConfig is a configuration with test timings: short commit interval,
// group session and backoffs.
func fastConfig(brokers []string) Config {
	return Config{
		Brokers:           brokers,
		Partitions:        6,
		EventPartitions:   2,
		ConnectBackoffMin: 20 * time.Millisecond,
		ConnectBackoffMax: 300 * time.Millisecond,
		HealthInterval:    200 * time.Millisecond,
		DialTimeout:       3 * time.Second,
		Producer: ProducerConfig{
			RetryBackoffMin: 20 * time.Millisecond,
			RetryBackoffMax: 300 * time.Millisecond,
			BatchTimeout:    2 * time.Millisecond,
		},
		Consumer: ConsumerConfig{
			CommitInterval:    100 * time.Millisecond,
			SessionTimeout:    2 * time.Second,
			HeartbeatInterval: 200 * time.Millisecond,
			RebalanceTimeout:  5 * time.Second,
			JoinBackoff:       100 * time.Millisecond,
			FetchMaxWait:      100 * time.Millisecond,
			RetryBackoffMin:   20 * time.Millisecond,
			RetryBackoffMax:   300 * time.Millisecond,
		},
	}
}

// newBroker starts an in-process kfake broker for the test.
func newBroker(t *testing.T) []string {
	return kfaketest.New(t, kfaketest.Options{MinSessionTimeout: time.Second})
}

// newBus returns a bus closed at the end of the test, with its own registry.
func newBus(t *testing.T, cfg Config) (*Bus, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := New(cfg, reg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b, reg
}

// waitReady waits for the bus to connect and create its topics.
func waitReady(t *testing.T, b *Bus) {
	t.Helper()
	require.Eventually(t, func() bool { return b.Ready() == nil }, 30*time.Second, 10*time.Millisecond, "bus never ready: %v", b.Ready())
}

// series returns n label sets of metric name.
func series(name string, n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%03d:9100", i%100), "series", fmt.Sprint(i))
	}
	return out
}

// batches returns steps batches, one sample per series each, at 15s
// spacing from t0 (ms); the value of series i at step s is s*1000+i.
func batches(ls []labels.Labels, steps int, t0 int64) []*bus.SampleBatch {
	out := make([]*bus.SampleBatch, steps)
	for s := range steps {
		b := &bus.SampleBatch{Series: make([]bus.Series, len(ls))}
		for i, l := range ls {
			b.Series[i] = bus.Series{Labels: l, Samples: []bus.Sample{{T: t0 + int64(s)*15000, V: float64(s*1000 + i)}}}
		}
		out[s] = b
	}
	return out
}

// expected returns the count and sum of all samples of batches.
func expected(bs []*bus.SampleBatch) (int, float64) {
	n, sum := 0, 0.0
	for _, b := range bs {
		for _, s := range b.Series {
			for _, smp := range s.Samples {
				n++
				sum += smp.V
			}
		}
	}
	return n, sum
}

// collector is a SampleHandler recording every sample it sees, keyed by
// series and timestamp, so tests can check for gaps and duplicates.
type collector struct {
	mu      sync.Mutex
	samples map[string]float64
	total   int
}

func newCollector() *collector { return &collector{samples: map[string]float64{}} }

func (c *collector) handle(_ context.Context, b *bus.SampleBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range b.Series {
		for _, smp := range s.Samples {
			c.samples[fmt.Sprintf("%s@%d", s.Labels.String(), smp.T)] = smp.V
			c.total++
		}
	}
	return nil
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.samples)
}

var _ io.Writer = testWriter{}

// store is a TSDB with the ingester the server puts behind ConsumeSamples.
type store struct {
	st      *tsdb.Storage
	ing     *ingest.Ingester
	closeFn func()
}

// openStore opens a TSDB in dir (closed at the end of the test unless
// closed before).
func openStore(t *testing.T, dir string) *store {
	t.Helper()
	st, err := tsdb.Open(tsdb.Config{Path: dir}, nil, nil)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			require.NoError(t, st.Close())
		}
	})
	ing, err := ingest.New(ingest.Options{Source: "kafka"}, st, nil, nil)
	require.NoError(t, err)
	s := &store{st: st, ing: ing}
	s.closeFn = func() { closed = true; require.NoError(t, st.Close()) }
	return s
}

// countSum asks PromQL how many samples of metric the store holds, and
// their sum.
func (s *store) countSum(t *testing.T, metric string) (int, float64) {
	t.Helper()
	q, err := datasource.NewLocal(s.st.Engine(), s.st.Queryable())
	require.NoError(t, err)
	at := time.Now().Add(time.Hour)
	scalar := func(expr string) float64 {
		v, _, err := q.Query(t.Context(), expr, at)
		require.NoError(t, err)
		vec := v.(model.Vector)
		if len(vec) == 0 {
			return 0
		}
		require.Len(t, vec, 1)
		return float64(vec[0].Value)
	}
	n := scalar(fmt.Sprintf("sum(count_over_time(%s[1w]))", metric))
	return int(n), scalar(fmt.Sprintf("sum(sum_over_time(%s[1w]))", metric))
}

// seriesIn lists the "series" label values of metric in the store.
func (s *store) seriesIn(t *testing.T, metric string) map[string]bool {
	t.Helper()
	q, err := datasource.NewLocal(s.st.Engine(), s.st.Queryable())
	require.NoError(t, err)
	v, _, err := q.Query(t.Context(), fmt.Sprintf("count by (series) (count_over_time(%s[1w]))", metric), time.Now().Add(time.Hour))
	require.NoError(t, err)
	out := map[string]bool{}
	for _, smp := range v.(model.Vector) {
		out[string(smp.Metric["series"])] = true
	}
	return out
}

// recent is a start time whose samples any fresh TSDB accepts.
func recent() int64 { return time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli() }
