// Package inventory defines what each agent reports about its host and the
// domains on it, for the decision engine's cluster model: the versioned
// schema (documented in docs/inventory.md), its exposition as info metrics
// and numeric gauges, and its CloudEvents form (bus.TypeInventory).
//
// It is pure Go so the server can decode inventories without cgo; reading
// libvirt is virt.Client.Inventory's job, handed in as a Source.
package inventory

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/exporters/scrape"
)

// SchemaVersion is the version of Inventory. It changes only when a field
// changes meaning or goes away; adding a field keeps it. It matches the
// suffix of bus.TypeInventory.
const SchemaVersion = "1"

// Inventory is one agent's view of its host, schema version 1.
type Inventory struct {
	SchemaVersion string    `json:"schema_version"`
	CollectedAt   time.Time `json:"collected_at"`
	Host          Host      `json:"host"`
	Domains       []Domain  `json:"domains"`
}

// Host is the hypervisor's capacity and the operator's allocation policy.
type Host struct {
	Hostname       string `json:"hostname"`
	Hypervisor     string `json:"hypervisor"` // libvirt driver type: QEMU, TEST
	LibvirtVersion string `json:"libvirt_version"`
	CPUModel       string `json:"cpu_model"`
	CPUMHz         uint64 `json:"cpu_mhz"`
	// CPUs is the number of logical CPUs (pCPUs) libvirt reports.
	CPUs        uint64 `json:"cpus"`
	NUMANodes   uint64 `json:"numa_nodes"`
	Sockets     uint64 `json:"sockets"`
	Cores       uint64 `json:"cores_per_socket"`
	Threads     uint64 `json:"threads_per_core"`
	MemoryBytes uint64 `json:"memory_bytes"`
	// DiskBytes is the size of the filesystem holding instance disks
	// (DiskPath); 0 when it could not be read.
	DiskBytes uint64 `json:"disk_bytes"`
	DiskPath  string `json:"disk_path"`
	// Allocation and Reserved come from the agent's configuration, as Nova's
	// cpu/ram/disk_allocation_ratio and reserved_host_* options do.
	Allocation AllocationRatios `json:"allocation_ratios"`
	Reserved   Reserved         `json:"reserved"`
}

// AllocationRatios are the overcommit factors: schedulable = (capacity -
// reserved) * ratio.
type AllocationRatios struct {
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
	Disk   float64 `json:"disk"`
}

// Reserved is the capacity kept for the host itself.
type Reserved struct {
	CPUs        uint64 `json:"cpus"`
	MemoryBytes uint64 `json:"memory_bytes"`
	DiskBytes   uint64 `json:"disk_bytes"`
}

// Domain is one defined or running domain.
type Domain struct {
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	State string `json:"state"` // running, blocked, paused, shutdown, shutoff, crashed, pmsuspended, nostate
	VCPUs uint64 `json:"vcpus"`
	// MemoryBytes is the maximum (boot) memory; CurrentMemoryBytes the balloon target.
	MemoryBytes        uint64   `json:"memory_bytes"`
	CurrentMemoryBytes uint64   `json:"current_memory_bytes"`
	Disks              []Disk   `json:"disks"`
	NICs               []NIC    `json:"nics"`
	Metadata           Metadata `json:"metadata"`
}

// Disk is one of a domain's disks.
type Disk struct {
	TargetDevice   string `json:"target_device"`
	Device         string `json:"device"` // disk, cdrom
	Bus            string `json:"bus"`
	Source         string `json:"source"` // file path, block device or pool/image
	SourceProtocol string `json:"source_protocol,omitempty"`
}

// NIC is one of a domain's network interfaces.
type NIC struct {
	MAC          string `json:"mac"`
	TargetDevice string `json:"target_device"`
	Source       string `json:"source"`
	Model        string `json:"model"`
}

// Metadata is what the cloud layer wrote into the domain (Nova metadata),
// empty strings when absent.
type Metadata struct {
	DisplayName     string `json:"display_name,omitempty"`
	ProjectID       string `json:"project_id,omitempty"`
	ProjectName     string `json:"project_name,omitempty"`
	UserID          string `json:"user_id,omitempty"`
	UserName        string `json:"user_name,omitempty"`
	Flavor          string `json:"flavor,omitempty"`
	FlavorVCPUs     uint64 `json:"flavor_vcpus,omitempty"`
	FlavorMemoryMiB uint64 `json:"flavor_memory_mib,omitempty"`
	FlavorDiskGiB   uint64 `json:"flavor_disk_gib,omitempty"`
}

