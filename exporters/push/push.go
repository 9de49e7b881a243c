// Package push is the agent's push mode: every interval it gathers the
// exporter's registry, turns it into a bus.SampleBatch and hands it to a
// bus.SamplePublisher; inventories go to a bus.EventPublisher when one is
// given. The publisher is the seam: RemoteWrite (this package) ships to any
// Prometheus remote_write receiver, and the Kafka producer drops in behind
// the same interface.
//
// It must not decide how samples travel or are retried: publishers own that.
package push

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/exporters/inventory"
)

// Config is the push loop's configuration.
type Config struct {
	// Interval between pushes (default 15s).
	Interval time.Duration
	// Labels are added to every series that lacks them, as a scrape adds
	// job and instance (e.g. job="ballast-exporter", instance="hv-07:9177").
	Labels map[string]string
	// EventSource is the CloudEvents source of inventory events
	// (default "ballast-exporter").
	EventSource string
	// InventoryEvery sends the inventory at least every this many pushes
	// even when unchanged (default 20); a change is sent at once.
	InventoryEvery int
}

// Deps are what the loop reads and where it writes.
type Deps struct {
	Gatherer  prometheus.Gatherer   // required
	Samples   bus.SamplePublisher   // required
	Events    bus.EventPublisher    // optional
	Inventory inventory.Source      // optional, needs Events
	Registry  prometheus.Registerer // optional, for the loop's own metrics
	Now       func() time.Time      // optional clock
}

// Pusher runs the push loop.
type Pusher struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	extra  labels.Labels

	pushes        int
	lastInvHash   uint64
	batches       *prometheus.CounterVec
	samples       prometheus.Counter
	lastSuccess   prometheus.Gauge
	inventorySent prometheus.Counter
}

// New validates cfg and deps.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Pusher, error) {
	if deps.Gatherer == nil || deps.Samples == nil {
		return nil, errors.New("push: a gatherer and a sample publisher are required")
	}
	if deps.Inventory != nil && deps.Events == nil {
		return nil, errors.New("push: an inventory source needs an event publisher")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("push.interval %s: must be positive", cfg.Interval)
	}
	if cfg.EventSource == "" {
		cfg.EventSource = "ballast-exporter"
	}
	if cfg.InventoryEvery <= 0 {
		cfg.InventoryEvery = 20
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	for k := range cfg.Labels {
		if !validLabelName(k) {
			return nil, fmt.Errorf("push.label %q: not a valid label name", k)
		}
	}
	p := &Pusher{cfg: cfg, deps: deps, logger: logger, extra: labels.FromMap(cfg.Labels),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ballast_exporter_push_batches_total",
			Help: "Sample batches handed to the publisher, by result."}, []string{"result"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "ballast_exporter_push_samples_total",
			Help: "Samples the publisher accepted."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ballast_exporter_push_last_success_timestamp_seconds",
			Help: "When the publisher last accepted a batch: the on-disk queue with remote_write (delivery: prometheus_remote_storage_queue_highest_sent_timestamp_seconds), the brokers with Kafka."}),
		inventorySent: prometheus.NewCounter(prometheus.CounterOpts{Name: "ballast_exporter_push_inventory_events_total",
			Help: "Inventory events published."}),
	}
	if deps.Registry != nil {
		for _, c := range []prometheus.Collector{p.batches, p.samples, p.lastSuccess, p.inventorySent} {
			if err := deps.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("register push metrics: %w", err)
			}
		}
	}
	return p, nil
}

func validLabelName(s string) bool {
	if s == "" || s == "__name__" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// Run pushes every interval, the first one interval after the start, until
// ctx ends. A failed push is logged and the loop goes on: the publisher's
// queue is what keeps data.
func (p *Pusher) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.Push(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("Push failed", "err", err)
		}
	}
}

// Push gathers once and publishes the samples, then the inventory when it
// changed or is due.
func (p *Pusher) Push(ctx context.Context) error {
	now := p.deps.Now()
	mfs, gerr := p.deps.Gatherer.Gather()
	if gerr != nil {
		// Gather returns what it could along with the error, like a scrape.
		p.logger.Warn("Gather incomplete", "err", gerr)
	}
	b := Batch(mfs, now.UnixMilli(), p.extra)
	var errs []error
	if err := p.deps.Samples.PublishSamples(ctx, b); err != nil {
		p.batches.WithLabelValues("error").Inc()
		errs = append(errs, fmt.Errorf("publish %d samples: %w", b.Len(), err))
	} else {
		p.batches.WithLabelValues("ok").Inc()
		p.samples.Add(float64(b.Len()))
		p.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	}
	if p.deps.Inventory != nil {
		if err := p.pushInventory(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.pushes++
	return errors.Join(errs...)
}

func (p *Pusher) pushInventory(ctx context.Context) error {
	inv, err := p.deps.Inventory()
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	h, err := inventoryHash(inv)
	if err != nil {
		return err
	}
	if h == p.lastInvHash && p.pushes%p.cfg.InventoryEvery != 0 {
		return nil
	}
	e, err := inventory.NewEvent(p.cfg.EventSource, inv)
	if err != nil {
		return err
	}
	if err := p.deps.Events.PublishEvents(ctx, e); err != nil {
		return fmt.Errorf("publish inventory: %w", err)
	}
	p.lastInvHash = h
	p.inventorySent.Inc()
	return nil
}

// inventoryHash identifies an inventory's content, ignoring when it was read.
func inventoryHash(inv *inventory.Inventory) (uint64, error) {
	c := *inv
	c.CollectedAt = time.Time{}
	e, err := bus.NewEvent("hash", bus.TypeInventory, "", c)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	_, _ = h.Write(e.Data)
	return h.Sum64(), nil
}

// Batch flattens metric families into series the way a scrape does
// (summaries and classic histograms into _sum, _count, quantile and _bucket
// series), stamped at tsMillis unless a metric carries its own timestamp.
// extra labels are added where a series lacks them.
func Batch(mfs []*dto.MetricFamily, tsMillis int64, extra labels.Labels) *bus.SampleBatch {
	b := &bus.SampleBatch{}
	lb := labels.NewBuilder(labels.EmptyLabels())
	add := func(name string, m *dto.Metric, v float64, extraName, extraValue string) {
		lb.Reset(labels.EmptyLabels())
		extra.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
		for _, lp := range m.GetLabel() {
			lb.Set(lp.GetName(), lp.GetValue())
		}
		if extraName != "" {
			lb.Set(extraName, extraValue)
		}
		lb.Set(model.MetricNameLabel, name)
		ts := tsMillis
		if m.TimestampMs != nil {
			ts = m.GetTimestampMs()
		}
		lset := lb.Labels()
		b.Series = append(b.Series, bus.Series{Labels: lset, Hash: lset.Hash(), Samples: []bus.Sample{{T: ts, V: v}}})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue(), "", "")
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue(), "", "")
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, m, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", m, s.GetSampleSum(), "", "")
				add(name+"_count", m, float64(s.GetSampleCount()), "", "")
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				infSeen := false
				for _, bk := range h.GetBucket() {
					if math.IsInf(bk.GetUpperBound(), 1) {
						infSeen = true
					}
					add(name+"_bucket", m, float64(bk.GetCumulativeCount()), "le", formatFloat(bk.GetUpperBound()))
				}
				if !infSeen {
					add(name+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				}
				add(name+"_sum", m, h.GetSampleSum(), "", "")
				add(name+"_count", m, float64(h.GetSampleCount()), "", "")
			default:
				add(name, m, m.GetUntyped().GetValue(), "", "")
			}
		}
	}
	return b
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
