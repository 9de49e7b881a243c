package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// TestGrafanaDataSourceCalls replays the requests Grafana's Prometheus data
// source sends (pkg/promlib and packages/grafana-prometheus): POST
// form-encoded by default, float Unix-second timestamps, a `1+1` health
// check, resource calls that fall back to GET on 400/405, and the endpoints
// that must answer an empty success.
func TestGrafanaDataSourceCalls(t *testing.T) {
	p := startServer(t, t.TempDir())
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	b := &bus.SampleBatch{Series: []bus.Series{series("grafana_metric_total", base, 40, "instance", "h1", "job", "g")}}
	require.Equal(t, http.StatusNoContent, p.write(t, b))
	ts := func(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

	call := func(method, path string, form url.Values) map[string]any {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = http.PostForm(p.url+path, form)
		} else {
			u := p.url + path
			if len(form) > 0 {
				u += "?" + form.Encode()
			}
			resp, err = http.Get(u)
		}
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, "%s %s: %s", method, path, body)
		var out map[string]any
		require.NoError(t, json.Unmarshal(body, &out))
		require.Equal(t, "success", out["status"], "%s", body)
		return out
	}

	// Health check ("Save & test"): instant query 1+1 must be the scalar 2.
	out := call(http.MethodPost, "/api/v1/query", url.Values{"query": {"1+1"}, "time": {ts(time.Now())}})
	data := out["data"].(map[string]any)
	require.Equal(t, "scalar", data["resultType"])
	require.Equal(t, "2", data["result"].([]any)[1])

	// A panel: range query with float seconds and a float step.
	out = call(http.MethodPost, "/api/v1/query_range", url.Values{
		"query": {`sum by (job) (rate(grafana_metric_total[1m]))`},
		"start": {ts(base.Add(2 * time.Minute))}, "end": {ts(base.Add(9 * time.Minute))}, "step": {"15"},
	})
	data = out["data"].(map[string]any)
	require.Equal(t, "matrix", data["resultType"])
	require.Len(t, data["result"], 1)

	// Metric browser and template variables.
	out = call(http.MethodPost, "/api/v1/labels", url.Values{"start": {ts(base)}, "end": {ts(time.Now())}, "match[]": {`{job="g"}`}, "limit": {"40000"}})
	require.Contains(t, out["data"], "instance")
	out = call(http.MethodGet, "/api/v1/label/__name__/values", url.Values{"start": {ts(base)}, "end": {ts(time.Now())}})
	require.Contains(t, out["data"], "grafana_metric_total")
	out = call(http.MethodPost, "/api/v1/series", url.Values{"match[]": {`grafana_metric_total`}, "start": {ts(base)}, "end": {ts(time.Now())}})
	require.Len(t, out["data"], 1)

	// Endpoints Grafana calls that may answer empty.
	call(http.MethodGet, "/api/v1/metadata", nil)
	call(http.MethodGet, "/api/v1/query_exemplars", url.Values{"query": {"grafana_metric_total"}, "start": {ts(base)}, "end": {ts(time.Now())}})
	// The alert list panel and alerting UI: the built-in rule groups, each
	// alerting rule with its runbook link.
	out = call(http.MethodGet, "/api/v1/rules", url.Values{"type": {"alert"}})
	groups := out["data"].(map[string]any)["groups"].([]any)
	require.NotEmpty(t, groups)
	for _, g := range groups {
		require.Equal(t, "builtin:ballast.rules.yml", g.(map[string]any)["file"])
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			require.Equal(t, "alerting", rule["type"])
			require.Contains(t, rule["annotations"].(map[string]any)["runbook_url"], "/runbooks/"+rule["name"].(string))
		}
	}
	out = call(http.MethodGet, "/api/v1/alerts", nil)
	require.Contains(t, out["data"], "alerts")

	// buildinfo without "features": Grafana would otherwise assume Mimir.
	out = call(http.MethodGet, "/api/v1/status/buildinfo", nil)
	require.NotContains(t, out["data"], "features")
	require.NotEmpty(t, out["data"].(map[string]any)["version"])

	// The label values endpoint is GET only; POST answers 405 so Grafana
	// falls back to GET.
	resp, err := http.PostForm(p.url+"/api/v1/label/__name__/values", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusBadRequest, http.StatusNotFound}, resp.StatusCode)
	require.False(t, strings.HasPrefix(resp.Status, "5"))
}
