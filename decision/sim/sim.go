// Package sim is the simulated cluster: the embedded default when no
// infrastructure is configured, and the what-if engine. It owns a synthetic
// cluster (default 40 hosts, 400 instances; decision/model/synth) whose
// instances' CPU load follows the PlanetLab traces (traces/, one day of
// 5-minute samples from CloudSim), deterministic for a seed.
//
// Run publishes, every interval, the metrics real exporters would: the
// node_exporter host series (node_cpu_seconds_total per CPU and mode,
// node_memory_*, node_disk_*) with instance, host and fqdn labels; the
// libvirt-exporter domain series (libvirt_domain_info_*, block and
// interface stats, libvirt_domain_openstack_info) with domain, uuid and host
// labels; and the Ceilometer names Watcher's Prometheus datasource queries
// (ceilometer_cpu in ns, ceilometer_memory_usage in MB, resource=<uuid>). It
// goes through a bus.SamplePublisher, the normal ingest path; if the
// publisher also publishes events, inventory events follow every change.
//
// Snapshot returns the model; Migrate, SetHostState, SetPowerState and
// Execute change the simulated cluster (a migration takes time proportional
// to the instance's memory), so an applier can run plans end to end.
package sim

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
)

//go:embed traces/planetlab_20110303_cpu_util.csv
var planetlab []byte

// TraceStep is the sampling interval of the embedded traces.
const TraceStep = 5 * time.Minute

// Config shapes the simulation. Zero values get the defaults noted.
type Config struct {
	// Hosts and Instances size the cluster (defaults 40 and 400).
	Hosts     int `yaml:"hosts"`
	Instances int `yaml:"instances"`
	// Seed makes the cluster and the trace assignment reproducible.
	Seed int64 `yaml:"seed"`
	// Zones is the number of availability zones (default 1).
	Zones int `yaml:"zones"`
	// CephHosts adds a Ceph cluster of that many storage hosts (default 0).
	CephHosts int `yaml:"ceph_hosts"`
	// Interval is how often metrics are published (default 15s).
	Interval time.Duration `yaml:"interval"`
	// TraceSpeed is trace time per wall-clock time (default 1: a day of
	// traces takes a day; 96 plays it in 15 minutes).
	TraceSpeed float64 `yaml:"trace_speed"`
	// LoadScale multiplies the traces' utilisation (default 2, which puts
	// the mean near the 28 % of Watcher's synthetic benchmark).
	LoadScale float64 `yaml:"load_scale"`
	// MigrationMBps is the migration bandwidth (default 1000): a migration
	// takes MigrationSetup plus memory / bandwidth, divided by
	// MigrationSpeedup (default 1).
	MigrationMBps    float64       `yaml:"migration_mbps"`
	MigrationSetup   time.Duration `yaml:"migration_setup"`
	MigrationSpeedup float64       `yaml:"migration_speedup"`
	// SnapshotWindow is the trace time Snapshot averages CPU over
	// (default 1h).
	SnapshotWindow time.Duration `yaml:"snapshot_window"`
	// StateFile keeps what plans change (placement, host and power states,
	// Ceph upmaps and reweights) across restarts: written after every change
	// and applied at start when it was written for the same cluster
	// settings ("": in memory only; the server uses <data>/sim-state.json).
	StateFile string `yaml:"state_file"`
	// Traces replaces the embedded PlanetLab CSV (vm,t000,…; percent).
	Traces io.Reader `yaml:"-"`
	// Now and Sleep replace the clock, for tests.
	Now   func() time.Time                                 `yaml:"-"`
	Sleep func(ctx context.Context, d time.Duration) error `yaml:"-"`
}

