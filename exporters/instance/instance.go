// Package instance is the libvirt collector: per-domain CPU, vCPU, memory,
// disk and interface counters, state, and migration job progress, under the
// names of the maintained inovex libvirt exporter so its dashboards work,
// with every series labelled by domain name and uuid.
//
// It asks libvirtd for everything in one GetAllDomainStats call per scrape.
// Drivers that leave that call's groups empty (the test driver returns only
// state) are filled per domain from the older single-domain calls. It must
// survive libvirtd restarts (libvirt_up, reconnect through virt.Client) and
// domains vanishing mid-scrape (they are left out, never fail the scrape).
//
// At 1000 domains a scrape is 30 000 series: label sets are built once per
// domain description and kept (labels.go), values are read fresh each
// scrape.
package instance

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

const ns = "libvirt"

var (
	domLabels  = []string{"domain", "uuid"}
	devLabels  = []string{"domain", "uuid", "target_device"}
	vcpuLabels = []string{"domain", "uuid", "vcpu"}

	upDesc      = prometheus.NewDesc(ns+"_up", "Whether libvirt answered on this scrape (1) or not (0).", nil, nil)
	domainsDesc = prometheus.NewDesc(ns+"_domains", "Number of domains libvirt reported.", nil, nil)

	stateDesc    = prometheus.NewDesc(ns+"_domain_info_state", "Code of the domain state.", []string{"domain", "uuid", "state_desc"}, nil)
	maxMemDesc   = desc("domain_info", "maximum_memory_bytes", "Maximum allowed memory of the domain, in bytes.", domLabels)
	memDesc      = desc("domain_info", "memory_usage_bytes", "Memory usage of the domain, in bytes.", domLabels)
	nrVCPUDesc   = desc("domain_info", "virtual_cpus", "Number of virtual CPUs for the domain.", domLabels)
	cpuTimeDesc  = desc("domain_info", "cpu_time_seconds_total", "Amount of CPU time used by the domain, in seconds.", domLabels)
	infoDesc     = prometheus.NewDesc(ns+"_domain_info", "Metadata labels for the domain.", []string{"domain", "uuid", "os_type", "os_type_arch", "os_type_machine"}, nil)
	openstackDsc = prometheus.NewDesc(ns+"_domain_openstack_info", "OpenStack Metadata labels for the domain.",
		[]string{"domain", "uuid", "instance_name", "instance_id", "flavor_name", "user_name", "user_id", "project_name", "project_id"}, nil)

	swapInDesc     = desc("domain_memory_stats", "swap_in_bytes", "Memory swapped in for this domain (the total amount of data read from swap space).", domLabels)
	swapOutDesc    = desc("domain_memory_stats", "swap_out_bytes", "Memory swapped out for this domain (the total amount of memory written out to swap space).", domLabels)
	unusedDesc     = desc("domain_memory_stats", "unused_bytes", "Memory unused by the domain.", domLabels)
	availableDesc  = desc("domain_memory_stats", "available_bytes", "Memory available to the domain.", domLabels)
	usableDesc     = desc("domain_memory_stats", "usable_bytes", "Memory usable by the domain (corresponds to 'Available' in /proc/meminfo).", domLabels)
	rssDesc        = desc("domain_memory_stats", "rss_bytes", "Resident Set Size of the process running the domain.", domLabels)
	balloonDesc    = desc("domain_memory_stats", "actual_balloon_bytes", "Current balloon value (in bytes).", domLabels)
	majorFaultDesc = desc("domain_memory_stats", "major_fault_total", "Page faults that needed disk IO to service.", domLabels)
	minorFaultDesc = desc("domain_memory_stats", "minor_fault_total", "Page faults serviced without disk IO.", domLabels)
	usedPctDesc    = desc("domain_memory_stats", "used_percent", "The amount of memory in percent, that used by domain.", domLabels)

	blockInfoDesc = prometheus.NewDesc(ns+"_domain_block_stats_info", "Metadata information on block devices.",
		[]string{"domain", "uuid", "disk_type", "target_bus", "driver_name", "driver_type", "driver_cache", "driver_discard", "source_file", "source_protocol", "target_device", "serial"}, nil)
	rdBytesDesc    = desc("domain_block_stats", "read_bytes_total", "Number of bytes read from a block device, in bytes.", devLabels)
	rdReqDesc      = desc("domain_block_stats", "read_requests_total", "Number of read requests from a block device.", devLabels)
	wrBytesDesc    = desc("domain_block_stats", "write_bytes_total", "Number of bytes written from a block device, in bytes.", devLabels)
	wrReqDesc      = desc("domain_block_stats", "write_requests_total", "Number of write requests from a block device.", devLabels)
	rdTimeDesc     = desc("domain_block_stats", "read_time_seconds_total", "Total time spent on reads from a block device, in seconds.", devLabels)
	wrTimeDesc     = desc("domain_block_stats", "write_time_seconds_total", "Total time spent on writes on a block device, in seconds.", devLabels)
	flReqDesc      = desc("domain_block_stats", "flush_requests_total", "Total flush requests from a block device.", devLabels)
	flTimeDesc     = desc("domain_block_stats", "flush_time_seconds_total", "Total time in seconds spent on cache flushing to a block device.", devLabels)
	capacityDesc   = desc("domain_block_stats", "capacity_bytes", "Logical size in bytes of the block device backing image.", devLabels)
	allocationDesc = desc("domain_block_stats", "allocation_bytes", "Highest allocated extent in bytes of the block device backing image.", devLabels)

	ifaceInfoDesc = prometheus.NewDesc(ns+"_domain_interface_stats_info", "Metadata on network interfaces.",
		[]string{"domain", "uuid", "interface_type", "source_bridge", "target_device", "mac_address", "model_type", "mtu_size"}, nil)
	rxBytesDesc = desc("domain_interface_stats", "receive_bytes_total", "Number of bytes received on a network interface, in bytes.", devLabels)
	rxPktsDesc  = desc("domain_interface_stats", "receive_packets_total", "Number of packets received on a network interface.", devLabels)
	rxErrsDesc  = desc("domain_interface_stats", "receive_errors_total", "Number of packet receive errors on a network interface.", devLabels)
	rxDropDesc  = desc("domain_interface_stats", "receive_drops_total", "Number of packet receive drops on a network interface.", devLabels)
	txBytesDesc = desc("domain_interface_stats", "transmit_bytes_total", "Number of bytes transmitted on a network interface, in bytes.", devLabels)
	txPktsDesc  = desc("domain_interface_stats", "transmit_packets_total", "Number of packets transmitted on a network interface.", devLabels)
	txErrsDesc  = desc("domain_interface_stats", "transmit_errors_total", "Number of packet transmit errors on a network interface.", devLabels)
	txDropDesc  = desc("domain_interface_stats", "transmit_drops_total", "Number of packet transmit drops on a network interface.", devLabels)

	vcpuCurDesc   = desc("domain_vcpu", "current", "Number of current online vCPUs.", domLabels)
	vcpuMaxDesc   = desc("domain_vcpu", "maximum", "Number of maximum online vCPUs.", domLabels)
	vcpuStateDesc = desc("domain_vcpu", "state", "State of the vCPU (0 offline, 1 running, 2 blocked).", vcpuLabels)
	vcpuTimeDesc  = desc("domain_vcpu", "time_seconds_total", "Time spent by the virtual CPU.", vcpuLabels)
	vcpuWaitDesc  = desc("domain_vcpu", "wait_seconds_total", "Time the vCPU wants to run, but the host scheduler has something else running ahead of it.", vcpuLabels)
	vcpuDelayDesc = desc("domain_vcpu", "delay_seconds_total", "Time the vCPU spent waiting in the queue instead of running. Exposed to the VM as steal time.", vcpuLabels)

	jobTypeDesc          = desc("domain_job_info", "type", "Code of the domain job type (0 none, 1 bounded, 2 unbounded).", domLabels)
	jobElapsedDesc       = desc("domain_job_info", "time_elapsed_seconds", "Time elapsed since the start of the domain job.", domLabels)
	jobRemainingDesc     = desc("domain_job_info", "time_remaining_seconds", "Time remaining until the end of the domain job.", domLabels)
	jobDataTotalDesc     = desc("domain_job_info", "data_total_bytes", "Data total of the domain job.", domLabels)
	jobDataProcessedDesc = desc("domain_job_info", "data_processed_bytes", "Data processed of the domain job.", domLabels)
	jobDataRemainingDesc = desc("domain_job_info", "data_remaining_bytes", "Data remaining of the domain job.", domLabels)
	jobMemTotalDesc      = desc("domain_job_info", "memory_total_bytes", "Memory total of the domain job.", domLabels)
	jobMemProcessedDesc  = desc("domain_job_info", "memory_processed_bytes", "Memory processed of the domain job.", domLabels)
	jobMemRemainingDesc  = desc("domain_job_info", "memory_remaining_bytes", "Memory remaining of the domain job.", domLabels)
	jobMemDirtyRateDesc  = prometheus.NewDesc("ballast_libvirt_domain_job_memory_dirty_rate_pages_per_second",
		"Rate the guest dirties memory during a migration, in pages per second.", domLabels, nil)
)

