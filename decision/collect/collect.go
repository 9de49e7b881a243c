// Package collect assembles the cluster model the decision engine plans on:
// inventory (hosts and instances, from agents' inventory events or from the
// simulator) plus measured usage read through the datasource seam
// (tsdb/datasource.Querier: PromQL over the embedded TSDB or any
// Prometheus-compatible endpoint).
//
// Metrics are read in bulk: one PromQL query per metric per build, returning
// one series per instance or host, never one query per instance (Watcher
// issues one per instance and meter). Queries aggregate with Watcher's
// options: a period, a granularity and mean, max, min or a percentile,
// using PromQL subqueries (avg_over_time(rate(x[G])[P:G]) and friends).
//
// The package reads; it never writes metrics or acts on infrastructure.
package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	dmodel "github.com/ballast-cloud/ballast/decision/model"
)

// Inventory provides hosts and instances, without usage.
type Inventory interface {
	Inventory(ctx context.Context) (*dmodel.Cluster, error)
}

// Querier is the part of tsdb/datasource.Querier the builder needs.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, []string, error)
}

// Metric names the builder fills, the keys of Config.Queries.
const (
	InstanceCPUCores = "instance_cpu_cores" // busy cores per instance
	InstanceMemoryMB = "instance_memory_mb"
	InstanceDiskIO   = "instance_disk_io_mbps"
	InstanceNet      = "instance_net_mbps"
	InstanceSteal    = "instance_cpu_steal"
	HostCPU          = "host_cpu"       // busy fraction
	HostMemoryMB     = "host_memory_mb" // total − available
	HostDiskIOUtil   = "host_disk_io_util"
	HostSteal        = "host_cpu_steal"
)

// DefaultQueries are the built-in queries over node_exporter and libvirt
// exporter names. In each, $range is the rate window (the granularity) and
// $instance and $host the label names; the builder wraps each in the
// aggregation over the period.
var DefaultQueries = map[string]string{
	InstanceCPUCores: `sum by ($instance) (rate(libvirt_domain_info_cpu_time_seconds_total[$range]))`,
	InstanceMemoryMB: `max by ($instance) (libvirt_domain_info_memory_usage_bytes) / 1048576`,
	InstanceDiskIO: `sum by ($instance) (rate(libvirt_domain_block_stats_read_bytes_total[$range]) + ` +
		`rate(libvirt_domain_block_stats_write_bytes_total[$range])) / 1048576`,
	InstanceNet: `sum by ($instance) (rate(libvirt_domain_interface_stats_receive_bytes_total[$range]) + ` +
		`rate(libvirt_domain_interface_stats_transmit_bytes_total[$range])) * 8 / 1e6`,
	InstanceSteal: `sum by ($instance) (rate(libvirt_domain_vcpu_delay_seconds_total[$range])) / ` +
		`max by ($instance) (libvirt_domain_info_virtual_cpus)`,
	HostCPU:        `1 - avg by ($host) (rate(node_cpu_seconds_total{mode="idle"}[$range]))`,
	HostMemoryMB:   `(max by ($host) (node_memory_MemTotal_bytes) - max by ($host) (node_memory_MemAvailable_bytes)) / 1048576`,
	HostDiskIOUtil: `max by ($host) (rate(node_disk_io_time_seconds_total[$range]))`,
	HostSteal:      `avg by ($host) (rate(node_cpu_seconds_total{mode="steal"}[$range]))`,
}

