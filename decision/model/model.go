// Package model owns the cluster model the decision engine plans on: compute
// hosts, instances (VMs) and Ceph OSDs, pools and placement groups, with the
// measured utilisation the strategies need.
//
// The model has a documented, versioned JSON form (see docs/decision.md and
// Read/Write) so that any cluster can be saved, planned offline and compared.
// Index builds the integer-id view the solver works on.
//
// This package holds data and its validation only: it does not read metrics,
// talk to infrastructure, or decide anything.
package model

import (
	"time"
)

// Version is the version of the JSON form written by Write and the only one
// Read accepts.
const Version = 1

// Cluster is one snapshot of the infrastructure a plan is computed for.
type Cluster struct {
	// Version is the JSON form's version; always Version when written.
	Version int `json:"version"`
	// Name labels the snapshot (free text).
	Name string `json:"name,omitempty"`
	// Source says where the snapshot came from: "inventory", "simulator",
	// "generated" or a file name.
	Source string `json:"source,omitempty"`
	// Timestamp is when the snapshot was taken.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Metrics describes how the measured usage was aggregated.
	Metrics *MetricWindow `json:"metrics,omitempty"`
	// Hosts are the compute nodes, each with a unique Name.
	Hosts []Host `json:"hosts"`
	// Instances are the VMs, each with a unique UUID and placed on a host.
	Instances []Instance `json:"instances"`
	// Ceph is the storage cluster, if any.
	Ceph *Ceph `json:"ceph,omitempty"`
}

// MetricWindow records the aggregation options used to fill Usage fields,
// the same options Watcher exposes on its strategies.
type MetricWindow struct {
	// PeriodSeconds is the look-back window.
	PeriodSeconds int `json:"period_s"`
	// GranularitySeconds is the step between aggregated points.
	GranularitySeconds int `json:"granularity_s"`
	// Aggregate is mean, max, min or pNN (a percentile, e.g. p95).
	Aggregate string `json:"aggregate"`
}

// HostState is the schedulability of a host.
type HostState string

// Host states.
const (
	HostEnabled     HostState = "enabled"
	HostDisabled    HostState = "disabled"
	HostMaintenance HostState = "maintenance"
)

// PowerState is the power state of a host.
type PowerState string

// Power states.
const (
	PowerOn  PowerState = "on"
	PowerOff PowerState = "off"
)

// Capacity is the physical size of a host.
type Capacity struct {
	VCPUs      int     `json:"vcpus"`
	MemoryMB   int64   `json:"memory_mb"`
	DiskGB     int64   `json:"disk_gb"`
	NetMbps    float64 `json:"net_mbps,omitempty"`
	DiskIOMBps float64 `json:"disk_io_mbps,omitempty"`
}

// AllocationRatio is Nova's overcommit ratio per resource. A zero field means
// 1.0.
type AllocationRatio struct {
	VCPU   float64 `json:"vcpu,omitempty"`
	Memory float64 `json:"memory,omitempty"`
	Disk   float64 `json:"disk,omitempty"`
}

// Reserved is the part of a host kept for the hypervisor itself.
type Reserved struct {
	VCPUs    int   `json:"vcpus,omitempty"`
	MemoryMB int64 `json:"memory_mb,omitempty"`
	DiskGB   int64 `json:"disk_gb,omitempty"`
}

// Host is one compute node.
type Host struct {
	// Name is the hypervisor hostname, unique in the cluster.
	Name string `json:"name"`
	// UUID is the compute node id, if the inventory has one.
	UUID            string          `json:"uuid,omitempty"`
	Capacity        Capacity        `json:"capacity"`
	AllocationRatio AllocationRatio `json:"allocation_ratio,omitzero"`
	Reserved        Reserved        `json:"reserved,omitzero"`
	// AvailabilityZone is the host's zone; empty means the default zone.
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// Aggregates are the host aggregates the host belongs to.
	Aggregates []string          `json:"aggregates,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// State is enabled (the default when empty), disabled or maintenance.
	State          HostState `json:"state,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	// PowerState is on (the default when empty) or off.
	PowerState PowerState `json:"power_state,omitempty"`
	// Usage is the measured load of the host itself, if known.
	Usage *HostUsage `json:"usage,omitempty"`
}

// HostUsage is a host's measured load over the metric window.
type HostUsage struct {
	// CPU is the busy fraction of the physical CPUs, 0..1.
	CPU float64 `json:"cpu"`
	// MemoryMB is memory in use (total minus available).
	MemoryMB float64 `json:"memory_mb"`
	// DiskIOMBps and NetMbps are throughput.
	DiskIOMBps float64 `json:"disk_io_mbps,omitempty"`
	NetMbps    float64 `json:"net_mbps,omitempty"`
	// DiskIOUtil is the busy fraction of the busiest local disk, 0..1.
	DiskIOUtil float64 `json:"disk_io_util,omitempty"`
	// CPUSteal is the fraction of vCPU time instances spent waiting for a
	// physical CPU, 0..1: the CPU-contention signal.
	CPUSteal float64 `json:"cpu_steal,omitempty"`
	// PowerWatts is the measured power draw.
	PowerWatts float64 `json:"power_watts,omitempty"`
}

// InstanceState is a VM's lifecycle state (Nova's vm_state vocabulary).
type InstanceState string

// Instance states. Only active and paused instances can be live-migrated;
// stopped, shutoff and suspended ones are cold-migrated; the others are not
// moved.
const (
	InstanceActive    InstanceState = "active"
	InstancePaused    InstanceState = "paused"
	InstanceSuspended InstanceState = "suspended"
	InstanceStopped   InstanceState = "stopped"
	InstanceShutoff   InstanceState = "shutoff"
	InstanceBuilding  InstanceState = "building"
	InstanceError     InstanceState = "error"
	InstanceMigrating InstanceState = "migrating"
)