// NewEvent wraps inv as a bus.TypeInventory event about its host.
func NewEvent(source string, inv *Inventory) (bus.Event, error) {
	return bus.NewEvent(source, bus.TypeInventory, inv.Host.Hostname, inv)
}

// Source returns the current inventory.
type Source func() (*Inventory, error)

var (
	hostInfoDesc = prometheus.NewDesc("ballast_inventory_host_info",
		"The agent's host; the value is 1. Labels carry the inventory schema version.",
		[]string{"schema_version", "hostname", "hypervisor", "libvirt_version", "cpu_model"}, nil)
	hostCPUsDesc = prometheus.NewDesc("ballast_inventory_host_cpus",
		"Logical CPUs of the host.", nil, nil)
	hostMemDesc = prometheus.NewDesc("ballast_inventory_host_memory_bytes",
		"Memory of the host.", nil, nil)
	hostDiskDesc = prometheus.NewDesc("ballast_inventory_host_disk_bytes",
		"Size of the filesystem holding instance disks.", []string{"path"}, nil)
	ratioDesc = prometheus.NewDesc("ballast_inventory_host_allocation_ratio",
		"Overcommit factor the operator allows (resource: cpu, memory, disk).", []string{"resource"}, nil)
	reservedDesc = prometheus.NewDesc("ballast_inventory_host_reserved",
		"Capacity kept for the host itself, in CPUs or bytes (resource: cpu, memory, disk).", []string{"resource"}, nil)

	domLabels      = []string{"uuid", "domain"}
	domainInfoDesc = prometheus.NewDesc("ballast_inventory_domain_info",
		"A domain on the host; the value is 1. Labels carry state and cloud metadata.",
		[]string{"schema_version", "uuid", "domain", "state", "display_name", "project_id", "project_name", "user_id", "flavor"}, nil)
	domainVCPUsDesc = prometheus.NewDesc("ballast_inventory_domain_vcpus",
		"vCPUs of the domain.", domLabels, nil)
	domainMemDesc = prometheus.NewDesc("ballast_inventory_domain_memory_bytes",
		"Maximum memory of the domain.", domLabels, nil)
	domainFlavorDiskDesc = prometheus.NewDesc("ballast_inventory_domain_flavor_disk_bytes",
		"Root disk size of the domain's flavor, when the cloud recorded one.", domLabels, nil)
	diskInfoDesc = prometheus.NewDesc("ballast_inventory_domain_disk_info",
		"A disk of a domain; the value is 1.", []string{"uuid", "domain", "target_device", "device", "bus", "source", "source_protocol"}, nil)
	nicInfoDesc = prometheus.NewDesc("ballast_inventory_domain_nic_info",
		"A network interface of a domain; the value is 1.", []string{"uuid", "domain", "mac_address", "target_device", "source", "model"}, nil)
)

// Collector exposes the inventory as metrics.
type Collector struct {
	source Source
	logger *slog.Logger
	labels *labelCache
}

var _ scrape.Collector = (*Collector)(nil)

// New returns a collector over source.
func New(source Source, logger *slog.Logger) (*Collector, error) {
	if source == nil {
		return nil, fmt.Errorf("inventory collector: no source")
	}
	return &Collector{source: source, logger: logger, labels: newLabelCache()}, nil
}

// Update sends the current inventory.
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	inv, err := c.source()
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	c.labels.emit(ch, inv)
	return nil
}

// Emit sends inv as metrics.
func Emit(ch chan<- prometheus.Metric, inv *Inventory) {
	newLabelCache().emit(ch, inv)
}

// labelCache keeps each domain's label sets between scrapes while the
// domain's description (everything but its numbers) stays the same: at
// 1000 domains the inventory is 6000 series whose labels rarely change.
type labelCache struct {
	domains scrape.LabelCache[*domainLabels] // by UUID
}

// domainLabels are one domain's label sets and the description they were
// built from.
type domainLabels struct {
	from         Domain
	schema       string
	domain, info []*dto.LabelPair
	disks, nics  [][]*dto.LabelPair
}

func newLabelCache() *labelCache { return &labelCache{} }

