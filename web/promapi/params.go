package promapi

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// knownParams lists, per endpoint, the query parameters Prometheus 3.x reads.
// Anything else is refused (unless AllowUnknownParams): a typo such as
// "qeury" or "setp" then fails loudly instead of silently using a default.
var knownParams = map[string][]string{
	"/query":                       {"query", "time", "timeout", "limit", "stats", "lookback_delta"},
	"/query_range":                 {"query", "start", "end", "step", "timeout", "limit", "stats", "lookback_delta"},
	"/query_exemplars":             {"query", "start", "end"},
	"/format_query":                {"query"},
	"/parse_query":                 {"query"},
	"/labels":                      {"match[]", "start", "end", "limit"},
	"/label/:name/values":          {"match[]", "start", "end", "limit"},
	"/series":                      {"match[]", "start", "end", "limit"},
	"/metadata":                    {"limit", "limit_per_metric", "metric"},
	"/targets":                     {"state", "scrapePool"},
	"/targets/metadata":            {"match_target", "metric", "limit"},
	"/targets/relabel_steps":       {"scrapePool", "labels"},
	"/scrape_pools":                nil,
	"/scrape_pools/config":         {"scrapePool"},
	"/alertmanagers":               nil,
	"/alerts":                      {"match[]"},
	"/rules":                       {"type", "rule_name[]", "rule_group[]", "file[]", "exclude_alerts", "match[]", "group_limit", "group_next_token"},
	"/status/config":               nil,
	"/status/runtimeinfo":          nil,
	"/status/buildinfo":            nil,
	"/status/flags":                nil,
	"/status/tsdb":                 {"limit"},
	"/status/tsdb/blocks":          nil,
	"/status/walreplay":            nil,
	"/status/self_metrics":         nil,
	"/features":                    nil,
	"/notifications":               nil,
	"/read":                        nil,
	"/search/metric_names":         {"match[]", "start", "end", "limit", "search", "fuzz_threshold", "fuzz_alg", "case_sensitive", "sort_by"},
	"/search/label_names":          {"match[]", "start", "end", "limit", "search", "fuzz_threshold", "fuzz_alg", "case_sensitive", "sort_by"},
	"/search/label_values":         {"match[]", "start", "end", "limit", "search", "fuzz_threshold", "fuzz_alg", "case_sensitive", "sort_by", "label"},
	"/admin/tsdb/snapshot":         {"skip_head"},
	"/admin/tsdb/delete_series":    {"match[]", "start", "end"},
	"/admin/tsdb/clean_tombstones": nil,
}

// checkParams refuses parameters the endpoint does not read. Bodies that are
// not form-encoded (remote read) are not inspected.
func checkParams(handler string, r *http.Request) error {
	allowed, ok := knownParams[handler]
	if !ok {
		return nil // unknown endpoints get the router's own 404
	}
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("invalid parameters: %w", err)
	}
	var unknown []string
	for name := range r.Form {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	want := "none"
	if len(allowed) > 0 {
		want = strings.Join(allowed, ", ")
	}
	return fmt.Errorf("unknown parameter %s for %s (accepted: %s)", strings.Join(unknown, ", "), handler, want)
}
