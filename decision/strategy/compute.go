package strategy

import (
	"fmt"
	"math"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/bounds"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/scoring"
)

// Resource names of a compute problem.
const (
	AllocVCPU   = "alloc_vcpu"   // flavor vCPUs, milli-vCPU; capacity (cores − reserved) × ratio
	AllocMemory = "alloc_memory" // flavor memory, MB
	AllocDisk   = "alloc_disk"   // flavor disk, GB (only when hosts declare local disk)
	CPU         = "cpu"          // measured busy cores, milli-cores
	Memory      = "memory"       // measured resident memory, MB
	DiskIO      = "disk_io"      // measured disk throughput, 10 kB/s
	Net         = "net"          // measured network throughput, 100 kb/s
)

// ComputeOptions choose the resources that constrain a compute problem and
// the objective's weights. A measured resource is included when its cap is
// positive; its capacity is cap × the host's physical size.
type ComputeOptions struct {
	// Allocation adds the flavor allocations as hard resources, transient
	// because Nova holds them on both hosts during a migration.
	Allocation bool
	// CPUCap, MemoryCap, DiskIOCap and NetCap add the measured resources.
	CPUCap, MemoryCap, DiskIOCap, NetCap float64
	// Balance weighs the variance of utilisation per resource name.
	Balance map[string]float64
	// Pack rewards full hosts per resource name (consolidation).
	Pack map[string]float64
	// Safety sets, per resource name, a utilisation above which load cost
	// accrues (weighted by LoadWeight per unit).
	Safety     map[string]float64
	LoadWeight int64
	// FixedCost is charged per host running instances.
	FixedCost int64
	// MoveWeight scales the per-instance migration cost (milliseconds of
	// predicted migration time).
	MoveWeight int64
	// MaxMoves bounds the migrations (0: unbounded).
	MaxMoves int
	// Evacuate marks hosts that must end empty.
	Evacuate func(host int) bool
	// Closed marks hosts that may not receive instances besides those
	// that are not schedulable (disabled, maintenance, powered off).
	Closed func(host int) bool
	// Movable, if set, further restricts which instances may move.
	Movable func(instance int) bool
	// Scorers provide the migration-cost engine (optional).
	Scorers *scoring.Registry
	// ColdOnly migrates every instance cold (live migration disabled).
	ColdOnly bool
}

// Compute is a compute cluster mapped onto the optimisation core: hosts are
// machines, instances are processes, anti-affinity groups are services with
// a machine conflict, availability zones are locations.
type Compute struct {
	Index   *model.Index
	Problem *optimize.Problem
	// Names are the resource names in problem order.
	Names []string
	// Physical is each host's physical size per resource (for reporting
	// utilisation), host-major.
	Physical []float64
	// Seconds is each instance's predicted migration time.
	Seconds  []float64
	coldOnly bool
	res      map[string]int
}

// Resource returns the problem index of the named resource.
func (c *Compute) Resource(name string) (int, bool) {
	r, ok := c.res[name]
	return r, ok
}