// Flavor is the size an instance was booted with.
type Flavor struct {
	Name     string `json:"name,omitempty"`
	VCPUs    int    `json:"vcpus"`
	MemoryMB int64  `json:"memory_mb"`
	DiskGB   int64  `json:"disk_gb"`
}

// InstanceMetadata carries the placement rules of an instance.
type InstanceMetadata struct {
	// AntiAffinityGroup names a server group whose members must run on
	// pairwise distinct hosts.
	AntiAffinityGroup string `json:"anti_affinity_group,omitempty"`
	// PinnedAZ keeps the instance in this availability zone.
	PinnedAZ string `json:"pinned_az,omitempty"`
	// Excluded removes the instance from optimisation (Watcher's
	// watcher-exclude); it is never moved.
	Excluded bool `json:"excluded,omitempty"`
	// Locked is Nova's lock: the instance is never moved either.
	Locked bool `json:"locked,omitempty"`
	// Priority is high, low or empty (normal); the noisy-neighbour strategy
	// protects high-priority instances from low-priority aggressors.
	Priority string `json:"priority,omitempty"`
	// Extra is free-form metadata kept for display.
	Extra map[string]string `json:"extra,omitempty"`
}

// InstanceUsage is a VM's measured load over the metric window.
type InstanceUsage struct {
	// CPU is the busy fraction of the instance's vCPUs, 0..1.
	CPU float64 `json:"cpu"`
	// MemoryMB is resident memory.
	MemoryMB float64 `json:"memory_mb"`
	// DiskIOMBps and NetMbps are throughput.
	DiskIOMBps float64 `json:"disk_io_mbps,omitempty"`
	NetMbps    float64 `json:"net_mbps,omitempty"`
	// DirtyRateMBps is the rate at which the guest dirties memory, which
	// decides how long a live migration takes.
	DirtyRateMBps float64 `json:"dirty_rate_mbps,omitempty"`
	// CPUSteal is the fraction of the instance's vCPU time spent waiting
	// for a physical CPU, 0..1 (it suffers contention when high).
	CPUSteal float64 `json:"cpu_steal,omitempty"`
}

// Series is a regularly sampled history of one metric.
type Series struct {
	Start           time.Time `json:"start"`
	IntervalSeconds int       `json:"interval_s"`
	Values          []float64 `json:"values"`
}

// Instance is one VM.
type Instance struct {
	UUID      string           `json:"uuid"`
	Name      string           `json:"name,omitempty"`
	Host      string           `json:"host"`
	ProjectID string           `json:"project_id,omitempty"`
	Flavor    Flavor           `json:"flavor"`
	State     InstanceState    `json:"state"`
	Metadata  InstanceMetadata `json:"metadata,omitzero"`
	Usage     *InstanceUsage   `json:"usage,omitempty"`
	// History holds utilisation series per metric name (cpu, memory_mb,
	// disk_io_mbps, net_mbps), for display and for what-if replays.
	History map[string]Series `json:"history,omitempty"`
}

// Ceph is the storage side of the model: OSDs, pools and the PG mapping.
type Ceph struct {
	OSDs  []OSD  `json:"osds"`
	Pools []Pool `json:"pools"`
	PGs   []PG   `json:"pgs"`
}

// OSD is one object storage daemon.
type OSD struct {
	ID int `json:"id"`
	// Host is the CRUSH host bucket the OSD sits under.
	Host string `json:"host"`
	// CrushLocation maps bucket types to names, e.g. {"root":"default",
	// "rack":"r1","host":"node1"}; "host" defaults to Host and "root" to
	// "default".
	CrushLocation map[string]string `json:"crush_location,omitempty"`
	DeviceClass   string            `json:"device_class,omitempty"`
	// CrushWeight is the CRUSH weight (by convention the size in TiB).
	CrushWeight float64 `json:"crush_weight"`
	// Reweight is the override weight in 0..1 (1 when unset).
	Reweight   float64 `json:"reweight"`
	BytesUsed  int64   `json:"bytes_used"`
	BytesTotal int64   `json:"bytes_total"`
	Up         bool    `json:"up"`
	In         bool    `json:"in"`
}

// Pool is one replicated pool.
type Pool struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Size is the replica count.
	Size  int `json:"size"`
	PGNum int `json:"pg_num"`
	// FailureDomain is the CRUSH bucket type replicas must not share
	// (default host).
	FailureDomain string `json:"failure_domain,omitempty"`
	// Root is the CRUSH root the pool maps into (default "default").
	Root string `json:"root,omitempty"`
	// DeviceClass restricts the pool to OSDs of that class, if set.
	DeviceClass string `json:"device_class,omitempty"`
}

// UpmapItem is one pg-upmap-items exception: replace OSD From by OSD To.
type UpmapItem struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// PG is one placement group.
type PG struct {
	// ID is the pgid, e.g. "1.1f".
	ID   string `json:"pgid"`
	Pool int    `json:"pool"`
	// Raw is the CRUSH-computed OSD list before upmap exceptions.
	Raw []int `json:"raw"`
	// UpmapItems are the pg-upmap-items exceptions currently set.
	UpmapItems []UpmapItem `json:"upmap_items,omitempty"`
	Bytes      int64       `json:"bytes,omitempty"`
	Objects    int64       `json:"objects,omitempty"`
}

// HostInventory is one host's inventory as an agent reports it: the host and
// the instances on it. It is the data of io.ballast.inventory.v1 events
// (collector/bus.TypeInventory) the decision engine consumes.
type HostInventory struct {
	Host      Host       `json:"host"`
	Instances []Instance `json:"instances"`
}