// Config configures the builder. Zero values get the defaults noted.
type Config struct {
	// InstanceLabel and HostLabel are the label names carrying the
	// instance UUID and the hostname (defaults uuid and host).
	InstanceLabel string `yaml:"instance_label"`
	HostLabel     string `yaml:"host_label"`
	// Queries override DefaultQueries by metric name; an empty string
	// disables a metric.
	Queries map[string]string `yaml:"queries"`
	// Timeout bounds one build's queries (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Deps are the builder's sources.
type Deps struct {
	Inventory Inventory
	Querier   Querier
}

// Builder assembles models.
type Builder struct {
	cfg     Config
	queries map[string]string
	deps    Deps
	logger  *slog.Logger
}

// New validates cfg and deps.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Builder, error) {
	if deps.Inventory == nil {
		return nil, errors.New("collect: an inventory is required")
	}
	if cfg.InstanceLabel == "" {
		cfg.InstanceLabel = "uuid"
	}
	if cfg.HostLabel == "" {
		cfg.HostLabel = "host"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	q := map[string]string{}
	for k, v := range DefaultQueries {
		q[k] = v
	}
	for k, v := range cfg.Queries {
		if _, ok := DefaultQueries[k]; !ok {
			return nil, fmt.Errorf("collect.queries: %q is not one of %v", k, metricNames())
		}
		q[k] = v
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Builder{cfg: cfg, queries: q, deps: deps, logger: logger.With("component", "decision/collect")}, nil
}

func metricNames() []string {
	return []string{InstanceCPUCores, InstanceMemoryMB, InstanceDiskIO, InstanceNet, InstanceSteal, HostCPU, HostMemoryMB, HostDiskIOUtil, HostSteal}
}

// Window is the aggregation of a build.
type Window struct {
	Period, Granularity time.Duration
	// Aggregate is mean, max, min or pNN.
	Aggregate string
}

// DefaultWindow is Watcher's consolidation default: one hour of 5-minute
// points, averaged.
var DefaultWindow = Window{Period: time.Hour, Granularity: 5 * time.Minute, Aggregate: "mean"}

// Query renders the query for metric over w, or "" if the metric is
// disabled. Exposed so operators can see what runs.
func (b *Builder) Query(metric string, w Window) (string, error) {
	inner := b.queries[metric]
	if inner == "" {
		return "", nil
	}
	agg, err := dmodel.ParseAggregate(w.Aggregate)
	if err != nil {
		return "", fmt.Errorf("aggregate: %w", err)
	}
	g := promDuration(w.Granularity)
	inner = strings.NewReplacer("$range", g, "$instance", b.cfg.InstanceLabel, "$host", b.cfg.HostLabel).Replace(inner)
	if w.Period <= w.Granularity {
		return inner, nil
	}
	sub := fmt.Sprintf("(%s)[%s:%s]", inner, promDuration(w.Period), g)
	switch agg.Kind {
	case "max":
		return "max_over_time(" + sub + ")", nil
	case "min":
		return "min_over_time(" + sub + ")", nil
	case "percentile":
		return fmt.Sprintf("quantile_over_time(%g, %s)", agg.Quantile, sub), nil
	}
	return "avg_over_time(" + sub + ")", nil
}

func promDuration(d time.Duration) string {
	if d <= 0 {
		d = 5 * time.Minute
	}
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

// Build assembles the model at time at: the inventory with usage filled from
// the metrics aggregated over w. Instances and hosts the metrics do not
// cover keep no usage (strategies then assume the safe worst case).
func (b *Builder) Build(ctx context.Context, at time.Time, w Window) (*dmodel.Cluster, error) {
	if w.Granularity <= 0 || w.Period < 0 {
		return nil, fmt.Errorf("collect: granularity %s must be positive and period %s not negative", w.Granularity, w.Period)
	}
	c, err := b.deps.Inventory.Inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("collect: inventory: %w", err)
	}
	c = c.Clone()
	c.Timestamp = at
	c.Metrics = &dmodel.MetricWindow{PeriodSeconds: int(w.Period / time.Second), GranularitySeconds: int(w.Granularity / time.Second), Aggregate: w.Aggregate}
	if b.deps.Querier == nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	inst := make(map[string]*dmodel.Instance, len(c.Instances))
	for i := range c.Instances {
		inst[c.Instances[i].UUID] = &c.Instances[i]
	}
	hosts := make(map[string]*dmodel.Host, len(c.Hosts))
	for i := range c.Hosts {
		hosts[c.Hosts[i].Name] = &c.Hosts[i]
	}
	instUsage := func(uuid string) *dmodel.InstanceUsage {
		in := inst[uuid]
		if in == nil {
			return nil
		}
		if in.Usage == nil {
			in.Usage = &dmodel.InstanceUsage{}
		}
		return in.Usage
	}
	hostUsage := func(name string) *dmodel.HostUsage {
		h := hosts[name]
		if h == nil {
			return nil
		}
		if h.Usage == nil {
			h.Usage = &dmodel.HostUsage{}
		}
		return h.Usage
	}
	type fill struct {
		metric string
		label  string
		apply  func(key string, v float64)
	}
	fills := []fill{
		{InstanceCPUCores, b.cfg.InstanceLabel, func(k string, v float64) {
			if u := instUsage(k); u != nil && inst[k].Flavor.VCPUs > 0 {
				u.CPU = clamp01(v / float64(inst[k].Flavor.VCPUs))
			}
		}},
		{InstanceMemoryMB, b.cfg.InstanceLabel, func(k string, v float64) {
			if u := instUsage(k); u != nil {
				u.MemoryMB = max(0, v)
			}
		}},
		{InstanceDiskIO, b.cfg.InstanceLabel, func(k string, v float64) {
			if u := instUsage(k); u != nil {
				u.DiskIOMBps = max(0, v)
			}
		}},
		{InstanceNet, b.cfg.InstanceLabel, func(k string, v float64) {
			if u := instUsage(k); u != nil {
				u.NetMbps = max(0, v)
			}
		}},
		{InstanceSteal, b.cfg.InstanceLabel, func(k string, v float64) {
			if u := instUsage(k); u != nil {
				u.CPUSteal = clamp01(v)
			}
		}},
		{HostCPU, b.cfg.HostLabel, func(k string, v float64) {
			if u := hostUsage(k); u != nil {
				u.CPU = clamp01(v)
			}
		}},
		{HostMemoryMB, b.cfg.HostLabel, func(k string, v float64) {
			if u := hostUsage(k); u != nil {
				u.MemoryMB = max(0, v)
			}
		}},
		{HostDiskIOUtil, b.cfg.HostLabel, func(k string, v float64) {
			if u := hostUsage(k); u != nil {
				u.DiskIOUtil = clamp01(v)
			}
		}},
		{HostSteal, b.cfg.HostLabel, func(k string, v float64) {
			if u := hostUsage(k); u != nil {
				u.CPUSteal = clamp01(v)
			}
		}},
	}
	var errs []error
	for _, f := range fills {
		q, err := b.Query(f.metric, w)
		if err != nil {
			return nil, fmt.Errorf("collect: %s: %w", f.metric, err)
		}
		if q == "" {
			continue
		}
		v, warnings, err := b.deps.Querier.Query(ctx, q, at)
		if err != nil {
			// One missing metric must not block planning on the others.
			errs = append(errs, fmt.Errorf("%s: %w", f.metric, err))
			continue
		}
		if len(warnings) > 0 {
			b.logger.Debug("Query warnings", "metric", f.metric, "warnings", warnings)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: result is %s, want a vector", f.metric, v.Type()))
			continue
		}
		for _, s := range vec {
			f.apply(string(s.Metric[model.LabelName(f.label)]), float64(s.Value))
		}
	}
	if len(errs) > 0 {
		b.logger.Warn("Some metrics could not be read", "err", errors.Join(errs...))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("collect: assembled model is invalid: %w", err)
	}
	return c, nil
}

func clamp01(v float64) float64 {
	if v != v || v < 0 { // NaN or negative (counter resets)
		return 0
	}
	return min(v, 1)
}