// NewCompute maps ix onto a Problem.
func NewCompute(ix *model.Index, o ComputeOptions) (*Compute, error) {
	c := &Compute{Index: ix, res: map[string]int{}, coldOnly: o.ColdOnly}
	cl := ix.Cluster
	hasDisk := false
	for i := range cl.Hosts {
		if cl.Hosts[i].Capacity.DiskGB > 0 {
			hasDisk = true
		}
	}
	type resDef struct {
		name      string
		transient bool
		capFn     func(h *model.Host) float64 // capacity in problem units
		physFn    func(h *model.Host) float64 // physical size in problem units
		demFn     func(in *model.Instance) float64
	}
	var defs []resDef
	if o.Allocation {
		defs = append(defs,
			resDef{AllocVCPU, true, func(h *model.Host) float64 { return h.Allocatable().VCPUs * 1000 },
				func(h *model.Host) float64 { return float64(h.Capacity.VCPUs) * 1000 },
				func(in *model.Instance) float64 { return float64(in.Flavor.VCPUs) * 1000 }},
			resDef{AllocMemory, true, func(h *model.Host) float64 { return h.Allocatable().MemoryMB },
				func(h *model.Host) float64 { return float64(h.Capacity.MemoryMB) },
				func(in *model.Instance) float64 { return float64(in.Flavor.MemoryMB) }})
		if hasDisk {
			defs = append(defs, resDef{AllocDisk, true, func(h *model.Host) float64 {
				if h.Capacity.DiskGB == 0 {
					return math.MaxInt32 // shared storage: no local disk limit
				}
				return h.Allocatable().DiskGB
			}, func(h *model.Host) float64 { return float64(max(h.Capacity.DiskGB, 1)) },
				func(in *model.Instance) float64 { return float64(in.Flavor.DiskGB) }})
		}
	}
	measured := func(name string, capFrac float64, transient bool, phys func(h *model.Host) float64, dem func(in *model.Instance) float64) {
		if capFrac > 0 {
			defs = append(defs, resDef{name, transient, func(h *model.Host) float64 { return capFrac * phys(h) }, phys, dem})
		}
	}
	measured(CPU, o.CPUCap, false, func(h *model.Host) float64 { return float64(h.Capacity.VCPUs) * 1000 },
		func(in *model.Instance) float64 {
			if in.Usage == nil {
				return float64(in.Flavor.VCPUs) * 1000 // unknown: assume busy
			}
			return in.CPUCores() * 1000
		})
	measured(Memory, o.MemoryCap, true, func(h *model.Host) float64 { return float64(h.Capacity.MemoryMB) },
		func(in *model.Instance) float64 { return in.MemoryUsedMB() })
	measured(DiskIO, o.DiskIOCap, false, func(h *model.Host) float64 { return h.Capacity.DiskIOMBps * 100 },
		func(in *model.Instance) float64 {
			if in.Usage == nil {
				return 0
			}
			return in.Usage.DiskIOMBps * 100
		})
	measured(Net, o.NetCap, false, func(h *model.Host) float64 { return h.Capacity.NetMbps * 10 },
		func(in *model.Instance) float64 {
			if in.Usage == nil {
				return 0
			}
			return in.Usage.NetMbps * 10
		})
	if len(defs) == 0 {
		return nil, fmt.Errorf("compute problem: no resource selected")
	}
	p := &optimize.Problem{ProcessMoveWeight: max(o.MoveWeight, 0), MaxMoves: o.MaxMoves}
	for r, d := range defs {
		c.res[d.name] = r
		c.Names = append(c.Names, d.name)
		p.Resources = append(p.Resources, optimize.Resource{
			Name:          d.name,
			Transient:     d.transient,
			BalanceWeight: o.Balance[d.name],
			PackWeight:    o.Pack[d.name],
		})
		if _, ok := o.Safety[d.name]; ok {
			p.Resources[r].LoadWeight = o.LoadWeight
		}
	}
	R := len(defs)
	c.Physical = make([]float64, len(cl.Hosts)*R)
	p.Machines = make([]optimize.Machine, len(cl.Hosts))
	for i := range cl.Hosts {
		h := &cl.Hosts[i]
		m := optimize.Machine{
			Name:      h.Name,
			Capacity:  make([]int64, R),
			Location:  ix.HostZone[i],
			FixedCost: o.FixedCost,
			Closed:    !h.Schedulable() || (o.Closed != nil && o.Closed(i)),
			Evacuate:  o.Evacuate != nil && o.Evacuate(i),
		}
		for r, d := range defs {
			m.Capacity[r] = int64(math.Floor(d.capFn(h)))
			c.Physical[i*R+r] = d.physFn(h)
		}
		if len(o.Safety) > 0 {
			m.Safety = make([]int64, R)
			for r, d := range defs {
				if f, ok := o.Safety[d.name]; ok {
					m.Safety[r] = int64(math.Floor(f * d.physFn(h)))
				} else {
					m.Safety[r] = m.Capacity[r]
				}
			}
		}
		p.Machines[i] = m
	}
	mc, _ := o.Scorers.Get(scoring.MigrationCostName)
	est, _ := mc.(*scoring.MigrationCost)
	if est == nil {
		est, _ = scoring.NewMigrationCost(scoring.MigrationCost{})
	}
	p.Services = make([]optimize.Service, len(ix.Groups))
	for g := range p.Services {
		p.Services[g] = optimize.Service{Conflict: optimize.ConflictMachine}
	}
	c.Seconds = make([]float64, len(cl.Instances))
	p.Processes = make([]optimize.Process, len(cl.Instances))
	for i := range cl.Instances {
		in := &cl.Instances[i]
		pr := optimize.Process{
			Name:    in.UUID,
			Demand:  make([]int64, R),
			Initial: ix.InstanceHost[i],
			Service: ix.InstanceGroup[i],
			Pinned:  !in.Movable() || (o.Movable != nil && !o.Movable(i)),
			Zone:    -1,
		}
		if z := in.Metadata.PinnedAZ; z != "" {
			if zi, ok := ix.ZoneByName[z]; ok {
				pr.Zone = zi
			} else {
				pr.Zone = math.MaxInt32 // pinned to a zone with no host in scope
			}
		}
		for r, d := range defs {
			pr.Demand[r] = int64(math.Ceil(d.demFn(in)))
		}
		dirty := 0.0
		if in.Usage != nil {
			dirty = in.Usage.DirtyRateMBps
		}
		c.Seconds[i] = est.Seconds(float64(in.Flavor.MemoryMB), dirty)
		if !in.LiveMigratable() || o.ColdOnly {
			// A cold migration copies the disk and restarts the guest.
			c.Seconds[i] = est.SetupSeconds + float64(in.Flavor.DiskGB)*1024/est.BandwidthMBps + 30
		}
		pr.MoveCost = int64(math.Ceil(c.Seconds[i] * 1000))
		p.Processes[i] = pr
	}
	c.Problem = p
	return c, nil
}