func desc(sub, name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(ns, sub, name), help, labels, nil)
}

// statsTypes are the groups asked of GetAllDomainStats.
const statsTypes = libvirt.DOMAIN_STATS_STATE | libvirt.DOMAIN_STATS_CPU_TOTAL | libvirt.DOMAIN_STATS_BALLOON |
	libvirt.DOMAIN_STATS_VCPU | libvirt.DOMAIN_STATS_INTERFACE | libvirt.DOMAIN_STATS_BLOCK

// Deps are the collector's outside inputs.
type Deps struct {
	// Client is the shared libvirt connection (required).
	Client *virt.Client
}

// Collector reports libvirt domains.
type Collector struct {
	client *virt.Client
	logger *slog.Logger
	// noJobStats is set once the driver says it has no job statistics, so
	// the test driver is not asked again on every scrape for every domain.
	noJobStats atomic.Bool
	// afterStats runs between the bulk statistics call and the per-domain
	// calls; tests use it to destroy a domain mid-scrape.
	afterStats func(conn *libvirt.Connect)

	labels scrape.LabelCache[*domainLabels] // by UUID
}

var _ scrape.Collector = (*Collector)(nil)

// New returns an instance collector over deps.Client.
func New(deps Deps, logger *slog.Logger) (*Collector, error) {
	if deps.Client == nil {
		return nil, fmt.Errorf("instance collector: no libvirt client")
	}
	return &Collector{client: deps.Client, logger: logger}, nil
}

