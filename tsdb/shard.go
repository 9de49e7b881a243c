package tsdb

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"
)

// shardedEngine evaluates a query whose outermost operation is a
// sum/min/max/count/group aggregation of per-series expressions (the shape of
// nearly every dashboard panel: sum by (instance) (rate(x[5m]))) as one
// sub-query per series shard, in parallel, and merges the partial
// aggregates. Each sub-query reads only its shard's series (the TSDB filters
// postings by series hash), so a query uses every core instead of one.
// Anything else goes to the engine unchanged.
type shardedEngine struct {
	engine  *promql.Engine
	db      storage.Queryable // sub-queries are sharded only against this storage
	shards  int
	parser  parser.Parser
	sharded prometheus.Counter
}

var _ promql.QueryEngine = (*shardedEngine)(nil)

func newShardedEngine(engine *promql.Engine, db storage.Queryable, shards int, reg prometheus.Registerer) *shardedEngine {
	e := &shardedEngine{
		engine: engine, db: db, shards: shards, parser: parser.NewParser(parser.Options{}),
		sharded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ballast_query_sharded_total",
			Help: "Queries evaluated as parallel series shards.",
		}),
	}
	if reg != nil {
		reg.MustRegister(e.sharded)
	}
	return e
}

func (e *shardedEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	op, ok := e.shardable(q, qs)
	if !ok {
		return e.engine.NewInstantQuery(ctx, q, opts, qs, ts)
	}
	return e.newSharded(qs, op, func(q storage.Queryable) (promql.Query, error) {
		return e.engine.NewInstantQuery(ctx, q, opts, qs, ts)
	})
}

func (e *shardedEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	op, ok := e.shardable(q, qs)
	if !ok {
		return e.engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	}
	return e.newSharded(qs, op, func(q storage.Queryable) (promql.Query, error) {
		return e.engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	})
}

func (e *shardedEngine) newSharded(qs string, op parser.ItemType, mk func(storage.Queryable) (promql.Query, error)) (promql.Query, error) {
	sq := &shardedQuery{qs: qs, op: op, unsharded: func() (promql.Query, error) { return mk(e.db) }}
	for i := 0; i < e.shards; i++ {
		q, err := mk(&shardQueryable{q: e.db, index: uint64(i), count: uint64(e.shards)})
		if err != nil {
			sq.Close()
			return nil, err
		}
		sq.parts = append(sq.parts, q)
	}
	e.sharded.Inc()
	return sq, nil
}

// shardable reports whether qs can be split into series shards, and the
// aggregation that merges the parts.
func (e *shardedEngine) shardable(q storage.Queryable, qs string) (parser.ItemType, bool) {
	if e.shards < 2 || q != e.db {
		return 0, false
	}
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return 0, false // the engine reports the error
	}
	for {
		p, ok := expr.(*parser.ParenExpr)
		if !ok {
			break
		}
		expr = p.Expr
	}
	agg, ok := expr.(*parser.AggregateExpr)
	if !ok || agg.Param != nil {
		return 0, false
	}
	switch agg.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.COUNT, parser.GROUP:
	default:
		return 0, false
	}
	return agg.Op, perSeries(agg.Expr)
}

// perSeries reports whether every output series of expr depends on one input
// series only, so evaluating it over disjoint series shards loses nothing.
func perSeries(expr parser.Expr) bool {
	switch e := expr.(type) {
	case *parser.VectorSelector:
		return true
	case *parser.MatrixSelector:
		return perSeries(e.VectorSelector)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return true
	case *parser.ParenExpr:
		return perSeries(e.Expr)
	case *parser.UnaryExpr:
		return perSeries(e.Expr)
	case *parser.BinaryExpr:
		// vector op scalar is per series; vector op vector matches series
		// that may sit in different shards.
		if e.LHS.Type() == parser.ValueTypeVector && e.RHS.Type() == parser.ValueTypeVector {
			return false
		}
		return perSeries(e.LHS) && perSeries(e.RHS)
	case *parser.Call:
		if !perSeriesFuncs[e.Func.Name] {
			return false
		}
		for _, a := range e.Args {
			if !perSeries(a) {
				return false
			}
		}
		return true
	}
	return false
}

// perSeriesFuncs are the functions whose output series each come from one
// input series.
var perSeriesFuncs = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"predict_linear": true, "resets": true, "changes": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "quantile_over_time": true, "stddev_over_time": true, "stdvar_over_time": true,
	"last_over_time": true, "present_over_time": true, "mad_over_time": true,
	"abs": true, "ceil": true, "floor": true, "round": true, "clamp": true, "clamp_min": true, "clamp_max": true,
	"exp": true, "ln": true, "log2": true, "log10": true, "sqrt": true, "sgn": true,
	"timestamp": true, "label_replace": true, "label_join": true,
}

