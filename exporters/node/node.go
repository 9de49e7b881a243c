// Package node is the host CPU and memory collector, with node_exporter's
// names (node_cpu_seconds_total, node_memory_*_bytes) so Watcher-style host
// queries and dashboard 1860 work on the Ballast agent alone.
//
// It reads /proc through github.com/prometheus/procfs and must stay small:
// operators who want every host metric run node_exporter beside it.
package node

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/ballast-cloud/ballast/exporters/scrape"
)

// Config locates the proc filesystem.
type Config struct {
	// ProcPath is the mount point of proc (default /proc).
	ProcPath string
}

var (
	cpuDesc = prometheus.NewDesc("node_cpu_seconds_total",
		"Seconds the CPUs spent in each mode.", []string{"cpu", "mode"}, nil)
	cpuGuestDesc = prometheus.NewDesc("node_cpu_guest_seconds_total",
		"Seconds the CPUs spent in guests (VMs) for each mode.", []string{"cpu", "mode"}, nil)
	memTotalDesc = prometheus.NewDesc("node_memory_MemTotal_bytes",
		"Memory information field MemTotal_bytes.", nil, nil)
	memFreeDesc = prometheus.NewDesc("node_memory_MemFree_bytes",
		"Memory information field MemFree_bytes.", nil, nil)
	memAvailableDesc = prometheus.NewDesc("node_memory_MemAvailable_bytes",
		"Memory information field MemAvailable_bytes.", nil, nil)
	memBuffersDesc = prometheus.NewDesc("node_memory_Buffers_bytes",
		"Memory information field Buffers_bytes.", nil, nil)
	memCachedDesc = prometheus.NewDesc("node_memory_Cached_bytes",
		"Memory information field Cached_bytes.", nil, nil)
	swapTotalDesc = prometheus.NewDesc("node_memory_SwapTotal_bytes",
		"Memory information field SwapTotal_bytes.", nil, nil)
	swapFreeDesc = prometheus.NewDesc("node_memory_SwapFree_bytes",
		"Memory information field SwapFree_bytes.", nil, nil)
)

// Collector reports CPU time per mode and the main memory figures.
type Collector struct {
	fs     procfs.FS
	logger *slog.Logger
}

var _ scrape.Collector = (*Collector)(nil)

// New returns a node collector reading cfg.ProcPath.
func New(cfg Config, logger *slog.Logger) (*Collector, error) {
	if cfg.ProcPath == "" {
		cfg.ProcPath = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(cfg.ProcPath)
	if err != nil {
		return nil, fmt.Errorf("path.procfs %q: %w", cfg.ProcPath, err)
	}
	return &Collector{fs: fs, logger: logger}, nil
}

// Update sends CPU and memory metrics. CPU and memory are read
// independently: one unreadable file still lets the other report.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	var firstErr error
	if err := c.updateCPU(ch); err != nil {
		firstErr = err
	}
	if err := c.updateMemory(ch); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

func (c *Collector) updateCPU(ch chan<- prometheus.Metric) error {
	st, err := c.fs.Stat()
	if err != nil {
		return fmt.Errorf("read stat: %w", err)
	}
	for id, s := range st.CPU {
		cpu := strconv.FormatInt(id, 10)
		// The kernel also counts guest time in user and nice; node_exporter leaves
		// it there and reports guest time apart, and so do we.
		for _, m := range []struct {
			mode string
			v    float64
		}{
			{"user", s.User}, {"nice", s.Nice}, {"system", s.System}, {"idle", s.Idle},
			{"iowait", s.Iowait}, {"irq", s.IRQ}, {"softirq", s.SoftIRQ}, {"steal", s.Steal},
		} {
			ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, m.v, cpu, m.mode)
		}
		ch <- prometheus.MustNewConstMetric(cpuGuestDesc, prometheus.CounterValue, s.Guest, cpu, "user")
		ch <- prometheus.MustNewConstMetric(cpuGuestDesc, prometheus.CounterValue, s.GuestNice, cpu, "nice")
	}
	return nil
}

func (c *Collector) updateMemory(ch chan<- prometheus.Metric) error {
	mi, err := c.fs.Meminfo()
	if err != nil {
		return fmt.Errorf("read meminfo: %w", err)
	}
	for _, m := range []struct {
		desc *prometheus.Desc
		v    *uint64
	}{
		{memTotalDesc, mi.MemTotalBytes}, {memFreeDesc, mi.MemFreeBytes}, {memAvailableDesc, mi.MemAvailableBytes},
		{memBuffersDesc, mi.BuffersBytes}, {memCachedDesc, mi.CachedBytes},
		{swapTotalDesc, mi.SwapTotalBytes}, {swapFreeDesc, mi.SwapFreeBytes},
	} {
		if m.v != nil {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, float64(*m.v))
		}
	}
	return nil
}
