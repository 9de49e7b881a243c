package datasource_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
	"github.com/ballast-cloud/ballast/web/promapi"
)

// TestLocalAndRemoteAgree asks the same questions of the embedded engine
// (Local) and of the same storage over the Prometheus HTTP API (Remote): a
// consumer of the seam cannot tell them apart.
func TestLocalAndRemoteAgree(t *testing.T) {
	st, err := tsdb.Open(tsdb.Config{Path: t.TempDir()}, nil, nil)
	require.NoError(t, err)
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	app := st.Appender(context.Background())
	for i := 0; i < 40; i++ {
		for h, host := range []string{"a", "b", "c"} {
			_, err := app.Append(0, labels.FromStrings("__name__", "node_cpu_seconds_total", "fqdn", host, "mode", "idle"),
				now.Add(time.Duration(i-40)*15*time.Second).UnixMilli(), float64(i*(h+1)*10))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())

	api, err := promapi.New(promapi.Options{Storage: st, Engine: st.Engine()}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(http.StripPrefix("/api/v1", api))
	defer srv.Close()

	local, err := datasource.NewLocal(st.Engine(), st.Queryable())
	require.NoError(t, err)
	remote, err := datasource.NewRemote(datasource.RemoteOptions{URL: srv.URL})
	require.NoError(t, err)
	ctx := context.Background()
	for _, q := range []string{
		`100 - (avg by (fqdn)(rate(node_cpu_seconds_total{mode='idle'}[300s])) * 100)`,
		`sum(node_cpu_seconds_total)`,
		`scalar(sum(node_cpu_seconds_total))`,
	} {
		lv, _, err := local.Query(ctx, q, now)
		require.NoError(t, err, q)
		rv, _, err := remote.Query(ctx, q, now)
		require.NoError(t, err, q)
		require.Equal(t, rv.Type(), lv.Type(), q)
		require.Equal(t, rv.String(), lv.String(), q)
	}
	r := datasource.Range{Start: now.Add(-5 * time.Minute), End: now, Step: 30 * time.Second}
	lv, _, err := local.QueryRange(ctx, `rate(node_cpu_seconds_total[2m])`, r)
	require.NoError(t, err)
	rv, _, err := remote.QueryRange(ctx, `rate(node_cpu_seconds_total[2m])`, r)
	require.NoError(t, err)
	require.Equal(t, rv.String(), lv.String())
	require.Len(t, lv.(model.Matrix), 3)

	_, _, err = local.Query(ctx, `sum(`, now)
	require.Error(t, err)
	_, _, err = remote.Query(ctx, `sum(`, now)
	require.Error(t, err)
	_, _, err = local.QueryRange(ctx, `up`, datasource.Range{Start: now, End: now.Add(-time.Minute), Step: time.Second})
	require.ErrorContains(t, err, "before start")
	require.Error(t, datasource.Validate(`rate(x[5m]`))
	require.NoError(t, datasource.Validate(`rate(x[5m])`))
}
