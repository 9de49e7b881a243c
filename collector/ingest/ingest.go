// Package ingest owns the last step of every ingest path: appending sample
// batches from the bus to the TSDB, remembering series references so known
// series skip the label lookup, and counting what was accepted and rejected
// (by reason) for every source.
//
// It knows nothing of HTTP or Kafka: the in-process bus and the Kafka ingester
// both call Ingester.Handle.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/tsdb"
)

// Appendable is the storage the ingester writes to.
type Appendable interface {
	Appender(ctx context.Context) tsdb.Appender
}

// Metrics are the ingest counters shared by every ingest path, so one metric
// answers "how many samples came in and why were some refused".
type Metrics struct {
	Received *prometheus.CounterVec // source
	Appended prometheus.Counter
	Rejected *prometheus.CounterVec // source, reason
	Batches  prometheus.Counter
	Append   prometheus.Histogram
}

// NewMetrics registers the ingest metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_ingest_samples_received_total",
			Help: "Samples received by ingest path (scrape, remote_write, simulator), before validation.",
		}, []string{"source"}),
		Appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ballast_ingest_samples_appended_total",
			Help: "Samples appended to the TSDB.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_ingest_samples_rejected_total",
			Help: "Samples refused, by ingest path and reason.",
		}, []string{"source", "reason"}),
		Batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ballast_ingest_batches_total",
			Help: "Sample batches appended to the TSDB.",
		}),
		Append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "ballast_ingest_append_duration_seconds",
			Help:                        "Time to append and commit one batch.",
			Buckets:                     prometheus.ExponentialBuckets(0.0001, 4, 9),
			NativeHistogramBucketFactor: 1.1,
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Appended, m.Rejected, m.Batches, m.Append)
	}
	return m
}

// CountingBus is a bus.Bus that counts every sample batch published through
// it as received from one source. It is for producers that publish straight
// onto the bus and do not count their own samples (the simulator); scrape and
// remote_write count theirs and must be given the bus itself.
type CountingBus struct {
	bus.Bus
	received prometheus.Counter
}

// NewCountingBus returns b counting what is published through it as
// received from source.
func NewCountingBus(b bus.Bus, source string, metrics *Metrics) *CountingBus {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &CountingBus{Bus: b, received: metrics.Received.WithLabelValues(source)}
}

// PublishSamples counts b and publishes it.
func (c *CountingBus) PublishSamples(ctx context.Context, b *bus.SampleBatch) error {
	c.received.Add(float64(b.Len()))
	return c.Bus.PublishSamples(ctx, b)
}

// RejectedError reports samples the TSDB refused while the rest of the batch
// was stored. Retrying cannot help: callers answer 400 (remote_write) or
// commit the offset (Kafka).
type RejectedError struct {
	Samples map[string]int // reason → samples
	Example string
}

func (e *RejectedError) Error() string {
	reasons := make([]string, 0, len(e.Samples))
	total := 0
	for r, n := range e.Samples {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		total += n
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d samples rejected (%s); first: %s", total, strings.Join(reasons, ", "), e.Example)
}

// Ingester appends batches to the TSDB. It is safe for concurrent use.
type Ingester struct {
	store   Appendable
	refs    *refCache
	metrics *Metrics
	source  string
	logger  *slog.Logger
}

// Options configures an Ingester.
type Options struct {
	// Source labels the rejected-samples metric for append-time rejections
	// (default "tsdb").
	Source string
	// MaxCachedSeries bounds the series-reference cache (default 2M).
	MaxCachedSeries int
}

// New returns an Ingester writing to store.
func New(opts Options, store Appendable, metrics *Metrics, logger *slog.Logger) (*Ingester, error) {
	if store == nil {
		return nil, errors.New("ingest: nil store")
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Source == "" {
		opts.Source = "tsdb"
	}
	if opts.MaxCachedSeries <= 0 {
		opts.MaxCachedSeries = 2 << 20
	}
	return &Ingester{
		store:   store,
		refs:    newRefCache(opts.MaxCachedSeries),
		metrics: metrics,
		source:  opts.Source,
		logger:  logger.With("component", "ingest"),
	}, nil
}

var _ bus.SampleHandler = (*Ingester)(nil).Handle

// Handle appends b in one transaction. Samples the TSDB refuses (out of order
// beyond the window, too old, a different value at the same timestamp) are
// counted and reported as *RejectedError after the rest is committed; a
// commit failure returns a plain error and nothing of b is stored.
// Re-appending an identical (series, timestamp, value) is accepted silently,
// which makes at-least-once redelivery harmless.
func (in *Ingester) Handle(ctx context.Context, b *bus.SampleBatch) error {
	start := time.Now()
	app := in.store.Appender(ctx)
	var (
		rejected map[string]int
		example  string
		appended int
	)
	for i := range b.Series {
		s := &b.Series[i]
		h := s.Hash
		if h == 0 {
			h = s.Labels.Hash()
		}
		// The decoder's memo answers without the cache's map probe.
		m, memoHit := s.Memo.Load(in, s.Labels)
		ref := tsdb.Ref(m)
		if !memoHit {
			ref = in.refs.get(h, s.Labels)
		}
		for _, smp := range s.Samples {
			r, err := app.Append(ref, s.Labels, smp.T, smp.V)
			if err != nil {
				reason := tsdb.RejectReason(err)
				if rejected == nil {
					rejected = map[string]int{}
				}
				rejected[reason]++
				if example == "" {
					example = fmt.Sprintf("%s @%d: %v", s.Labels.String(), smp.T, err)
				}
				continue
			}
			appended++
			if r != ref {
				ref = r
				in.refs.put(h, s.Labels, r)
				s.Memo.Store(in, s.Labels, uint64(r))
			} else if !memoHit && s.Memo != nil {
				s.Memo.Store(in, s.Labels, uint64(r))
				memoHit = true
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit %d samples: %w", appended, err)
	}
	in.metrics.Appended.Add(float64(appended))
	in.metrics.Batches.Inc()
	in.metrics.Append.Observe(time.Since(start).Seconds())
	if rejected != nil {
		for reason, n := range rejected {
			in.metrics.Rejected.WithLabelValues(in.source, reason).Add(float64(n))
		}
		return &RejectedError{Samples: rejected, Example: example}
	}
	return nil
}

// refCache maps a label-set hash to the TSDB series reference. Entries carry
// their labels, so a hash collision is detected (and costs only a lookup).
type refCache struct {
	shards   [64]refShard
	perShard int
}

type refShard struct {
	mu sync.RWMutex
	m  map[uint64]refEntry
}

type refEntry struct {
	ls  labels.Labels
	ref tsdb.Ref
}

func newRefCache(max int) *refCache {
	c := &refCache{perShard: max/64 + 1}
	for i := range c.shards {
		c.shards[i].m = map[uint64]refEntry{}
	}
	return c
}

func (c *refCache) get(h uint64, ls labels.Labels) tsdb.Ref {
	sh := &c.shards[h%64]
	sh.mu.RLock()
	e, ok := sh.m[h]
	sh.mu.RUnlock()
	if ok && labels.Equal(e.ls, ls) {
		return e.ref
	}
	return 0
}

func (c *refCache) put(h uint64, ls labels.Labels, ref tsdb.Ref) {
	sh := &c.shards[h%64]
	sh.mu.Lock()
	if len(sh.m) >= c.perShard {
		sh.m = make(map[uint64]refEntry, len(sh.m))
	}
	sh.m[h] = refEntry{ls: ls, ref: ref}
	sh.mu.Unlock()
}
