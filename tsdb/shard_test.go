package tsdb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// TestShardedEngineMatchesEngine checks sharded evaluation gives what the
// plain engine gives, for shardable and non-shardable queries alike.
func TestShardedEngineMatchesEngine(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := Open(Config{Path: t.TempDir(), QueryShards: 3}, reg, nil)
	require.NoError(t, err)
	defer st.Close()
	se := st.engine.(*shardedEngine)

	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-30 * time.Minute)
	app := st.Appender(context.Background())
	for i := 0; i < 300; i++ {
		ls := labels.FromStrings("__name__", "req_total", "instance", fmt.Sprintf("h%d", i%7), "code", fmt.Sprint(200+i%5), "i", fmt.Sprint(i))
		g := labels.FromStrings("__name__", "temp", "instance", fmt.Sprintf("h%d", i%7), "i", fmt.Sprint(i))
		v := 0.0
		for s := 0; s < 120; s++ {
			if i%11 == 0 && s > 60 { // some series stop: gaps in some shards
				break
			}
			v += rng.Float64() * 10
			ts := start.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
			_, err := app.Append(0, ls, ts, v)
			require.NoError(t, err)
			gv := rng.NormFloat64() * 10
			if i%13 == 0 && s%10 == 0 {
				gv = math.NaN()
			}
			_, err = app.Append(0, g, ts, gv)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())

	for _, q := range []struct {
		expr    string
		sharded bool
	}{
		{`sum by (instance) (rate(req_total[5m]))`, true},
		{`sum(rate(req_total[5m]))`, true},
		{`sum without (i) (increase(req_total[2m]))`, true},
		{`count by (code) (req_total > 100)`, true},
		{`min by (instance) (temp)`, true},
		{`max by (instance) (abs(temp) * 2)`, true},
		{`group by (instance) (temp)`, true},
		{`(sum by (code) (max_over_time(req_total[10m])))`, true},
		{`avg by (instance) (temp)`, false},
		{`topk(3, temp)`, false},
		{`sum(req_total) / count(req_total)`, false},
		{`sum by (instance) (req_total / on(i) temp)`, false},
		{`sum by (instance) (sum by (instance, code) (req_total))`, false},
		{`histogram_quantile(0.9, sum by (le) (rate(req_total[5m])))`, false},
	} {
		t.Run(q.expr, func(t *testing.T) {
			_, ok := se.shardable(st.db, q.expr)
			require.Equal(t, q.sharded, ok)
			ctx := context.Background()
			// Range query.
			want, err := se.engine.NewRangeQuery(ctx, st.db, nil, q.expr, start.Add(5*time.Minute), end, 30*time.Second)
			require.NoError(t, err)
			got, err := se.NewRangeQuery(ctx, st.db, nil, q.expr, start.Add(5*time.Minute), end, 30*time.Second)
			require.NoError(t, err)
			requireSame(t, want.Exec(ctx).Value, got.Exec(ctx).Value)
			want.Close()
			got.Close()
			// Instant query.
			want, err = se.engine.NewInstantQuery(ctx, st.db, nil, q.expr, end.Add(-time.Minute))
			require.NoError(t, err)
			got, err = se.NewInstantQuery(ctx, st.db, nil, q.expr, end.Add(-time.Minute))
			require.NoError(t, err)
			requireSame(t, want.Exec(ctx).Value, got.Exec(ctx).Value)
			want.Close()
			got.Close()
		})
	}
	require.Equal(t, 16.0, testutil.ToFloat64(se.sharded), "8 shardable expressions, range and instant each")

	// Errors of a part surface as the query's error.
	q, err := se.NewInstantQuery(context.Background(), st.db, nil, `sum(rate(req_total[5m]))`, end)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, q.Exec(ctx).Err)
	q.Close()
}

func requireSame(t *testing.T, want, got parser.Value) {
	t.Helper()
	switch w := want.(type) {
	case promql.Matrix:
		g := got.(promql.Matrix)
		require.Equal(t, len(w), len(g))
		for i := range w {
			require.Equal(t, w[i].Metric.String(), g[i].Metric.String())
			require.Equal(t, len(w[i].Floats), len(g[i].Floats), w[i].Metric.String())
			for j := range w[i].Floats {
				require.Equal(t, w[i].Floats[j].T, g[i].Floats[j].T)
				requireClose(t, w[i].Floats[j].F, g[i].Floats[j].F)
			}
		}
	case promql.Vector:
		g := got.(promql.Vector)
		require.Equal(t, len(w), len(g))
		w = append(promql.Vector(nil), w...)
		byMetric := map[string]float64{}
		for _, s := range g {
			byMetric[s.Metric.String()] = s.F
		}
		for _, s := range w {
			f, ok := byMetric[s.Metric.String()]
			require.True(t, ok, s.Metric.String())
			requireClose(t, s.F, f)
		}
	default:
		require.Equal(t, want, got)
	}
}

func requireClose(t *testing.T, want, got float64) {
	t.Helper()
	if math.IsNaN(want) {
		require.True(t, math.IsNaN(got))
		return
	}
	require.InEpsilon(t, want+1e-300, got+1e-300, 1e-9)
}