func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = 40
	}
	if c.Instances == 0 {
		c.Instances = 10 * c.Hosts
	}
	if c.Zones == 0 {
		c.Zones = 1
	}
	if c.Interval == 0 {
		c.Interval = 15 * time.Second
	}
	if c.TraceSpeed == 0 {
		c.TraceSpeed = 1
	}
	if c.LoadScale == 0 {
		c.LoadScale = 2
	}
	if c.MigrationMBps == 0 {
		c.MigrationMBps = 1000
	}
	if c.MigrationSetup == 0 {
		c.MigrationSetup = 2 * time.Second
	}
	if c.MigrationSpeedup == 0 {
		c.MigrationSpeedup = 1
	}
	if c.SnapshotWindow == 0 {
		c.SnapshotWindow = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	switch {
	case c.Hosts < 0 || c.Instances < 0 || c.Zones < 0 || c.CephHosts < 0:
		return c, errors.New("sim: hosts, instances, zones and ceph_hosts must not be negative")
	case c.Interval < 0 || c.TraceSpeed < 0 || c.LoadScale < 0 || c.MigrationMBps < 0 || c.MigrationSpeedup < 0:
		return c, errors.New("sim: interval, trace_speed, load_scale and migration settings must be positive")
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// vm is an instance's simulated state.
type vm struct {
	trace   int
	memFrac float64 // resident memory / flavor memory
	ioMBps  float64
	netMbps float64
	// counters
	cpuSeconds, readBytes, writeBytes, rxBytes, txBytes, delaySeconds float64
	steal                                                             float64
}

type hostCounters struct {
	idle, user, steal          []float64 // per CPU, seconds
	readBytes, writtenBytes    float64
	ioSeconds                  float64
	cpuBusy, memUsedMB, ioUtil float64 // last tick, for Snapshot
}

type migration struct {
	to    int
	until time.Time
}

// Sim is the simulated cluster.
type Sim struct {
	cfg    Config
	pub    bus.SamplePublisher
	events bus.EventPublisher
	logger *slog.Logger

	traces [][]float64

	mu        sync.Mutex
	cluster   *model.Cluster
	hostIdx   map[string]int
	instIdx   map[string]int
	vms       []vm
	hosts     []hostCounters
	inflight  map[int]migration
	start     time.Time
	last      time.Time
	changed   bool
	published int
	// lastSeries are the series of the previous batch, by hash.
	lastSeries map[uint64]labels.Labels
}

// New builds the simulated cluster. publisher may be nil (Snapshot and the
// actuation methods still work; Run then only advances time).
func New(cfg Config, publisher bus.SamplePublisher, logger *slog.Logger) (*Sim, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	src := cfg.Traces
	if src == nil {
		src = bytes.NewReader(planetlab)
	}
	traces, err := readTraces(src)
	if err != nil {
		return nil, fmt.Errorf("sim: traces: %w", err)
	}
	c, err := synth.Generate(synth.Config{Hosts: cfg.Hosts, Instances: cfg.Instances, Seed: cfg.Seed, Zones: cfg.Zones,
		Ceph: synth.CephConfig{OSDHosts: cfg.CephHosts}})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	c.Name = fmt.Sprintf("simulated-%dx%d-seed%d", cfg.Hosts, cfg.Instances, cfg.Seed)
	c.Source = "simulator"
	s := &Sim{cfg: cfg, pub: publisher, logger: logger.With("component", "decision/sim"), traces: traces,
		cluster: c, hostIdx: map[string]int{}, instIdx: map[string]int{}, inflight: map[int]migration{}}
	if ep, ok := publisher.(bus.EventPublisher); ok {
		s.events = ep
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x73696d))
	perm := rng.Perm(len(traces))
	s.vms = make([]vm, len(c.Instances))
	for i := range c.Instances {
		in := &c.Instances[i]
		s.instIdx[in.UUID] = i
		v := &s.vms[i]
		v.trace = perm[i%len(perm)]
		v.memFrac = in.Usage.MemoryMB / float64(in.Flavor.MemoryMB)
		v.ioMBps = in.Usage.DiskIOMBps
		v.netMbps = in.Usage.NetMbps
	}
	s.hosts = make([]hostCounters, len(c.Hosts))
	for h := range c.Hosts {
		s.hostIdx[c.Hosts[h].Name] = h
		n := c.Hosts[h].Capacity.VCPUs
		s.hosts[h] = hostCounters{idle: make([]float64, n), user: make([]float64, n), steal: make([]float64, n)}
	}
	if err := s.loadState(); err != nil {
		return nil, err
	}
	s.start = cfg.Now()
	s.last = s.start
	s.advance(s.start, 0)
	return s, nil
}

func readTraces(r io.Reader) ([][]float64, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 || len(rows[0]) < 3 {
		return nil, errors.New("want a header and at least one trace of two samples")
	}
	out := make([][]float64, 0, len(rows)-1)
	for i, row := range rows[1:] {
		t := make([]float64, 0, len(row)-1)
		for k, cell := range row[1:] {
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil || v < 0 || v > 100 {
				return nil, fmt.Errorf("row %d column %d: %q is not a percentage", i+2, k+2, cell)
			}
			t = append(t, v/100)
		}
		out = append(out, t)
	}
	return out, nil
}

// traceAt is the utilisation of trace k at trace time tau, interpolated
// between samples and wrapping around the day.
func (s *Sim) traceAt(k int, tau time.Duration) float64 {
	t := s.traces[k]
	x := float64(tau) / float64(TraceStep)
	x = math.Mod(x, float64(len(t)))
	if x < 0 {
		x += float64(len(t))
	}
	i := int(x)
	f := x - float64(i)
	return t[i]*(1-f) + t[(i+1)%len(t)]*f
}

// traceMean is the mean utilisation of trace k over [tau−w, tau].
func (s *Sim) traceMean(k int, tau, w time.Duration) float64 {
	const points = 12
	var sum float64
	for p := 0; p < points; p++ {
		sum += s.traceAt(k, tau-w+time.Duration(p)*w/(points-1))
	}
	return sum / points
}

// tau is the trace time at wall time now.
func (s *Sim) tau(now time.Time) time.Duration {
	return time.Duration(float64(now.Sub(s.start)) * s.cfg.TraceSpeed)
}

// demand is an instance's CPU demand (cores) at trace time tau.
func (s *Sim) demand(i int, tau time.Duration) float64 {
	in := &s.cluster.Instances[i]
	if in.State != model.InstanceActive {
		return 0
	}
	return math.Min(1, s.cfg.LoadScale*s.traceAt(s.vms[i].trace, tau)) * float64(in.Flavor.VCPUs)
}

// advance integrates the counters from s.last to now (dt seconds).
func (s *Sim) advance(now time.Time, dt float64) {
	tau := s.tau(now)
	demand := make([]float64, len(s.cluster.Hosts))
	on := make([][]int, len(s.cluster.Hosts))
	for i := range s.cluster.Instances {
		h := s.hostIdx[s.cluster.Instances[i].Host]
		demand[h] += s.demand(i, tau)
		on[h] = append(on[h], i)
	}
	for h := range s.cluster.Hosts {
		host := &s.cluster.Hosts[h]
		hc := &s.hosts[h]
		cores := float64(host.Capacity.VCPUs)
		share := 1.0
		if demand[h] > cores {
			share = cores / demand[h]
		}
		busy := math.Min(demand[h], cores)
		hc.cpuBusy = busy / cores
		// Spread the busy time evenly over the CPUs, as the kernel roughly
		// does; steal is what the instances wanted and did not get.
		for k := range hc.idle {
			hc.user[k] += dt * busy / cores
			hc.idle[k] += dt * (1 - busy/cores)
			hc.steal[k] += dt * (1 - share) * busy / cores
		}
		var mem, io float64
		for _, i := range on[h] {
			v := &s.vms[i]
			in := &s.cluster.Instances[i]
			d := s.demand(i, tau)
			v.cpuSeconds += dt * d * share
			v.delaySeconds += dt * d * (1 - share)
			v.steal = 1 - share
			if in.State == model.InstanceActive {
				v.readBytes += dt * v.ioMBps * 0.6 * (1 << 20)
				v.writeBytes += dt * v.ioMBps * 0.4 * (1 << 20)
				v.rxBytes += dt * v.netMbps / 8 * 0.5 * 1e6
				v.txBytes += dt * v.netMbps / 8 * 0.5 * 1e6
				io += v.ioMBps
			}
			mem += v.memFrac * float64(in.Flavor.MemoryMB)
		}
		// Memory of instances migrating in is already copied there.
		for i, m := range s.inflight {
			if m.to == h {
				mem += s.vms[i].memFrac * float64(s.cluster.Instances[i].Flavor.MemoryMB)
			}
		}
		hc.memUsedMB = mem + 2048
		hc.readBytes += dt * io * 0.6 * (1 << 20)
		hc.writtenBytes += dt * io * 0.4 * (1 << 20)
		if host.Capacity.DiskIOMBps > 0 {
			hc.ioUtil = math.Min(1, io/host.Capacity.DiskIOMBps)
		}
		hc.ioSeconds += dt * hc.ioUtil
	}
	s.last = now
}

// Run publishes metrics every interval until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	s.Tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Tick(ctx)
		}
	}
}