func (c *labelCache) emit(ch chan<- prometheus.Metric, inv *Inventory) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	h := inv.Host
	gauge(hostInfoDesc, 1, inv.SchemaVersion, h.Hostname, h.Hypervisor, h.LibvirtVersion, h.CPUModel)
	gauge(hostCPUsDesc, float64(h.CPUs))
	gauge(hostMemDesc, float64(h.MemoryBytes))
	if h.DiskPath != "" {
		gauge(hostDiskDesc, float64(h.DiskBytes), h.DiskPath)
	}
	gauge(ratioDesc, h.Allocation.CPU, "cpu")
	gauge(ratioDesc, h.Allocation.Memory, "memory")
	gauge(ratioDesc, h.Allocation.Disk, "disk")
	gauge(reservedDesc, float64(h.Reserved.CPUs), "cpu")
	gauge(reservedDesc, float64(h.Reserved.MemoryBytes), "memory")
	gauge(reservedDesc, float64(h.Reserved.DiskBytes), "disk")
	labels := c.labelsOf(inv)
	out := scrape.NewSender(ch)
	for i := range inv.Domains {
		d, l := &inv.Domains[i], labels[i]
		out.Gauge(domainInfoDesc, 1, l.info)
		out.Gauge(domainVCPUsDesc, float64(d.VCPUs), l.domain)
		out.Gauge(domainMemDesc, float64(d.MemoryBytes), l.domain)
		if d.Metadata.FlavorDiskGiB > 0 {
			out.Gauge(domainFlavorDiskDesc, float64(d.Metadata.FlavorDiskGiB<<30), l.domain)
		}
		for _, k := range l.disks {
			out.Gauge(diskInfoDesc, 1, k)
		}
		for _, n := range l.nics {
			out.Gauge(nicInfoDesc, 1, n)
		}
	}
}

// labelsOf returns the label sets of inv's domains, index for index,
// building those whose description changed and forgetting domains gone.
func (c *labelCache) labelsOf(inv *Inventory) []*domainLabels {
	return c.domains.Sync(len(inv.Domains),
		func(i int) string { return inv.Domains[i].UUID },
		func(i int, l *domainLabels) bool {
			return l.schema == inv.SchemaVersion && sameLabels(&l.from, &inv.Domains[i])
		},
		func(i int) *domainLabels { return newDomainLabels(inv.SchemaVersion, &inv.Domains[i]) })
}

func newDomainLabels(schema string, d *Domain) *domainLabels {
	m := d.Metadata
	uuid, name := scrape.Pair("uuid", d.UUID), scrape.Pair("domain", d.Name)
	l := &domainLabels{from: *d, schema: schema, domain: scrape.Labels(uuid, name)}
	l.from.Disks, l.from.NICs = slices.Clone(d.Disks), slices.Clone(d.NICs)
	l.info = scrape.Labels(scrape.Pair("schema_version", schema), uuid, name, scrape.Pair("state", d.State),
		scrape.Pair("display_name", m.DisplayName), scrape.Pair("project_id", m.ProjectID), scrape.Pair("project_name", m.ProjectName),
		scrape.Pair("user_id", m.UserID), scrape.Pair("flavor", m.Flavor))
	for _, k := range d.Disks {
		l.disks = append(l.disks, scrape.Labels(uuid, name, scrape.Pair("target_device", k.TargetDevice), scrape.Pair("device", k.Device),
			scrape.Pair("bus", k.Bus), scrape.Pair("source", k.Source), scrape.Pair("source_protocol", k.SourceProtocol)))
	}
	for _, n := range d.NICs {
		l.nics = append(l.nics, scrape.Labels(uuid, name, scrape.Pair("mac_address", n.MAC), scrape.Pair("target_device", n.TargetDevice),
			scrape.Pair("source", n.Source), scrape.Pair("model", n.Model)))
	}
	return l
}

// sameLabels tells whether a and b give the same label values: the
// numbers (vCPUs, memory, flavor sizes) are not labels.
func sameLabels(a, b *Domain) bool {
	return a.UUID == b.UUID && a.Name == b.Name && a.State == b.State &&
		a.Metadata.DisplayName == b.Metadata.DisplayName && a.Metadata.ProjectID == b.Metadata.ProjectID &&
		a.Metadata.ProjectName == b.Metadata.ProjectName && a.Metadata.UserID == b.Metadata.UserID &&
		a.Metadata.Flavor == b.Metadata.Flavor && slices.Equal(a.Disks, b.Disks) && slices.Equal(a.NICs, b.NICs)
}

// FormatVersion renders libvirt's packed version number (major*1e6 +
// minor*1e3 + release) as major.minor.release.
func FormatVersion(v uint32) string {
	return strconv.Itoa(int(v/1000000)) + "." + strconv.Itoa(int(v/1000%1000)) + "." + strconv.Itoa(int(v%1000))
}
