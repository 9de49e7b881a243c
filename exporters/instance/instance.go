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
package instance

import (
	"fmt"
	"log/slog"
	"strconv"
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

	// stateText keeps the inovex exporter's state_desc values, which its
	// dashboards match on.
	stateText = map[libvirt.DomainState]string{
		libvirt.DOMAIN_NOSTATE:     "no state",
		libvirt.DOMAIN_RUNNING:     "the domain is running",
		libvirt.DOMAIN_BLOCKED:     "the domain is blocked on resource",
		libvirt.DOMAIN_PAUSED:      "the domain is paused by user",
		libvirt.DOMAIN_SHUTDOWN:    "the domain is being shut down",
		libvirt.DOMAIN_SHUTOFF:     "the domain is shut off",
		libvirt.DOMAIN_CRASHED:     "the domain is crashed",
		libvirt.DOMAIN_PMSUSPENDED: "the domain is suspended by guest power management",
	}
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
	stats, err := conn.GetAllDomainStats(nil, statsTypes, libvirt.CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
	if err != nil {
		c.client.Check(conn, err)
		return fmt.Errorf("get domain stats: %w", err)
	}
	defer func() {
		for i := range stats {
			_ = stats[i].Domain.Free()
		}
	}()
	descs, err := c.client.Domains()
	if err != nil {
		return err
	}
	byUUID := make(map[string]*domxml.Domain, len(descs))
	for _, d := range descs {
		byUUID[d.UUID] = d
	}
	if c.afterStats != nil {
		c.afterStats(conn)
	}
	reported := 0
	for i := range stats {
		ok, err := c.domain(ch, conn, &stats[i], byUUID)
		if err != nil {
			c.client.Check(conn, err)
			return err
		}
		if ok {
			reported++
		}
	}
	ch <- prometheus.MustNewConstMetric(domainsDesc, prometheus.GaugeValue, float64(reported))
	return nil
}

// domain sends one domain's metrics. It returns false, nil when the domain
// vanished before everything was read: nothing of it is sent then.
func (c *Collector) domain(ch chan<- prometheus.Metric, conn *libvirt.Connect, s *libvirt.DomainStats, byUUID map[string]*domxml.Domain) (bool, error) {
	uuid, err := s.Domain.GetUUIDString()
	if err != nil {
		return vanished(c.logger, err)
	}
	x := byUUID[uuid]
	if x == nil { // defined after the cached listing
		if x, err = virt.DomainXML(s.Domain); err != nil {
			return vanished(c.logger, err)
		}
	}
	active := s.State != nil && s.State.State != libvirt.DOMAIN_SHUTOFF && s.State.State != libvirt.DOMAIN_CRASHED
	if active && s.Cpu == nil {
		if err := fillFromSingleCalls(s, x); err != nil {
			return vanished(c.logger, err)
		}
	}
	var job *libvirt.DomainJobInfo
	if active && !c.noJobStats.Load() {
		job, err = s.Domain.GetJobStats(0)
		switch {
		case err == nil:
		case virt.IsNoSupport(err):
			c.noJobStats.Store(true)
			job = nil
		default:
			return vanished(c.logger, err)
		}
	}
	emit(ch, x.Name, uuid, s, x, job)
	return true, nil
}

// vanished turns "no such domain" into a skip and anything else into the
// scrape's error.
func vanished(logger *slog.Logger, err error) (bool, error) {
	if virt.IsNoDomain(err) {
		logger.Debug("Domain vanished during scrape", "err", err)
		return false, nil
	}
	return false, err
}

// fillFromSingleCalls fills the groups GetAllDomainStats left empty with the
// single-domain calls, in the same units (KiB, nanoseconds).
func fillFromSingleCalls(s *libvirt.DomainStats, x *domxml.Domain) error {
	d := s.Domain
	info, err := d.GetInfo()
	if err != nil {
		return err
	}
	s.Cpu = &libvirt.DomainStatsCPU{TimeSet: true, Time: info.CpuTime}
	s.Balloon = &libvirt.DomainStatsBalloon{CurrentSet: true, Current: info.Memory, MaximumSet: true, Maximum: info.MaxMem}
	mem, err := d.MemoryStats(uint32(libvirt.DOMAIN_MEMORY_STAT_NR), 0)
	if err != nil && !virt.IsNoSupport(err) {
		return err
	}
	b := s.Balloon
	fields := map[libvirt.DomainMemoryStatTags]struct {
		set *bool
		val *uint64
	}{
		libvirt.DOMAIN_MEMORY_STAT_SWAP_IN: {&b.SwapInSet, &b.SwapIn}, libvirt.DOMAIN_MEMORY_STAT_SWAP_OUT: {&b.SwapOutSet, &b.SwapOut},
		libvirt.DOMAIN_MEMORY_STAT_MAJOR_FAULT: {&b.MajorFaultSet, &b.MajorFault}, libvirt.DOMAIN_MEMORY_STAT_MINOR_FAULT: {&b.MinorFaultSet, &b.MinorFault},
		libvirt.DOMAIN_MEMORY_STAT_UNUSED: {&b.UnusedSet, &b.Unused}, libvirt.DOMAIN_MEMORY_STAT_AVAILABLE: {&b.AvailableSet, &b.Available},
		libvirt.DOMAIN_MEMORY_STAT_ACTUAL_BALLOON: {&b.CurrentSet, &b.Current}, libvirt.DOMAIN_MEMORY_STAT_RSS: {&b.RssSet, &b.Rss},
		libvirt.DOMAIN_MEMORY_STAT_USABLE: {&b.UsableSet, &b.Usable},
	}
	for _, m := range mem {
		if f, ok := fields[libvirt.DomainMemoryStatTags(m.Tag)]; ok {
			*f.set, *f.val = true, m.Val
		}
	}
	vcpus, err := d.GetVcpus()
	if err != nil && !virt.IsNoSupport(err) {
		return err
	}
	for _, v := range vcpus {
		s.Vcpu = append(s.Vcpu, libvirt.DomainStatsVcpu{StateSet: true, State: libvirt.VcpuState(v.State), TimeSet: true, Time: v.CpuTime})
	}
	for _, k := range x.Disks {
		if k.TargetDevice == "" {
			continue
		}
		st, err := d.BlockStats(k.TargetDevice)
		if err != nil {
			if virt.IsNoSupport(err) || virt.HasCode(err, libvirt.ERR_INVALID_ARG) || virt.HasCode(err, libvirt.ERR_OPERATION_INVALID) {
				continue // an empty cdrom drive has no statistics
			}
			return err
		}
		b := libvirt.DomainStatsBlock{NameSet: true, Name: k.TargetDevice,
			RdReqsSet: st.RdReqSet, RdReqs: uint64(st.RdReq), RdBytesSet: st.RdBytesSet, RdBytes: uint64(st.RdBytes),
			RdTimesSet: st.RdTotalTimesSet, RdTimes: uint64(st.RdTotalTimes),
			WrReqsSet: st.WrReqSet, WrReqs: uint64(st.WrReq), WrBytesSet: st.WrBytesSet, WrBytes: uint64(st.WrBytes),
			WrTimesSet: st.WrTotalTimesSet, WrTimes: uint64(st.WrTotalTimes),
			FlReqsSet: st.FlushReqSet, FlReqs: uint64(st.FlushReq), FlTimesSet: st.FlushTotalTimesSet, FlTimes: uint64(st.FlushTotalTimes)}
		if bi, err := d.GetBlockInfo(k.TargetDevice, 0); err == nil {
			b.CapacitySet, b.Capacity, b.AllocationSet, b.Allocation = true, bi.Capacity, true, bi.Allocation
		}
		s.Block = append(s.Block, b)
	}
	for _, n := range x.Interfaces {
		if n.TargetDevice == "" {
			continue
		}
		st, err := d.InterfaceStats(n.TargetDevice)
		if err != nil {
			if virt.IsNoSupport(err) || virt.HasCode(err, libvirt.ERR_INVALID_ARG) {
				continue
			}
			return err
		}
		s.Net = append(s.Net, libvirt.DomainStatsNet{NameSet: true, Name: n.TargetDevice,
			RxBytesSet: st.RxBytesSet, RxBytes: uint64(st.RxBytes), RxPktsSet: st.RxPacketsSet, RxPkts: uint64(st.RxPackets),
			RxErrsSet: st.RxErrsSet, RxErrs: uint64(st.RxErrs), RxDropSet: st.RxDropSet, RxDrop: uint64(st.RxDrop),
			TxBytesSet: st.TxBytesSet, TxBytes: uint64(st.TxBytes), TxPktsSet: st.TxPacketsSet, TxPkts: uint64(st.TxPackets),
			TxErrsSet: st.TxErrsSet, TxErrs: uint64(st.TxErrs), TxDropSet: st.TxDropSet, TxDrop: uint64(st.TxDrop)})
	}
	return nil
}

const kib = 1024

// emit sends one domain's metrics from its statistics (libvirt units: KiB,
// nanoseconds) and its XML.
func emit(ch chan<- prometheus.Metric, name, uuid string, s *libvirt.DomainStats, x *domxml.Domain, job *libvirt.DomainJobInfo) {
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name, uuid}, extra...)...)
	}
	counter := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{name, uuid}, extra...)...)
	}

	gauge(infoDesc, 1, x.OSType, x.Arch, x.Machine)
	if n := x.Nova; n != nil {
		gauge(openstackDsc, 1, n.Name, uuid, n.FlavorName, n.UserName, n.UserID, n.ProjectName, n.ProjectID)
	}
	if s.State != nil && s.State.StateSet {
		gauge(stateDesc, float64(s.State.State), stateText[s.State.State])
	}
	gauge(maxMemDesc, float64(x.MaxMemoryBytes))
	gauge(nrVCPUDesc, float64(x.CurrentVCPUs))
	gauge(vcpuCurDesc, float64(x.CurrentVCPUs))
	gauge(vcpuMaxDesc, float64(x.VCPUs))
	if s.Cpu != nil && s.Cpu.TimeSet {
		counter(cpuTimeDesc, float64(s.Cpu.Time)/1e9)
	}
	if b := s.Balloon; b != nil {
		if b.CurrentSet {
			gauge(memDesc, float64(b.Current)*kib)
			gauge(balloonDesc, float64(b.Current)*kib)
		}
		for _, m := range []struct {
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
				ch <- prometheus.MustNewConstMetric(m.d, m.kind, m.v, name, uuid)
			}
		}
		if b.AvailableSet && b.UsableSet && b.Available > 0 {
			gauge(usedPctDesc, (float64(b.Available)-float64(b.Usable))/float64(b.Available)*100)
		}
	}
	for i, v := range s.Vcpu {
		id := strconv.Itoa(i)
		if v.StateSet {
			gauge(vcpuStateDesc, float64(v.State), id)
		}
		if v.TimeSet {
			counter(vcpuTimeDesc, float64(v.Time)/1e9, id)
		}
		if v.WaitSet {
			counter(vcpuWaitDesc, float64(v.Wait)/1e9, id)
		}
		if v.DelaySet {
			counter(vcpuDelayDesc, float64(v.Delay)/1e9, id)
		}
	}
	for _, k := range x.Disks {
		gauge(blockInfoDesc, 1, k.Type, k.TargetBus, k.DriverName, k.DriverType, k.DriverCache, k.DriverDiscard, k.Source, k.SourceProtocol, k.TargetDevice, k.Serial)
	}
	for _, b := range s.Block {
		if !b.NameSet {
			continue
		}
		dev := b.Name
		for _, m := range []struct {
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
				ch <- prometheus.MustNewConstMetric(m.d, m.kind, m.v, name, uuid, dev)
			}
		}
	}
	for _, n := range x.Interfaces {
		mtu := ""
		if n.MTU > 0 {
			mtu = strconv.FormatUint(n.MTU, 10)
		}
		gauge(ifaceInfoDesc, 1, n.Type, n.SourceBridge, n.TargetDevice, n.MAC, n.ModelType, mtu)
	}
	for _, n := range s.Net {
		if !n.NameSet {
			continue
		}
		for _, m := range []struct {
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
				counter(m.d, float64(m.v), n.Name)
			}
		}
	}
	if job != nil {
		gauge(jobTypeDesc, float64(job.Type))
		if job.Type != libvirt.DOMAIN_JOB_NONE {
			for _, m := range []struct {
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
					gauge(m.d, m.v)
				}
			}
		}
	}
}
