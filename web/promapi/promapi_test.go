package promapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/tsdb"
)

func newAPI(t testing.TB) (*httptest.Server, *API, *tsdb.Storage) {
	t.Helper()
	st, err := tsdb.Open(tsdb.Config{Path: t.TempDir()}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	app := st.Appender(context.Background())
	now := time.Now()
	// Every 15 s from 5 min before now to 2 min after, idle growing 1 s per s
	// from 10 000 s: a rate over the last 5 min is 1/s whenever the query
	// runs within the next minute (samples near both ends of its window, and
	// no extrapolation clamp at zero).
	for i := 0; i <= 28; i++ {
		_, err := app.Append(0, labels.FromStrings("__name__", "node_cpu_seconds_total", "mode", "idle", "fqdn", "h1"), now.Add(time.Duration(i-20)*15*time.Second).UnixMilli(), 10000+float64(i*15))
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	reg := prometheus.NewRegistry()
	a, err := New(Options{Storage: st, Engine: st.Engine(), Registerer: reg, Gatherer: reg}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(http.StripPrefix("/api/v1", a))
	t.Cleanup(srv.Close)
	return srv, a, st
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func get(t testing.TB, u string) (int, envelope) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e envelope
	body, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(body, &e), "body %q", body)
	return resp.StatusCode, e
}

func TestErrors(t *testing.T) {
	srv, a, _ := newAPI(t)
	for _, tc := range []struct {
		name, path string
		code       int
		errType    string
	}{
		{"invalid PromQL", "/api/v1/query?query=sum(", 400, "bad_data"},
		{"unknown parameter", "/api/v1/query?query=up&setp=15", 400, "bad_data"},
		{"end before start", "/api/v1/query_range?query=up&start=100&end=50&step=15", 400, "bad_data"},
		{"zero step", "/api/v1/query_range?query=up&start=0&end=50&step=0", 400, "bad_data"},
		{"too many points", "/api/v1/query_range?query=up&start=0&end=100000000&step=1", 400, "bad_data"},
		{"bad time", "/api/v1/query?query=up&time=yesterday", 400, "bad_data"},
		{"bad matcher", "/api/v1/series?match[]={a=~\"(\"}", 400, "bad_data"},
		{"execution error", "/api/v1/query?query=" + url.QueryEscape(`label_replace(up, "a", "$1", "b", "(")`), 422, "execution"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(a.errors.WithLabelValues(handlerName(strings.TrimPrefix(strings.Split(tc.path, "?")[0], "/api/v1")), tc.errType))
			code, e := get(t, srv.URL+tc.path)
			require.Equal(t, tc.code, code, e.Error)
			require.Equal(t, "error", e.Status)
			require.Equal(t, tc.errType, e.ErrorType)
			require.NotEmpty(t, e.Error)
			after := testutil.ToFloat64(a.errors.WithLabelValues(handlerName(strings.TrimPrefix(strings.Split(tc.path, "?")[0], "/api/v1")), tc.errType))
			require.Equal(t, before+1, after, "error counted by type")
		})
	}
}

func TestWatcherQueries(t *testing.T) {
	// The PromQL OpenStack Watcher's Prometheus datasource sends, as it sends
	// it: GET, instant, no time parameter.
	srv, _, _ := newAPI(t)
	q := `100 - (avg by (fqdn)(rate(node_cpu_seconds_total{mode='idle',fqdn='h1'}[300s])) * 100)`
	code, e := get(t, srv.URL+"/api/v1/query?query="+url.QueryEscape(q))
	require.Equal(t, 200, code, e.Error)
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(e.Data, &data))
	require.Equal(t, "vector", data.ResultType)
	require.Len(t, data.Result, 1)
	require.Equal(t, "h1", data.Result[0].Metric["fqdn"])
	// idle grows 1 s per s: usage 0 % (up to the rounding of rate's
	// extrapolation, which depends on how long after the samples the query
	// runs).
	usage, err := strconv.ParseFloat(data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	require.InDelta(t, 0, usage, 1e-9)

	for _, p := range []string{"/api/v1/targets?state=active", "/api/v1/status/runtimeinfo", "/api/v1/label/__name__/values", "/api/v1/status/buildinfo", "/api/v1/metadata", "/api/v1/rules", "/api/v1/alerts"} {
		code, e := get(t, srv.URL+p)
		require.Equal(t, 200, code, "%s: %s", p, e.Error)
		require.Equal(t, "success", e.Status, p)
	}
}

// FuzzParams feeds arbitrary query strings to every endpoint: the answer is
// always a Prometheus envelope, never a panic or a 5xx from bad input.
func FuzzParams(f *testing.F) {
	srv, _, _ := newAPI(f)
	for _, seed := range []string{"query=up", "query=up&time=1", "query=rate(x[5m])&start=0&end=10&step=1", "match[]={a=\"b\"}&limit=5", "query=%zz", "start=1e400"} {
		f.Add("/query", seed)
		f.Add("/query_range", seed)
		f.Add("/series", seed)
	}
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		if _, ok := knownParams[path]; !ok || strings.HasPrefix(path, "/admin") || path == "/read" {
			return
		}
		for _, c := range rawQuery {
			if c <= ' ' || c == '#' || c >= 0x7f {
				return // not a valid request line; net/http refuses it before us
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1"+path+"?"+rawQuery, nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Less(t, resp.StatusCode, 500, "%s?%s: %s", path, rawQuery, body)
		var e envelope
		require.NoError(t, json.Unmarshal(body, &e), "%s?%s: %q", path, rawQuery, body)
		require.Contains(t, []string{"success", "error"}, e.Status)
	})
}