// Update sends libvirt_up and, when libvirt answers, every domain's metrics.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	return scrape.ReportUp(ch, upDesc, c.update(ch))
}

func (c *Collector) update(ch chan<- prometheus.Metric) error {
	conn, err := c.client.Conn()
	if err != nil {
		return err
	}
	stats, err := virt.ReadDomainStats(conn, statsTypes, libvirt.CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
	if err != nil {
		c.client.Check(conn, err)
		return fmt.Errorf("get domain stats: %w", err)
	}
	defer stats.Close()
	descs, err := c.client.Describe(stats)
	if err != nil {
		c.client.Check(conn, err)
		return err
	}
	if c.afterStats != nil {
		c.afterStats(conn)
	}
	labels := c.labelsOf(stats, descs)
	// Sent in name order, every family arrives sorted, and Gather's sort of
	// 1000-series families has nothing left to do.
	order := make([]int, 0, len(descs))
	for i, x := range descs {
		if x == nil {
			c.logger.Debug("Domain vanished during scrape", "uuid", stats.Domains[i].UUID)
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(descs[a].Name, descs[b].Name) })
	// The per-domain calls run a few domains at a time, chunk by chunk;
	// each chunk is sent as soon as it is read, while later ones are read.
	reads, chunks, wait := c.readAll(stats, descs, order)
	defer wait() // before stats.Close
	out := scrape.NewSender(ch)
	reported := 0
	for k, done := range chunks {
		<-done
		for _, i := range chunk(order, k) {
			r := reads[i]
			if r.err != nil {
				c.client.Check(conn, r.err)
				return r.err
			}
			if r.ok {
				emit(out, labels[i], &stats.Domains[i], descs[i], r.job)
				reported++
			}
		}
	}
	out.Gauge(domainsDesc, float64(reported), nil)
	return nil
}

const (
	// readWorkers is how many domains are read at once. The calls are
	// independent; on a qemu host each is an RPC to libvirtd, which serves
	// five at a time per client by default (max_client_requests).
	readWorkers = 4
	// readChunk is how many domains a worker reads before they are sent.
	readChunk = 32
)

// read is what the per-domain calls returned for one domain.
type read struct {
	ok  bool // false: the domain vanished, nothing of it is sent
	job *libvirt.DomainJobInfo
	err error
}

// chunk returns the k-th chunk of order.
func chunk(order []int, k int) []int {
	return order[k*readChunk : min((k+1)*readChunk, len(order))]
}

// readAll starts the per-domain calls for the domains in order, in chunks
// read by a few workers, and returns where the results go, one channel per
// chunk that is closed when the chunk is read, and a wait for the workers.
// After the first failure that is not a vanished domain the remaining
// chunks are closed unread.
func (c *Collector) readAll(stats *virt.StatsList, descs []*domxml.Domain, order []int) ([]read, []chan struct{}, func()) {
	reads := make([]read, len(descs))
	chunks := make([]chan struct{}, (len(order)+readChunk-1)/readChunk)
	for k := range chunks {
		chunks[k] = make(chan struct{})
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(readWorkers, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1)) - 1; k < len(chunks); k = int(next.Add(1)) - 1 {
				for _, i := range chunk(order, k) {
					if failed.Load() {
						break
					}
					if reads[i] = c.domain(stats, i, descs[i]); reads[i].err != nil {
						failed.Store(true)
					}
				}
				close(chunks[k])
			}
		}()
	}
	return reads, chunks, wg.Wait
}

