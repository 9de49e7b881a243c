// Package diskio is the disk_io_bandwidth collector: per-block-device
// counters from /proc/diskstats with node_exporter's exact names and units
// (so dashboard 1860 works), the device queue depth and in-flight requests
// from /sys/block, and the per-VM disk bandwidth limits (libvirt <iotune>
// and <blkiotune>) the decision engine needs to tell an IO-saturated host
// from a throttled noisy neighbour.
//
// It reads files and domain descriptions handed to it; it must not open a
// libvirt connection itself (the wiring passes a DomainSource).
package diskio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/blockdevice"

	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/scrape"
)

// DefaultDeviceExclude is node_exporter's default: partitions, RAM disks,
// loop and floppy devices.
const DefaultDeviceExclude = `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`

// sectorSize is the unit of /proc/diskstats sector counts, whatever the
// device's real sector size (the kernel always reports 512-byte sectors).
const sectorSize = 512

// Config locates the files and filters devices.
type Config struct {
	ProcPath string // default /proc
	SysPath  string // default /sys
	// DeviceExclude drops matching device names (default DefaultDeviceExclude).
	DeviceExclude string
}

// DomainSource returns the domains whose disk limits are reported.
type DomainSource func() ([]*domxml.Domain, error)

// Deps are the collector's outside inputs.
type Deps struct {
	// Domains, when set, adds the per-VM limits; nil leaves them out (a
	// host without libvirt).
	Domains DomainSource
}

var (
	diskLabels = []string{"device"}

	readsCompletedDesc  = diskDesc("reads_completed_total", "The total number of reads completed successfully.")
	readsMergedDesc     = diskDesc("reads_merged_total", "The total number of reads merged.")
	readBytesDesc       = diskDesc("read_bytes_total", "The total number of bytes read successfully.")
	readTimeDesc        = diskDesc("read_time_seconds_total", "The total number of seconds spent by all reads.")
	writesCompletedDesc = diskDesc("writes_completed_total", "The total number of writes completed successfully.")
	writesMergedDesc    = diskDesc("writes_merged_total", "The number of writes merged.")
	writtenBytesDesc    = diskDesc("written_bytes_total", "The total number of bytes written successfully.")
	writeTimeDesc       = diskDesc("write_time_seconds_total", "This is the total number of seconds spent by all writes.")
	ioNowDesc           = diskDesc("io_now", "The number of I/Os currently in progress.")
	ioTimeDesc          = diskDesc("io_time_seconds_total", "Total seconds spent doing I/Os.")
	ioTimeWeightedDesc  = diskDesc("io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.")
	discardsDesc        = diskDesc("discards_completed_total", "The total number of discards completed successfully.")
	discardsMergedDesc  = diskDesc("discards_merged_total", "The total number of discards merged.")
	discardedSectors    = diskDesc("discarded_sectors_total", "The total number of sectors discarded successfully.")
	discardTimeDesc     = diskDesc("discard_time_seconds_total", "This is the total number of seconds spent by all discards.")
	flushDesc           = diskDesc("flush_requests_total", "The total number of flush requests completed successfully")
	flushTimeDesc       = diskDesc("flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.")

	infoDesc = prometheus.NewDesc("node_disk_info", "Info of /sys/block/<block_device>.",
		[]string{"device", "major", "minor", "path", "wwn", "model", "serial", "revision", "rotational"}, nil)

	queueDepthDesc = prometheus.NewDesc("ballast_disk_queue_requests",
		"Request queue depth the block layer allows (/sys/block/<device>/queue/nr_requests).", diskLabels, nil)
	inflightDesc = prometheus.NewDesc("ballast_disk_inflight_requests",
		"Requests issued to the device and not yet completed (/sys/block/<device>/inflight); saturation when near ballast_disk_queue_requests.",
		[]string{"device", "op"}, nil)
	sizeDesc = prometheus.NewDesc("ballast_disk_size_bytes",
		"Size of the block device.", diskLabels, nil)

	domainLabels    = []string{"domain", "uuid", "target_device", "op"}
	iotuneBytesDesc = prometheus.NewDesc("ballast_domain_disk_iotune_limit_bytes_per_second",
		"Bandwidth limit of a VM disk from libvirt <iotune> (op: total, read or write); absent when unlimited.", domainLabels, nil)
	iotuneOpsDesc = prometheus.NewDesc("ballast_domain_disk_iotune_limit_operations_per_second",
		"IOPS limit of a VM disk from libvirt <iotune> (op: total, read or write); absent when unlimited.", domainLabels, nil)
	blkioWeightDesc = prometheus.NewDesc("ballast_domain_blkio_weight",
		"Relative block IO weight of a VM from libvirt <blkiotune><weight>.", []string{"domain", "uuid"}, nil)
	blkioBytesDesc = prometheus.NewDesc("ballast_domain_blkio_device_limit_bytes_per_second",
		"Bandwidth limit of a VM on a host device from libvirt <blkiotune><device> (op: read or write).",
		[]string{"domain", "uuid", "path", "op"}, nil)
	blkioOpsDesc = prometheus.NewDesc("ballast_domain_blkio_device_limit_operations_per_second",
		"IOPS limit of a VM on a host device from libvirt <blkiotune><device> (op: read or write).",
		[]string{"domain", "uuid", "path", "op"}, nil)
)

func diskDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("node", "disk", name), help, diskLabels, nil)
}

// Collector reports block device IO and VM disk limits.
type Collector struct {
	fs      blockdevice.FS
	sysPath string
	exclude *regexp.Regexp
	domains DomainSource
	logger  *slog.Logger
}

var _ scrape.Collector = (*Collector)(nil)

// New validates cfg and returns a collector.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Collector, error) {
	if cfg.ProcPath == "" {
		cfg.ProcPath = "/proc"
	}
	if cfg.SysPath == "" {
		cfg.SysPath = "/sys"
	}
	if cfg.DeviceExclude == "" {
		cfg.DeviceExclude = DefaultDeviceExclude
	}
	exclude, err := regexp.Compile(cfg.DeviceExclude)
	if err != nil {
		return nil, fmt.Errorf("collector.diskio.device-exclude %q: %w", cfg.DeviceExclude, err)
	}
	fs, err := blockdevice.NewFS(cfg.ProcPath, cfg.SysPath)
	if err != nil {
		return nil, fmt.Errorf("path.procfs %q / path.sysfs %q: %w", cfg.ProcPath, cfg.SysPath, err)
	}
	return &Collector{fs: fs, sysPath: cfg.SysPath, exclude: exclude, domains: deps.Domains, logger: logger}, nil
}

// Update sends the host's disk metrics, then the VMs' limits. Either part
// failing fails the scrape but does not hide the other.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	var errs []error
	if err := c.updateDisks(ch); err != nil {
		errs = append(errs, err)
	}
	if c.domains != nil {
		if err := c.updateLimits(ch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Collector) updateDisks(ch chan<- prometheus.Metric) error {
	stats, err := c.fs.ProcDiskstats()
	if err != nil {
		return fmt.Errorf("read diskstats: %w", err)
	}
	for _, s := range stats {
		dev := s.DeviceName
		if c.exclude.MatchString(dev) {
			continue
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, dev)
		}
		counter(readsCompletedDesc, float64(s.ReadIOs))
		counter(readsMergedDesc, float64(s.ReadMerges))
		counter(readBytesDesc, float64(s.ReadSectors)*sectorSize)
		counter(readTimeDesc, float64(s.ReadTicks)*0.001)
		counter(writesCompletedDesc, float64(s.WriteIOs))
		counter(writesMergedDesc, float64(s.WriteMerges))
		counter(writtenBytesDesc, float64(s.WriteSectors)*sectorSize)
		counter(writeTimeDesc, float64(s.WriteTicks)*0.001)
		ch <- prometheus.MustNewConstMetric(ioNowDesc, prometheus.GaugeValue, float64(s.IOsInProgress), dev)
		counter(ioTimeDesc, float64(s.IOsTotalTicks)*0.001)
		counter(ioTimeWeightedDesc, float64(s.WeightedIOTicks)*0.001)
		if s.IoStatsCount >= 18 { // kernel 4.18+
			counter(discardsDesc, float64(s.DiscardIOs))
			counter(discardsMergedDesc, float64(s.DiscardMerges))
			counter(discardedSectors, float64(s.DiscardSectors))
			counter(discardTimeDesc, float64(s.DiscardTicks)*0.001)
		}
		if s.IoStatsCount >= 20 { // kernel 5.5+
			counter(flushDesc, float64(s.FlushRequestsCompleted))
			counter(flushTimeDesc, float64(s.TimeSpentFlushing)*0.001)
		}
		c.updateSys(ch, dev, s.MajorNumber, s.MinorNumber)
	}
	return nil
}

