// Package promapi serves the Prometheus HTTP API (/api/v1/...) over Ballast's
// storage, so Grafana's Prometheus data source, OpenStack Watcher's Prometheus
// datasource and the official Go client work unchanged.
//
// The handlers are Prometheus's own (web/api/v1), which keeps the JSON byte-
// compatible; this package supplies what they read (storage, engine, scrape
// targets, rules, build and runtime info), refuses unknown query parameters
// with a Prometheus-style error, and counts requests and errors by handler
// and error type.
package promapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/common/version"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// Storage is what the API reads: samples, exemplars and TSDB status.
type Storage interface {
	Queryable() storage.SampleAndChunkQueryable
	ExemplarQueryable() storage.ExemplarQueryable
	apiv1.TSDBAdminStats
}

// TargetSource lists scrape targets; *scrape.Manager is one.
type TargetSource interface {
	apiv1.TargetRetriever
	apiv1.ScrapePoolsRetriever
}

// RuleSource lists rule groups and alerting rules (the rules engine).
type RuleSource = apiv1.RulesRetriever

// AlertmanagerSource lists the active and dropped Alertmanagers.
type AlertmanagerSource = apiv1.AlertmanagerRetriever

// Options configures the API. Storage and Engine are required.
type Options struct {
	Storage Storage
	Engine  promql.QueryEngine
	// Targets is nil until the scrape manager exists (empty target list).
	Targets func() TargetSource
	// Rules is nil until the rules engine exists (empty rule and alert lists).
	Rules func() RuleSource
	// Alertmanagers lists the Alertmanagers alerts go to (nil: none).
	Alertmanagers func() AlertmanagerSource
	// Config returns the effective Prometheus-shaped configuration
	// (/api/v1/status/config).
	Config func() promconfig.Config
	// Flags are shown by /api/v1/status/flags.
	Flags map[string]string
	// Ready reports whether storage is open; until then data endpoints
	// answer 503.
	Ready func() bool
	// ExternalURL is the base URL users reach the server at.
	ExternalURL *url.URL
	// Retention is shown in runtime info.
	Retention string
	// LookbackDelta is PromQL's staleness window.
	LookbackDelta time.Duration
	// AllowUnknownParams accepts query parameters the endpoint does not
	// know (Prometheus ignores them); by default they are refused with 400.
	AllowUnknownParams bool
	Gatherer           prometheus.Gatherer
	Registerer         prometheus.Registerer
}

// API is the /api/v1 handler.
type API struct {
	router   *route.Router
	strict   bool
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logger   *slog.Logger
}

