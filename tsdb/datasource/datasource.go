// Package datasource is the seam through which the decision engine and the
// rules read metrics: PromQL, answered either by the embedded engine (Local)
// or by any Prometheus-compatible HTTP endpoint (Remote: Prometheus, Thanos,
// Mimir, VictoriaMetrics, another Ballast).
//
// Results use the prometheus/common model types, the same ones the official
// Go client returns, so a consumer cannot tell the two apart.
package datasource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Querier runs PromQL. Warnings are non-fatal notes from the engine.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error)
	QueryRange(ctx context.Context, query string, r Range) (model.Value, []string, error)
}

// Range is a query_range time range.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// Local answers PromQL from an in-process engine and storage.
type Local struct {
	engine    promql.QueryEngine
	queryable storage.Queryable
}

var _ Querier = (*Local)(nil)

// NewLocal returns a Querier over engine and queryable.
func NewLocal(engine promql.QueryEngine, queryable storage.Queryable) (*Local, error) {
	if engine == nil || queryable == nil {
		return nil, errors.New("datasource: local querier needs an engine and a queryable")
	}
	return &Local{engine: engine, queryable: queryable}, nil
}

// Query runs an instant query at ts.
func (l *Local) Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error) {
	q, err := l.engine.NewInstantQuery(ctx, l.queryable, nil, query, ts)
	if err != nil {
		return nil, nil, fmt.Errorf("query %q: %w", query, err)
	}
	defer q.Close()
	return convert(q.Exec(ctx))
}

// QueryRange runs a range query.
func (l *Local) QueryRange(ctx context.Context, query string, r Range) (model.Value, []string, error) {
	if r.Step <= 0 {
		return nil, nil, fmt.Errorf("query range %q: step %s must be positive", query, r.Step)
	}
	if r.End.Before(r.Start) {
		return nil, nil, fmt.Errorf("query range %q: end %s is before start %s", query, r.End, r.Start)
	}
	q, err := l.engine.NewRangeQuery(ctx, l.queryable, nil, query, r.Start, r.End, r.Step)
	if err != nil {
		return nil, nil, fmt.Errorf("query range %q: %w", query, err)
	}
	defer q.Close()
	return convert(q.Exec(ctx))
}

func convert(res *promql.Result) (model.Value, []string, error) {
	warnings := warningStrings(res.Warnings)
	if res.Err != nil {
		return nil, warnings, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make(model.Vector, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				continue // native histograms are not consumed through this seam
			}
			out = append(out, &model.Sample{Metric: metric(s.Metric), Value: model.SampleValue(s.F), Timestamp: model.Time(s.T)})
		}
		return out, warnings, nil
	case promql.Matrix:
		out := make(model.Matrix, 0, len(v))
		for _, s := range v {
			ss := &model.SampleStream{Metric: metric(s.Metric), Values: make([]model.SamplePair, len(s.Floats))}
			for i, p := range s.Floats {
				ss.Values[i] = model.SamplePair{Timestamp: model.Time(p.T), Value: model.SampleValue(p.F)}
			}
			out = append(out, ss)
		}
		return out, warnings, nil
	case promql.Scalar:
		return &model.Scalar{Value: model.SampleValue(v.V), Timestamp: model.Time(v.T)}, warnings, nil
	case promql.String:
		return &model.String{Value: v.V, Timestamp: model.Time(v.T)}, warnings, nil
	}
	return nil, warnings, fmt.Errorf("unexpected result type %s", res.Value.Type())
}

func metric(ls labels.Labels) model.Metric {
	m := make(model.Metric, ls.Len())
	ls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return m
}

func warningStrings(a annotations.Annotations) []string {
	if len(a) == 0 {
		return nil
	}
	out := make([]string, 0, len(a))
	for _, err := range a {
		out = append(out, err.Error())
	}
	return out
}

// Remote answers PromQL from a Prometheus-compatible HTTP API.
type Remote struct {
	api promv1.API
}

var _ Querier = (*Remote)(nil)

// RemoteOptions configures a remote querier.
type RemoteOptions struct {
	// URL is the base URL, e.g. http://thanos-query:9090 (required).
	URL string
	// RoundTripper carries auth and TLS; nil uses api.DefaultRoundTripper.
	RoundTripper http.RoundTripper
	// Timeout bounds each query (default 2m).
	Timeout time.Duration
}

// NewRemote returns a Querier for the endpoint at opts.URL.
func NewRemote(opts RemoteOptions) (*Remote, error) {
	if opts.URL == "" {
		return nil, errors.New("datasource: query.remote-url must not be empty")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	rt := opts.RoundTripper
	if rt == nil {
		rt = api.DefaultRoundTripper
	}
	c, err := api.NewClient(api.Config{Address: opts.URL, Client: &http.Client{Transport: rt, Timeout: opts.Timeout}})
	if err != nil {
		return nil, fmt.Errorf("datasource: remote %s: %w", opts.URL, err)
	}
	return &Remote{api: promv1.NewAPI(c)}, nil
}

// Query runs an instant query at ts.
func (r *Remote) Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error) {
	v, w, _, err := r.api.Query(ctx, query, ts)
	return v, w, err
}

// QueryRange runs a range query.
func (r *Remote) QueryRange(ctx context.Context, query string, rg Range) (model.Value, []string, error) {
	v, w, _, err := r.api.QueryRange(ctx, query, promv1.Range{Start: rg.Start, End: rg.End, Step: rg.Step})
	return v, w, err
}

// Validate parses query without running it, for config-time checks of rules
// and strategy templates.
func Validate(query string) error {
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(query); err != nil {
		return fmt.Errorf("invalid PromQL %q: %w", query, err)
	}
	return nil
}