// domain makes the per-domain calls for domain i: the single-domain
// statistics the bulk call left out, and job statistics. A domain that
// vanished meanwhile reads as not ok and no error.
func (c *Collector) domain(stats *virt.StatsList, i int, x *domxml.Domain) read {
	s := &stats.Domains[i]
	active := s.State != nil && s.State.State != libvirt.DOMAIN_SHUTOFF && s.State.State != libvirt.DOMAIN_CRASHED
	if active && s.Cpu == nil {
		if err := stats.FillFromSingleCalls(i, x); err != nil {
			return vanished(c.logger, err)
		}
	}
	if !active || c.noJobStats.Load() {
		return read{ok: true}
	}
	job, err := stats.JobStats(i)
	switch {
	case err == nil:
		return read{ok: true, job: job}
	case virt.IsNoSupport(err):
		c.noJobStats.Store(true)
		return read{ok: true}
	}
	return vanished(c.logger, err)
}

// vanished turns "no such domain" into a skip and anything else into the
// scrape's error.
func vanished(logger *slog.Logger, err error) read {
	if virt.IsNoDomain(err) {
		logger.Debug("Domain vanished during scrape", "err", err)
		return read{}
	}
	return read{err: err}
}

const kib = 1024

// emit sends one domain's metrics from its statistics (libvirt units: KiB,
// nanoseconds), its XML and its label sets.
func emit(out *scrape.Sender, l *domainLabels, s *virt.DomainStats, x *domxml.Domain, job *libvirt.DomainJobInfo) {
	dom := l.domain
	out.Gauge(infoDesc, 1, l.info)
	if l.nova != nil {
		out.Gauge(openstackDsc, 1, l.nova)
	}
	if s.State != nil && s.State.StateSet {
		out.Gauge(stateDesc, float64(s.State.State), l.stateLabels(s.State.State))
	}
	out.Gauge(maxMemDesc, float64(x.MaxMemoryBytes), dom)
	out.Gauge(nrVCPUDesc, float64(x.CurrentVCPUs), dom)
	out.Gauge(vcpuCurDesc, float64(x.CurrentVCPUs), dom)
	out.Gauge(vcpuMaxDesc, float64(x.VCPUs), dom)
	if s.Cpu != nil && s.Cpu.TimeSet {
		out.Counter(cpuTimeDesc, float64(s.Cpu.Time)/1e9, dom)
	}
	if b := s.Balloon; b != nil {
		if b.CurrentSet {
			out.Gauge(memDesc, float64(b.Current)*kib, dom)
			out.Gauge(balloonDesc, float64(b.Current)*kib, dom)
		}
		for _, m := range [...]struct {
			set  bool
			d    *prometheus.Desc
			v    float64
			kind prometheus.ValueType
		}{
			{b.SwapInSet, swapInDesc, float64(b.SwapIn) * kib, prometheus.GaugeValue},
			{b.SwapOutSet, swapOutDesc, float64(b.SwapOut) * kib, prometheus.GaugeValue},
			{b.UnusedSet, unusedDesc, float64(b.Unused) * kib, prometheus.GaugeValue},
			{b.AvailableSet, availableDesc, float64(b.Available) * kib, prometheus.GaugeValue},
			{b.UsableSet, usableDesc, float64(b.Usable) * kib, prometheus.GaugeValue},
			{b.RssSet, rssDesc, float64(b.Rss) * kib, prometheus.GaugeValue},
			{b.MajorFaultSet, majorFaultDesc, float64(b.MajorFault), prometheus.CounterValue},
			{b.MinorFaultSet, minorFaultDesc, float64(b.MinorFault), prometheus.CounterValue},
		} {
			if m.set {
				out.Send(m.d, m.kind, m.v, dom)
			}
		}
		if b.AvailableSet && b.UsableSet && b.Available > 0 {
			out.Gauge(usedPctDesc, (float64(b.Available)-float64(b.Usable))/float64(b.Available)*100, dom)
		}
	}
	for i, v := range s.Vcpu {
		vl := l.vcpu(i)
		if v.StateSet {
			out.Gauge(vcpuStateDesc, float64(v.State), vl)
		}
		if v.TimeSet {
			out.Counter(vcpuTimeDesc, float64(v.Time)/1e9, vl)
		}
		if v.WaitSet {
			out.Counter(vcpuWaitDesc, float64(v.Wait)/1e9, vl)
		}
		if v.DelaySet {
			out.Counter(vcpuDelayDesc, float64(v.Delay)/1e9, vl)
		}
	}
	for _, k := range l.blockInfo {
		out.Gauge(blockInfoDesc, 1, k)
	}
	for i := range s.Block {
		b := &s.Block[i]
		if !b.NameSet {
			continue
		}
		dl := l.device(b.Name)
		for _, m := range [...]struct {
			set  bool
			d    *prometheus.Desc
			v    float64
			kind prometheus.ValueType
		}{
			{b.RdBytesSet, rdBytesDesc, float64(b.RdBytes), prometheus.CounterValue},
			{b.RdReqsSet, rdReqDesc, float64(b.RdReqs), prometheus.CounterValue},
			{b.WrBytesSet, wrBytesDesc, float64(b.WrBytes), prometheus.CounterValue},
			{b.WrReqsSet, wrReqDesc, float64(b.WrReqs), prometheus.CounterValue},
			{b.RdTimesSet, rdTimeDesc, float64(b.RdTimes) / 1e9, prometheus.CounterValue},
			{b.WrTimesSet, wrTimeDesc, float64(b.WrTimes) / 1e9, prometheus.CounterValue},
			{b.FlReqsSet, flReqDesc, float64(b.FlReqs), prometheus.CounterValue},
			{b.FlTimesSet, flTimeDesc, float64(b.FlTimes) / 1e9, prometheus.CounterValue},
			{b.CapacitySet, capacityDesc, float64(b.Capacity), prometheus.GaugeValue},
			{b.AllocationSet, allocationDesc, float64(b.Allocation), prometheus.GaugeValue},
		} {
			if m.set {
				out.Send(m.d, m.kind, m.v, dl)
			}
		}
	}
	for _, n := range l.ifaceInfo {
		out.Gauge(ifaceInfoDesc, 1, n)
	}
	for i := range s.Net {
		n := &s.Net[i]
		if !n.NameSet {
			continue
		}
		dl := l.device(n.Name)
		for _, m := range [...]struct {
			set bool
			d   *prometheus.Desc
			v   uint64
		}{
			{n.RxBytesSet, rxBytesDesc, n.RxBytes}, {n.RxPktsSet, rxPktsDesc, n.RxPkts},
			{n.RxErrsSet, rxErrsDesc, n.RxErrs}, {n.RxDropSet, rxDropDesc, n.RxDrop},
			{n.TxBytesSet, txBytesDesc, n.TxBytes}, {n.TxPktsSet, txPktsDesc, n.TxPkts},
			{n.TxErrsSet, txErrsDesc, n.TxErrs}, {n.TxDropSet, txDropDesc, n.TxDrop},
		} {
			if m.set {
				out.Counter(m.d, float64(m.v), dl)
			}
		}
	}
	if job != nil {
		out.Gauge(jobTypeDesc, float64(job.Type), dom)
		if job.Type != libvirt.DOMAIN_JOB_NONE {
			for _, m := range [...]struct {
				set bool
				d   *prometheus.Desc
				v   float64
			}{
				{job.TimeElapsedSet, jobElapsedDesc, float64(job.TimeElapsed) / 1e3},
				{job.TimeRemainingSet, jobRemainingDesc, float64(job.TimeRemaining) / 1e3},
				{job.DataTotalSet, jobDataTotalDesc, float64(job.DataTotal)},
				{job.DataProcessedSet, jobDataProcessedDesc, float64(job.DataProcessed)},
				{job.DataRemainingSet, jobDataRemainingDesc, float64(job.DataRemaining)},
				{job.MemTotalSet, jobMemTotalDesc, float64(job.MemTotal)},
				{job.MemProcessedSet, jobMemProcessedDesc, float64(job.MemProcessed)},
				{job.MemRemainingSet, jobMemRemainingDesc, float64(job.MemRemaining)},
				{job.MemDirtyRateSet, jobMemDirtyRateDesc, float64(job.MemDirtyRate)},
			} {
				if m.set {
					out.Gauge(m.d, m.v, dom)
				}
			}
		}
	}
}
