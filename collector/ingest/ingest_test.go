package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

func openStorage(t *testing.T) *tsdb.Storage {
	t.Helper()
	st, err := tsdb.Open(tsdb.Config{Path: t.TempDir(), OutOfOrderWindow: 10 * time.Minute}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func query(t *testing.T, st *tsdb.Storage, q string, at time.Time) float64 {
	t.Helper()
	l, err := datasource.NewLocal(st.Engine(), st.Queryable())
	require.NoError(t, err)
	v, _, err := l.Query(context.Background(), q, at)
	require.NoError(t, err)
	vec := v.(model.Vector)
	require.Len(t, vec, 1, "query %s", q)
	return float64(vec[0].Value)
}

func TestHandle(t *testing.T) {
	st := openStorage(t)
	m := NewMetrics(nil)
	in, err := New(Options{}, st, m, nil)
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	t0 := now.Add(-5 * time.Minute).UnixMilli()
	ls := labels.FromStrings("__name__", "m", "job", "j")

	batch := func(samples ...bus.Sample) *bus.SampleBatch {
		return &bus.SampleBatch{Series: []bus.Series{{Labels: ls, Samples: samples}}}
	}
	require.NoError(t, in.Handle(ctx, batch(bus.Sample{T: t0, V: 1}, bus.Sample{T: t0 + 1000, V: 2}, bus.Sample{T: t0 + 2000, V: 3})))

	// At-least-once redelivery: the same batch again is harmless.
	require.NoError(t, in.Handle(ctx, batch(bus.Sample{T: t0, V: 1}, bus.Sample{T: t0 + 1000, V: 2}, bus.Sample{T: t0 + 2000, V: 3})))
	require.Equal(t, 3.0, query(t, st, `count_over_time(m[10m])`, now))
	require.Equal(t, 6.0, query(t, st, `sum_over_time(m[10m])`, now))

	// Out of order inside the window is accepted.
	require.NoError(t, in.Handle(ctx, batch(bus.Sample{T: t0 - 60_000, V: 10})))
	require.Equal(t, 4.0, query(t, st, `count_over_time(m[10m])`, now))

	// A different value at the newest stored timestamp and a sample beyond
	// the out-of-order window are refused; the rest of the batch is stored.
	err = in.Handle(ctx, batch(bus.Sample{T: t0 + 2000, V: 99}, bus.Sample{T: t0 - time.Hour.Milliseconds(), V: 1}, bus.Sample{T: t0 + 3000, V: 4}))
	var re *RejectedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, map[string]int{tsdb.ReasonDuplicate: 1, tsdb.ReasonTooOld: 1}, re.Samples)
	require.Equal(t, 5.0, query(t, st, `count_over_time(m[10m])`, now))
	require.Equal(t, 20.0, query(t, st, `sum_over_time(m[10m])`, now))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Rejected.WithLabelValues("tsdb", tsdb.ReasonDuplicate)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Rejected.WithLabelValues("tsdb", tsdb.ReasonTooOld)))
	require.Equal(t, 8.0, testutil.ToFloat64(m.Appended))

	// A conflicting value for an older stored timestamp goes to the
	// out-of-order head, which the TSDB cannot check against in-order data;
	// queries keep answering the value stored first.
	require.NoError(t, in.Handle(ctx, batch(bus.Sample{T: t0 + 1000, V: 1000})))
	require.Equal(t, 5.0, query(t, st, `count_over_time(m[10m])`, now))
	require.Equal(t, 20.0, query(t, st, `sum_over_time(m[10m])`, now))
}

func TestRefCacheCollision(t *testing.T) {
	c := newRefCache(10)
	a, b := labels.FromStrings("a", "1"), labels.FromStrings("b", "2")
	c.put(42, a, 7)
	require.Equal(t, tsdb.Ref(7), c.get(42, a))
	require.Equal(t, tsdb.Ref(0), c.get(42, b), "same hash, other labels: no reference")
}

// TestMemoSharedByTwoStores hands the same decoded series, with one memo, to
// ingesters of two stores, and a relabelled copy of it: each stores its
// samples in its own series, none takes the other's reference.
func TestMemoSharedByTwoStores(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	t0 := now.Add(-time.Minute).UnixMilli()
	st1, st2 := openStorage(t), openStorage(t)
	in1, err := New(Options{}, st1, NewMetrics(nil), nil)
	require.NoError(t, err)
	in2, err := New(Options{}, st2, NewMetrics(nil), nil)
	require.NoError(t, err)

	// A series created first in st2 makes the refs of the two stores differ.
	require.NoError(t, in2.Handle(ctx, &bus.SampleBatch{Series: []bus.Series{{Labels: labels.FromStrings("__name__", "other"), Samples: []bus.Sample{{T: t0, V: 1}}}}}))

	memo := new(bus.SeriesMemo)
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b")
	for i := range 3 {
		smp := []bus.Sample{{T: t0 + int64(i)*1000, V: float64(i + 1)}}
		require.NoError(t, in1.Handle(ctx, &bus.SampleBatch{Series: []bus.Series{{Labels: a, Memo: memo, Samples: smp}}}))
		require.NoError(t, in2.Handle(ctx, &bus.SampleBatch{Series: []bus.Series{{Labels: a, Memo: memo, Samples: smp}}}))
		require.NoError(t, in1.Handle(ctx, &bus.SampleBatch{Series: []bus.Series{{Labels: b, Memo: memo, Samples: smp}}}))
	}
	for _, st := range []*tsdb.Storage{st1, st2} {
		require.Equal(t, 3.0, query(t, st, `count_over_time(a[10m])`, now))
		require.Equal(t, 6.0, query(t, st, `sum_over_time(a[10m])`, now))
	}
	require.Equal(t, 6.0, query(t, st1, `sum_over_time(b[10m])`, now))
	require.Equal(t, 1.0, query(t, st2, `count_over_time(other[10m])`, now))
}

// TestCountingBus counts what a producer publishes straight onto the bus
// under its own source, and passes events and consumers through.
func TestCountingBus(t *testing.T) {
	m := NewMetrics(nil)
	inner := bus.NewInProc(bus.InProcOptions{ConsumerWait: 10 * time.Second})
	defer inner.Close()
	cb := NewCountingBus(inner, "simulator", m)
	var _ bus.EventPublisher = cb // the simulator publishes inventory events through it

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 2)
	go func() {
		_ = cb.ConsumeSamples(ctx, "", func(_ context.Context, b *bus.SampleBatch) error {
			got <- b.Len()
			return nil
		})
	}()
	ls := labels.FromStrings("__name__", "m")
	for _, n := range []int{3, 2} {
		b := &bus.SampleBatch{Series: []bus.Series{{Labels: ls, Samples: make([]bus.Sample, n)}}}
		require.NoError(t, cb.PublishSamples(ctx, b))
		require.Equal(t, n, <-got)
	}
	require.Equal(t, 5.0, testutil.ToFloat64(m.Received.WithLabelValues("simulator")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.Received.WithLabelValues("scrape")))
}