// Tick advances the simulation to the clock's now and publishes once (Run
// calls it every interval; tests and what-if replays call it directly).
func (s *Sim) Tick(ctx context.Context) {
	s.mu.Lock()
	now := s.cfg.Now()
	s.advance(now, now.Sub(s.last).Seconds())
	batch := s.batch(now)
	var events []bus.Event
	if s.events != nil && (s.changed || s.published%20 == 0) {
		events = s.inventoryEvents()
		s.changed = false
	}
	s.published++
	s.mu.Unlock()
	if s.pub != nil {
		if err := s.pub.PublishSamples(ctx, batch); err != nil && ctx.Err() == nil {
			s.logger.Warn("Publish samples failed", "err", err, "series", len(batch.Series))
		}
	}
	if len(events) > 0 {
		if err := s.events.PublishEvents(ctx, events...); err != nil && ctx.Err() == nil {
			s.logger.Warn("Publish inventory failed", "err", err)
		}
	}
}

func (s *Sim) inventoryEvents() []bus.Event {
	snap := s.snapshot()
	var out []bus.Event
	byHost := map[string][]model.Instance{}
	for _, in := range snap.Instances {
		byHost[in.Host] = append(byHost[in.Host], in)
	}
	for _, h := range snap.Hosts {
		e, err := bus.NewEvent("ballast-sim", bus.TypeInventory, h.Name, model.HostInventory{Host: h, Instances: byHost[h.Name]})
		if err != nil {
			s.logger.Warn("Build inventory event failed", "err", err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// Snapshot returns the cluster now, with usage measured as an agent would
// over the snapshot window (CPU averaged over it, the rest current).
func (s *Sim) Snapshot() *model.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

func (s *Sim) snapshot() *model.Cluster {
	c := s.cluster.Clone()
	now := s.last
	tau := s.tau(now)
	c.Timestamp = now
	c.Metrics = &model.MetricWindow{PeriodSeconds: int(s.cfg.SnapshotWindow / time.Second), GranularitySeconds: int(TraceStep / time.Second), Aggregate: "mean"}
	for i := range c.Instances {
		in := &c.Instances[i]
		v := &s.vms[i]
		cpu := 0.0
		if in.State == model.InstanceActive {
			cpu = math.Min(1, s.cfg.LoadScale*s.traceMean(v.trace, tau, s.cfg.SnapshotWindow))
		}
		in.Usage = &model.InstanceUsage{
			CPU:           round4(cpu * (1 - v.steal)),
			MemoryMB:      math.Round(v.memFrac * float64(in.Flavor.MemoryMB)),
			DiskIOMBps:    in.Usage.DiskIOMBps,
			NetMbps:       in.Usage.NetMbps,
			DirtyRateMBps: round4(20 * cpu),
			CPUSteal:      round4(v.steal),
		}
		if _, ok := s.inflight[i]; ok {
			in.State = model.InstanceMigrating
		}
	}
	for h := range c.Hosts {
		hc := &s.hosts[h]
		c.Hosts[h].Usage = &model.HostUsage{
			CPU:        round4(hc.cpuBusy),
			MemoryMB:   math.Round(hc.memUsedMB),
			DiskIOUtil: round4(hc.ioUtil),
			PowerWatts: math.Round(synth.PowerWatts(hc.cpuBusy, c.Hosts[h].Capacity.VCPUs)),
		}
		if c.Hosts[h].EffectivePower() == model.PowerOff {
			c.Hosts[h].Usage = &model.HostUsage{}
		}
	}
	return c
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