// New builds the API. Mount the returned handler at /api/v1.
func New(opts Options, logger *slog.Logger) (*API, error) {
	if opts.Storage == nil || opts.Engine == nil {
		return nil, errors.New("promapi: storage and engine are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "promapi")
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if opts.Config == nil {
		opts.Config = func() promconfig.Config { return promconfig.DefaultConfig }
	}
	if opts.ExternalURL == nil {
		opts.ExternalURL = &url.URL{Scheme: "http", Host: "localhost:9322"}
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.NewRegistry()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.LookbackDelta == 0 {
		opts.LookbackDelta = 5 * time.Minute
	}
	targets := func(context.Context) apiv1.TargetRetriever {
		if opts.Targets != nil {
			if t := opts.Targets(); t != nil {
				return t
			}
		}
		return noTargets{}
	}
	pools := func(context.Context) apiv1.ScrapePoolsRetriever {
		if opts.Targets != nil {
			if t := opts.Targets(); t != nil {
				return t
			}
		}
		return noTargets{}
	}
	rulesFn := func(context.Context) apiv1.RulesRetriever {
		if opts.Rules != nil {
			if r := opts.Rules(); r != nil {
				return r
			}
		}
		return noRules{}
	}
	ready := func(f http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !opts.Ready() {
				writeError(w, http.StatusServiceUnavailable, "unavailable", "Service Unavailable: storage is starting")
				return
			}
			f(w, r)
		}
	}
	start := time.Now()
	cwd, _ := os.Getwd()
	runtimeInfo := func() (apiv1.RuntimeInfo, error) {
		host, err := os.Hostname()
		if err != nil {
			return apiv1.RuntimeInfo{}, fmt.Errorf("hostname: %w", err)
		}
		return apiv1.RuntimeInfo{
			StartTime: start, CWD: cwd, Hostname: host, ServerTime: time.Now().UTC(),
			ReloadConfigSuccess: true, LastConfigTime: start,
			GoroutineCount: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			GOMEMLIMIT: debug.SetMemoryLimit(-1), GOGC: os.Getenv("GOGC"), GODEBUG: os.Getenv("GODEBUG"),
			StorageRetention: opts.Retention,
		}, nil
	}
	build := &apiv1.PrometheusVersion{
		Version: version.Version, Revision: version.Revision, Branch: version.Branch,
		BuildUser: version.BuildUser, BuildDate: version.BuildDate, GoVersion: version.GoVersion,
	}
	api := apiv1.NewAPI(
		opts.Engine, opts.Storage.Queryable(), nil, nil, opts.Storage.ExemplarQueryable(),
		pools, targets, func(context.Context) apiv1.AlertmanagerRetriever {
			if opts.Alertmanagers != nil {
				if a := opts.Alertmanagers(); a != nil {
					return a
				}
			}
			return noAlertmanagers{}
		},
		opts.Config, opts.Flags,
		apiv1.GlobalURLOptions{ListenAddress: opts.ExternalURL.Host, Host: opts.ExternalURL.Host, Scheme: opts.ExternalURL.Scheme},
		ready, opts.Storage, "", false, false, 0, logger, rulesFn,
		50_000_000, 10, 1<<20, false, regexp.MustCompile(`^$`), runtimeInfo, build,
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		opts.Gatherer, opts.Registerer, nil, false, nil, false, false, false, false,
		opts.LookbackDelta, false, false, nil, nil, apiv1.OpenAPIOptions{}, nil,
	)
	router := route.New()
	api.Register(router)

	a := &API{
		router: router,
		strict: !opts.AllowUnknownParams,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_http_requests_total",
			Help: "HTTP requests to the Prometheus API, by handler and status code.",
		}, []string{"handler", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_api_errors_total",
			Help: "Prometheus API requests answered with an error, by handler and error type (bad_data, execution, timeout, unavailable, ...).",
		}, []string{"handler", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "ballast_http_request_duration_seconds",
			Help:                        "Prometheus API request latency (queries included), by handler.",
			Buckets:                     []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"handler"}),
		logger: logger,
	}
	opts.Registerer.MustRegister(a.requests, a.errors, a.duration)
	return a, nil
}

// ServeHTTP serves a request whose path is relative to /api/v1.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	handler := handlerName(r.URL.Path)
	start := time.Now()
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		a.duration.WithLabelValues(handler).Observe(time.Since(start).Seconds())
		a.requests.WithLabelValues(handler, fmt.Sprint(rec.code)).Inc()
		if rec.code >= 400 {
			a.errors.WithLabelValues(handler, rec.errorType()).Inc()
		}
	}()
	if a.strict {
		if err := checkParams(handler, r); err != nil {
			writeError(rec, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
	}
	a.router.ServeHTTP(rec, r)
}

// handlerName maps a path to a bounded label value.
func handlerName(path string) string {
	path = "/" + strings.TrimLeft(path, "/")
	if strings.HasPrefix(path, "/label/") && strings.HasSuffix(path, "/values") {
		return "/label/:name/values"
	}
	if _, ok := knownParams[path]; ok {
		return path
	}
	return "other"
}

// recorder remembers the status code and, for errors, the body, so the error
// type can be counted.
type recorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code >= 400 && r.body.Len() < 4096 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) errorType() string {
	raw := r.body.Bytes()
	if r.Header().Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
			raw, _ = io.ReadAll(io.LimitReader(zr, 1<<16))
		}
	}
	var body struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(raw, &body) == nil && body.ErrorType != "" {
		return body.ErrorType
	}
	return "http_" + fmt.Sprint(r.code)
}

// writeError answers with the Prometheus API error envelope.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", typ, msg})
}

type noTargets struct{}

func (noTargets) TargetsActive() map[string][]*scrape.Target  { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDropped() map[string][]*scrape.Target { return map[string][]*scrape.Target{} }
func (noTargets) TargetsDroppedCounts() map[string]int        { return map[string]int{} }
func (noTargets) ScrapePools() []string                       { return nil }
func (noTargets) ScrapePoolConfig(name string) (*promconfig.ScrapeConfig, error) {
	return nil, fmt.Errorf("scrape pool %q not found", name)
}

type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }
