package model

import (
	"maps"
	"math"
	"slices"
	"strconv"
)

// EffectiveState returns the host state with the empty default applied.
func (h *Host) EffectiveState() HostState {
	if h.State == "" {
		return HostEnabled
	}
	return h.State
}

// EffectivePower returns the power state with the empty default applied.
func (h *Host) EffectivePower() PowerState {
	if h.PowerState == "" {
		return PowerOn
	}
	return h.PowerState
}

// Schedulable reports whether new instances may be placed on the host: it is
// enabled and powered on.
func (h *Host) Schedulable() bool {
	return h.EffectiveState() == HostEnabled && h.EffectivePower() == PowerOn
}

func ratio(r float64) float64 {
	if r <= 0 {
		return 1
	}
	return r
}

// Allocatable is what Placement lets instances allocate on a host:
// (capacity − reserved) × allocation ratio, per resource.
type Allocatable struct {
	VCPUs    float64
	MemoryMB float64
	DiskGB   float64
}

// Allocatable returns the host's allocatable resources.
func (h *Host) Allocatable() Allocatable {
	return Allocatable{
		VCPUs:    math.Max(0, float64(h.Capacity.VCPUs-h.Reserved.VCPUs)*ratio(h.AllocationRatio.VCPU)),
		MemoryMB: math.Max(0, float64(h.Capacity.MemoryMB-h.Reserved.MemoryMB)*ratio(h.AllocationRatio.Memory)),
		DiskGB:   math.Max(0, float64(h.Capacity.DiskGB-h.Reserved.DiskGB)*ratio(h.AllocationRatio.Disk)),
	}
}

// Movable reports whether optimisation may move the instance at all: it is
// not excluded or locked and is in a state Nova can migrate.
func (i *Instance) Movable() bool {
	if i.Metadata.Excluded || i.Metadata.Locked {
		return false
	}
	switch i.State {
	case InstanceActive, InstancePaused, InstanceSuspended, InstanceStopped, InstanceShutoff:
		return true
	}
	return false
}

// LiveMigratable reports whether the instance would move by live migration
// (running or paused) rather than cold migration.
func (i *Instance) LiveMigratable() bool {
	return i.State == InstanceActive || i.State == InstancePaused
}

// CPUCores returns the physical cores the instance keeps busy: its vCPUs times
// its measured CPU fraction (0 without usage).
func (i *Instance) CPUCores() float64 {
	if i.Usage == nil {
		return 0
	}
	return i.Usage.CPU * float64(i.Flavor.VCPUs)
}

// MemoryUsedMB returns measured resident memory, or the flavor's memory when
// nothing was measured (the safe assumption).
func (i *Instance) MemoryUsedMB() float64 {
	if i.Usage == nil || i.Usage.MemoryMB <= 0 {
		return float64(i.Flavor.MemoryMB)
	}
	return i.Usage.MemoryMB
}

// EffectiveReweight returns the OSD's reweight with the unset default of 1.
func (o *OSD) EffectiveReweight() float64 {
	if o.Reweight <= 0 && !o.In {
		return 0
	}
	if o.Reweight <= 0 || o.Reweight > 1 {
		return 1
	}
	return o.Reweight
}

// Bucket returns the name of the OSD's CRUSH bucket of the given type
// ("host", "rack", "root", …), applying the defaults for host and root.
func (o *OSD) Bucket(typ string) string {
	if v, ok := o.CrushLocation[typ]; ok && v != "" {
		return v
	}
	switch typ {
	case "host", "":
		return o.Host
	case "root":
		return "default"
	case "osd":
		return "osd." + itoa(o.ID)
	}
	return ""
}

// Up returns the PG's effective OSD list: Raw with its upmap items applied.
func (pg *PG) Up() []int {
	out := make([]int, len(pg.Raw))
	copy(out, pg.Raw)
	for _, it := range pg.UpmapItems {
		for k, o := range out {
			if o == it.From {
				out[k] = it.To
				break
			}
		}
	}
	return out
}

// EffectiveFailureDomain returns the pool's failure domain with its default.
func (p *Pool) EffectiveFailureDomain() string {
	if p.FailureDomain == "" {
		return "host"
	}
	return p.FailureDomain
}

// EffectiveRoot returns the pool's CRUSH root with its default.
func (p *Pool) EffectiveRoot() string {
	if p.Root == "" {
		return "default"
	}
	return p.Root
}

// Clone returns a deep copy of the cluster, so a strategy, a what-if apply or
// the simulator can change it without touching the caller's model.
func (c *Cluster) Clone() *Cluster {
	out := *c
	if c.Metrics != nil {
		m := *c.Metrics
		out.Metrics = &m
	}
	out.Hosts = make([]Host, len(c.Hosts))
	for i := range c.Hosts {
		out.Hosts[i] = c.Hosts[i].clone()
	}
	out.Instances = make([]Instance, len(c.Instances))
	for i := range c.Instances {
		out.Instances[i] = c.Instances[i].clone()
	}
	if c.Ceph != nil {
		ceph := Ceph{
			OSDs:  make([]OSD, len(c.Ceph.OSDs)),
			Pools: slices.Clone(c.Ceph.Pools),
			PGs:   make([]PG, len(c.Ceph.PGs)),
		}
		for i, o := range c.Ceph.OSDs {
			o.CrushLocation = maps.Clone(o.CrushLocation)
			ceph.OSDs[i] = o
		}
		for i, pg := range c.Ceph.PGs {
			pg.Raw = slices.Clone(pg.Raw)
			pg.UpmapItems = slices.Clone(pg.UpmapItems)
			ceph.PGs[i] = pg
		}
		out.Ceph = &ceph
	}
	return &out
}

func (h Host) clone() Host {
	h.Aggregates = slices.Clone(h.Aggregates)
	h.Labels = maps.Clone(h.Labels)
	if h.Usage != nil {
		u := *h.Usage
		h.Usage = &u
	}
	return h
}

func (i Instance) clone() Instance {
	i.Metadata.Extra = maps.Clone(i.Metadata.Extra)
	if i.Usage != nil {
		u := *i.Usage
		i.Usage = &u
	}
	if i.History != nil {
		hist := make(map[string]Series, len(i.History))
		for k, s := range i.History {
			s.Values = slices.Clone(s.Values)
			hist[k] = s
		}
		i.History = hist
	}
	return i
}

func itoa(v int) string { return strconv.Itoa(v) }