// Moves lists the instances assign places away from their current host.
func (c *Compute) Moves(assign []int32) []model.Move {
	var out []model.Move
	for i, h := range assign {
		if h != c.Index.InstanceHost[i] {
			out = append(out, model.Move{Instance: c.Index.Instance(i).UUID, To: c.Index.Host(int(h)).Name})
		}
	}
	return out
}

// Migrations builds one migrate action per moved instance, live for running
// and paused instances and cold otherwise, with its predicted duration.
func (c *Compute) Migrations(assign []int32) []action.Action {
	var out []action.Action
	for i, h := range assign {
		from := c.Index.InstanceHost[i]
		if h == from {
			continue
		}
		in := c.Index.Instance(i)
		a := action.NewMigrate(action.MigrateParams{
			Live:         in.LiveMigratable() && !c.coldOnly,
			Source:       c.Index.Host(int(from)).Name,
			Destination:  c.Index.Host(int(h)).Name,
			InstanceID:   in.UUID,
			InstanceName: in.Name,
		}, false)
		a.EstimatedDurationSeconds = c.Seconds[i]
		out = append(out, a)
	}
	return out
}

// LiveAndCold counts the live and cold migrations in assign.
func (c *Compute) LiveAndCold(assign []int32) (live, cold int) {
	for i, h := range assign {
		if h == c.Index.InstanceHost[i] {
			continue
		}
		if c.Index.Instance(i).LiveMigratable() && !c.coldOnly {
			live++
		} else {
			cold++
		}
	}
	return live, cold
}