// updateSys adds what /sys/block knows of dev. Virtual devices lack some
// files; a missing file only leaves its metric out.
func (c *Collector) updateSys(ch chan<- prometheus.Metric, dev string, major, minor uint32) {
	dir := filepath.Join(c.sysPath, "block", dev)
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	gauge := func(d *prometheus.Desc, rel string, scale float64, extra ...string) {
		v, err := strconv.ParseFloat(read(rel), 64)
		if err == nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v*scale, append([]string{dev}, extra...)...)
		}
	}
	wwn := read("wwid")
	if wwn == "" {
		wwn = read("device/wwid")
	}
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, dev,
		strconv.FormatUint(uint64(major), 10), strconv.FormatUint(uint64(minor), 10),
		"", wwn, read("device/model"), read("device/serial"), read("device/rev"), read("queue/rotational"))
	gauge(queueDepthDesc, "queue/nr_requests", 1)
	gauge(sizeDesc, "size", sectorSize)
	if f := strings.Fields(read("inflight")); len(f) == 2 {
		for i, op := range []string{"read", "write"} {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, v, dev, op)
			}
		}
	}
}

func (c *Collector) updateLimits(ch chan<- prometheus.Metric) error {
	doms, err := c.domains()
	if err != nil {
		return fmt.Errorf("list domains for disk limits: %w", err)
	}
	nonZero := func(d *prometheus.Desc, v uint64, lv ...string) {
		if v != 0 {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), lv...)
		}
	}
	for _, d := range doms {
		for _, k := range d.Disks {
			t := k.IOTune
			nonZero(iotuneBytesDesc, t.TotalBytesSec, d.Name, d.UUID, k.TargetDevice, "total")
			nonZero(iotuneBytesDesc, t.ReadBytesSec, d.Name, d.UUID, k.TargetDevice, "read")
			nonZero(iotuneBytesDesc, t.WriteBytesSec, d.Name, d.UUID, k.TargetDevice, "write")
			nonZero(iotuneOpsDesc, t.TotalIOPSSec, d.Name, d.UUID, k.TargetDevice, "total")
			nonZero(iotuneOpsDesc, t.ReadIOPSSec, d.Name, d.UUID, k.TargetDevice, "read")
			nonZero(iotuneOpsDesc, t.WriteIOPSSec, d.Name, d.UUID, k.TargetDevice, "write")
		}
		nonZero(blkioWeightDesc, d.BlkioWeight, d.Name, d.UUID)
		for _, b := range d.BlkioDevices {
			nonZero(blkioBytesDesc, b.ReadBytesSec, d.Name, d.UUID, b.Path, "read")
			nonZero(blkioBytesDesc, b.WriteBytesSec, d.Name, d.UUID, b.Path, "write")
			nonZero(blkioOpsDesc, b.ReadIOPSSec, d.Name, d.UUID, b.Path, "read")
			nonZero(blkioOpsDesc, b.WriteIOPSSec, d.Name, d.UUID, b.Path, "write")
		}
	}
	return nil
}