// shardQueryable restricts every Select to one series shard.
type shardQueryable struct {
	q            storage.Queryable
	index, count uint64
}

func (s *shardQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &shardQuerier{Querier: q, index: s.index, count: s.count}, nil
}

type shardQuerier struct {
	storage.Querier
	index, count uint64
}

func (s *shardQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	h := storage.SelectHints{}
	if hints != nil {
		h = *hints
	}
	h.ShardIndex, h.ShardCount = s.index, s.count
	return s.Querier.Select(ctx, sortSeries, &h, ms...)
}

// shardedQuery runs its parts concurrently and merges their results.
type shardedQuery struct {
	qs        string
	op        parser.ItemType
	parts     []promql.Query
	unsharded func() (promql.Query, error)
	fallback  promql.Query
	mu        sync.Mutex
}

func (q *shardedQuery) Exec(ctx context.Context) *promql.Result {
	results := make([]*promql.Result, len(q.parts))
	var wg sync.WaitGroup
	for i, p := range q.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.Exec(ctx)
		}()
	}
	wg.Wait()
	var warnings annotations.Annotations
	for _, r := range results {
		if r.Err != nil {
			return r
		}
		warnings.Merge(r.Warnings)
	}
	var (
		merged parser.Value
		ok     bool
	)
	switch results[0].Value.(type) {
	case promql.Vector:
		merged, ok = q.mergeVectors(results)
	case promql.Matrix:
		merged, ok = q.mergeMatrices(results)
	}
	if !ok {
		// Native histograms or an unexpected type: evaluate unsharded.
		fq, err := q.unsharded()
		if err != nil {
			return &promql.Result{Err: err}
		}
		q.mu.Lock()
		q.fallback = fq
		q.mu.Unlock()
		return fq.Exec(ctx)
	}
	return &promql.Result{Value: merged, Warnings: warnings}
}

func (q *shardedQuery) combine(a, b float64) float64 {
	switch q.op {
	case parser.MIN:
		if b < a || math.IsNaN(a) {
			return b
		}
		return a
	case parser.MAX:
		if b > a || math.IsNaN(a) {
			return b
		}
		return a
	case parser.GROUP:
		return 1
	}
	return a + b // sum, and count (sum of counts)
}

func (q *shardedQuery) mergeVectors(results []*promql.Result) (parser.Value, bool) {
	byKey := map[string]int{} // series → index in out
	var out promql.Vector
	for _, r := range results {
		for _, s := range r.Value.(promql.Vector) {
			if s.H != nil {
				return nil, false
			}
			k := s.Metric.String()
			if i, ok := byKey[k]; ok {
				out[i].F = q.combine(out[i].F, s.F)
				continue
			}
			byKey[k] = len(out)
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
	return out, true
}

func (q *shardedQuery) mergeMatrices(results []*promql.Result) (parser.Value, bool) {
	byKey := map[string]int{}
	var out promql.Matrix
	for _, r := range results {
		for _, s := range r.Value.(promql.Matrix) {
			if len(s.Histograms) > 0 {
				return nil, false
			}
			k := s.Metric.String()
			i, ok := byKey[k]
			if !ok {
				byKey[k] = len(out)
				out = append(out, promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats), DropName: s.DropName})
				continue
			}
			out[i].Floats = q.mergePoints(out[i].Floats, s.Floats)
		}
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out, true
}

// mergePoints merges two step-ordered point lists, combining equal steps.
func (q *shardedQuery) mergePoints(a, b []promql.FPoint) []promql.FPoint {
	out := make([]promql.FPoint, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].T == b[j].T:
			out = append(out, promql.FPoint{T: a[i].T, F: q.combine(a[i].F, b[j].F)})
			i++
			j++
		case a[i].T < b[j].T:
			out = append(out, a[i])
			i++
		default:
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (q *shardedQuery) Close() {
	for _, p := range q.parts {
		p.Close()
	}
	q.mu.Lock()
	if q.fallback != nil {
		q.fallback.Close()
	}
	q.mu.Unlock()
}

func (q *shardedQuery) Statement() parser.Statement { return q.parts[0].Statement() }

// Stats reports the first shard's timers with the samples of all shards.
func (q *shardedQuery) Stats() *stats.Statistics {
	st := q.parts[0].Stats()
	if st == nil || st.Samples == nil {
		return st
	}
	total := *st.Samples
	for _, p := range q.parts[1:] {
		if s := p.Stats(); s != nil && s.Samples != nil {
			total.TotalSamples += s.Samples.TotalSamples
			total.PeakSamples = max(total.PeakSamples, s.Samples.PeakSamples)
		}
	}
	return &stats.Statistics{Timers: st.Timers, Samples: &total}
}

func (q *shardedQuery) Cancel() {
	for _, p := range q.parts {
		p.Cancel()
	}
}

func (q *shardedQuery) String() string { return q.qs }