// Utilization returns, for every schedulable host, its utilisation of the
// named resource under assign (load over physical size).
func (c *Compute) Utilization(assign []int32, name string) []float64 {
	r, ok := c.res[name]
	if !ok {
		return nil
	}
	R := len(c.Names)
	load := make([]float64, len(c.Problem.Machines))
	for i, h := range assign {
		load[h] += float64(c.Problem.Processes[i].Demand[r])
	}
	var out []float64
	for h := range c.Problem.Machines {
		if c.Problem.Machines[h].Closed {
			continue
		}
		if phys := c.Physical[h*R+r]; phys > 0 {
			out = append(out, load[h]/phys)
		}
	}
	return out
}

// ActiveHostBound computes the L1/L2 bound on hosts running instances over
// the problem's hard resources and schedulable hosts.
func (c *Compute) ActiveHostBound(activeAfter int) *HostBound {
	var dims []bounds.Dimension
	for r, name := range c.Names {
		d := bounds.Dimension{Name: name}
		for _, pr := range c.Problem.Processes {
			d.Items = append(d.Items, float64(pr.Demand[r]))
		}
		for _, m := range c.Problem.Machines {
			if !m.Closed {
				d.Capacities = append(d.Capacities, float64(m.Capacity[r]))
			}
		}
		dims = append(dims, d)
	}
	b := bounds.HostsNeeded(dims)
	hb := &HostBound{L1: b.L1, L2: b.L2, After: activeAfter}
	if b.L2 > 0 {
		hb.Ratio = float64(activeAfter) / float64(b.L2)
	}
	return hb
}

// BalanceBound computes the balance floor of the named resource over the
// schedulable hosts, with the standard deviations before and after.
func (c *Compute) BalanceBound(name string, before, after []int32) (BalanceBound, bool) {
	r, ok := c.res[name]
	if !ok {
		return BalanceBound{}, false
	}
	R := len(c.Names)
	var items, caps []float64
	for _, pr := range c.Problem.Processes {
		items = append(items, float64(pr.Demand[r]))
	}
	for h, m := range c.Problem.Machines {
		if !m.Closed {
			caps = append(caps, c.Physical[h*R+r])
		}
	}
	f := bounds.BalanceFloor(items, caps)
	return BalanceBound{
		Mean:        f.Mean,
		StdDevFloor: f.StdDevFloor,
		Before:      bounds.StdDev(c.Utilization(before, name)),
		After:       bounds.StdDev(c.Utilization(after, name)),
	}, true
}

// Initial returns the current assignment (every instance on its host).
func (c *Compute) Initial() []int32 {
	out := make([]int32, len(c.Index.InstanceHost))
	copy(out, c.Index.InstanceHost)
	return out
}

// ActiveCount counts schedulable-or-not hosts running at least one instance.
func ActiveCount(assign []int32, hosts int) int {
	used := make([]bool, hosts)
	n := 0
	for _, h := range assign {
		if !used[h] {
			used[h] = true
			n++
		}
	}
	return n
}

// SearchStatsOf summarises a core result.
func SearchStatsOf(r *optimize.Result) *SearchStats {
	st := &SearchStats{Seconds: r.Elapsed.Seconds(), Moves: r.Final.Moved}
	st.Evaluations = int64(r.Descent.Evaluations) + r.Anneal.Iterations
	st.Stopped = r.Descent.Stopped
	return st
}

// Bounds reports, for a plan taking initial to final, the active-host bound
// and the balance floor of each named resource present (keyed by resource
// name), so every compute plan carries its bounds.
func (c *Compute) Bounds(initial, final []int32, resources ...string) *Bounds {
	b := &Bounds{ActiveHosts: c.ActiveHostBound(ActiveCount(final, len(c.Problem.Machines))), Balance: map[string]BalanceBound{}}
	for _, name := range resources {
		if bb, ok := c.BalanceBound(name, initial, final); ok {
			b.Balance[name] = bb
		}
	}
	return b
}
