// Package synth generates synthetic clusters, deterministic per seed, for
// benchmarks, tests, the simulator and users who want a model to plan on.
//
// The default shape follows the synthetic cluster of Watcher's published
// strategy timings (docs/benchmarks-decision.md): hosts of 32/48/64 cores with
// 128/256/384 GiB, a vCPU allocation ratio of 4, flavors of 1–16 vCPUs, VM CPU
// utilisation drawn from Beta(1.2, 3) and resident memory 20–90 % of the
// flavor, instances placed at random where their allocation fits.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision/model"
)

// HostShape is one kind of host.
type HostShape struct {
	VCPUs    int
	MemoryMB int64
	DiskGB   int64
}

// FlavorChoice is a flavor and its relative frequency.
type FlavorChoice struct {
	Flavor model.Flavor
	Weight float64
}

// Config shapes the generated cluster. Zero values get the defaults noted.
type Config struct {
	// Hosts and Instances are the sizes (defaults 100 and 1000).
	Hosts     int
	Instances int
	// Seed makes the cluster reproducible.
	Seed int64
	// HostShapes are drawn uniformly (default 32c/128G, 48c/256G, 64c/384G,
	// 4 TB disk each).
	HostShapes []HostShape
	// VCPURatio is the vCPU allocation ratio (default 4).
	VCPURatio float64
	// Flavors and their weights (default m1.small…m1.2xlarge, 1–16 vCPUs at
	// 2 GiB per vCPU, favouring small ones).
	Flavors []FlavorChoice
	// CPUAlpha and CPUBeta shape the Beta distribution of VM CPU
	// utilisation (defaults 1.2 and 3).
	CPUAlpha, CPUBeta float64
	// Zones is the number of availability zones (default 1).
	Zones int
	// GroupFraction of instances belong to anti-affinity groups of 2–4
	// members (default 0).
	GroupFraction float64
	// StoppedFraction of instances are shut off (default 0).
	StoppedFraction float64
	// Ceph adds a Ceph cluster when OSDHosts > 0.
	Ceph CephConfig
	// Now stamps the model (default: the zero time, for reproducible output).
	Now time.Time
}

// CephConfig shapes the generated Ceph cluster.
type CephConfig struct {
	// OSDHosts is the number of storage hosts (0: no Ceph).
	OSDHosts int
	// OSDsPerHost defaults to 4.
	OSDsPerHost int
	// Pools defaults to 3, each of PGsPerPool PGs (default 128) and Size
	// replicas (default 3).
	Pools      int
	PGsPerPool int
	Size       int
}

func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = 100
	}
	if c.Instances == 0 && c.Hosts > 0 {
		c.Instances = 10 * c.Hosts
	}
	if c.Hosts < 0 || c.Instances < 0 {
		return c, fmt.Errorf("hosts %d and instances %d must not be negative", c.Hosts, c.Instances)
	}
	if len(c.HostShapes) == 0 {
		c.HostShapes = []HostShape{{32, 128 << 10, 4000}, {48, 256 << 10, 4000}, {64, 384 << 10, 4000}}
	}
	if c.VCPURatio == 0 {
		c.VCPURatio = 4
	}
	if len(c.Flavors) == 0 {
		c.Flavors = []FlavorChoice{
			{model.Flavor{Name: "m1.small", VCPUs: 1, MemoryMB: 2048, DiskGB: 20}, 0.25},
			{model.Flavor{Name: "m1.medium", VCPUs: 2, MemoryMB: 4096, DiskGB: 40}, 0.25},
			{model.Flavor{Name: "m1.large", VCPUs: 4, MemoryMB: 8192, DiskGB: 80}, 0.25},
			{model.Flavor{Name: "m1.xlarge", VCPUs: 8, MemoryMB: 16384, DiskGB: 160}, 0.15},
			{model.Flavor{Name: "m1.2xlarge", VCPUs: 16, MemoryMB: 32768, DiskGB: 320}, 0.10},
		}
	}
	if c.CPUAlpha == 0 {
		c.CPUAlpha = 1.2
	}
	if c.CPUBeta == 0 {
		c.CPUBeta = 3
	}
	if c.Zones == 0 {
		c.Zones = 1
	}
	if c.GroupFraction < 0 || c.GroupFraction > 1 || c.StoppedFraction < 0 || c.StoppedFraction > 1 {
		return c, fmt.Errorf("group and stopped fractions must be within [0, 1]")
	}
	if c.Ceph.OSDHosts > 0 {
		if c.Ceph.OSDsPerHost == 0 {
			c.Ceph.OSDsPerHost = 4
		}
		if c.Ceph.Pools == 0 {
			c.Ceph.Pools = 3
		}
		if c.Ceph.PGsPerPool == 0 {
			c.Ceph.PGsPerPool = 128
		}
		if c.Ceph.Size == 0 {
			c.Ceph.Size = 3
		}
		if c.Ceph.Size > c.Ceph.OSDHosts {
			return c, fmt.Errorf("ceph: replica size %d needs at least as many OSD hosts (have %d)", c.Ceph.Size, c.Ceph.OSDHosts)
		}
	}
	return c, nil
}

// HostName returns the name of generated host i.
func HostName(i int) string { return fmt.Sprintf("compute-%05d", i) }

// Generate builds a cluster. It fails only on an invalid Config or when the
// instances cannot all be placed.
func Generate(cfg Config) (*model.Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x62616c6c617374))
	c := &model.Cluster{
		Version:   model.Version,
		Name:      fmt.Sprintf("synthetic-%dx%d-seed%d", cfg.Hosts, cfg.Instances, cfg.Seed),
		Source:    "generated",
		Timestamp: cfg.Now,
		Metrics:   &model.MetricWindow{PeriodSeconds: 3600, GranularitySeconds: 300, Aggregate: "mean"},
		Hosts:     make([]model.Host, cfg.Hosts),
		Instances: make([]model.Instance, 0, cfg.Instances),
	}
	type free struct{ vcpu, mem, disk float64 }
	room := make([]free, cfg.Hosts)
	for i := range c.Hosts {
		s := cfg.HostShapes[rng.IntN(len(cfg.HostShapes))]
		h := model.Host{
			Name:             HostName(i),
			UUID:             uuidFrom(rng),
			Capacity:         model.Capacity{VCPUs: s.VCPUs, MemoryMB: s.MemoryMB, DiskGB: s.DiskGB, NetMbps: 25000, DiskIOMBps: 2000},
			AllocationRatio:  model.AllocationRatio{VCPU: cfg.VCPURatio, Memory: 1, Disk: 1},
			AvailabilityZone: zoneName(i%cfg.Zones, cfg.Zones),
			State:            model.HostEnabled,
			PowerState:       model.PowerOn,
		}
		a := h.Allocatable()
		room[i] = free{a.VCPUs, a.MemoryMB, a.DiskGB}
		c.Hosts[i] = h
	}
	var total float64
	for _, f := range cfg.Flavors {
		total += f.Weight
	}
	groupLeft, groupID := 0, 0
	for n := 0; n < cfg.Instances; n++ {
		x := rng.Float64() * total
		fl := cfg.Flavors[len(cfg.Flavors)-1].Flavor
		for _, f := range cfg.Flavors {
			if x < f.Weight {
				fl = f.Flavor
				break
			}
			x -= f.Weight
		}
		in := model.Instance{
			UUID:      uuidFrom(rng),
			Name:      "vm-" + strconv.Itoa(n),
			ProjectID: fmt.Sprintf("project-%02d", rng.IntN(20)),
			Flavor:    fl,
			State:     model.InstanceActive,
		}
		if rng.Float64() < cfg.StoppedFraction {
			in.State = model.InstanceShutoff
		}
		cpu := beta(rng, cfg.CPUAlpha, cfg.CPUBeta)
		if in.State != model.InstanceActive {
			cpu = 0
		}
		in.Usage = &model.InstanceUsage{
			CPU:           round(cpu, 4),
			MemoryMB:      math.Round(float64(fl.MemoryMB) * (0.2 + 0.7*rng.Float64())),
			DiskIOMBps:    round(rng.ExpFloat64()*5, 2),
			NetMbps:       round(rng.ExpFloat64()*20, 2),
			DirtyRateMBps: round(rng.ExpFloat64()*20*cpu, 2),
		}
		if groupLeft == 0 && cfg.GroupFraction > 0 && rng.Float64() < cfg.GroupFraction/3 {
			groupLeft = 2 + rng.IntN(3)
			groupID++
		}
		if groupLeft > 0 {
			in.Metadata.AntiAffinityGroup = fmt.Sprintf("group-%d", groupID)
			groupLeft--
		}
		c.Instances = append(c.Instances, in)
	}
	// Random placement where the allocation fits, as a scheduler that
	// spreads without looking at load would leave a cluster; largest
	// instances first so that dense clusters still place every instance.
	order := make([]int, len(c.Instances))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return c.Instances[order[a]].Flavor.MemoryMB > c.Instances[order[b]].Flavor.MemoryMB
	})
	groupHosts := map[string][]int{}
	for _, n := range order {
		in := &c.Instances[n]
		fl := in.Flavor
		start := rng.IntN(cfg.Hosts)
		placed := false
		for k := 0; k < cfg.Hosts; k++ {
			h := (start + k) % cfg.Hosts
			r := &room[h]
			if r.vcpu < float64(fl.VCPUs) || r.mem < float64(fl.MemoryMB) || r.disk < float64(fl.DiskGB) {
				continue
			}
			g := in.Metadata.AntiAffinityGroup
			if g != "" && slices.Contains(groupHosts[g], h) {
				continue
			}
			r.vcpu -= float64(fl.VCPUs)
			r.mem -= float64(fl.MemoryMB)
			r.disk -= float64(fl.DiskGB)
			in.Host = c.Hosts[h].Name
			if g != "" {
				groupHosts[g] = append(groupHosts[g], h)
			}
			placed = true
			break
		}
		if !placed {
			return nil, fmt.Errorf("synth: instance %d (%s) fits on no host: %d instances are too many for %d hosts", n, fl.Name, cfg.Instances, cfg.Hosts)
		}
	}
	fillHostUsage(c)
	if cfg.Ceph.OSDHosts > 0 {
		c.Ceph = generateCeph(rng, cfg.Ceph)
	}
	return c, nil
}

// fillHostUsage derives host usage from the instances on it plus a small
// hypervisor overhead, as node_exporter would measure it.
func fillHostUsage(c *model.Cluster) {
	idx := make(map[string]int, len(c.Hosts))
	for i := range c.Hosts {
		idx[c.Hosts[i].Name] = i
		c.Hosts[i].Usage = &model.HostUsage{MemoryMB: 2048}
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		h := &c.Hosts[idx[in.Host]]
		h.Usage.CPU += in.CPUCores()
		h.Usage.MemoryMB += in.MemoryUsedMB()
		h.Usage.DiskIOMBps += in.Usage.DiskIOMBps
		h.Usage.NetMbps += in.Usage.NetMbps
	}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		h.Usage.CPU = round(math.Min(1, h.Usage.CPU/float64(h.Capacity.VCPUs)), 4)
		h.Usage.MemoryMB = math.Round(h.Usage.MemoryMB)
		h.Usage.DiskIOMBps = round(h.Usage.DiskIOMBps, 2)
		h.Usage.NetMbps = round(h.Usage.NetMbps, 2)
		if h.Capacity.DiskIOMBps > 0 {
			h.Usage.DiskIOUtil = round(math.Min(1, h.Usage.DiskIOMBps/h.Capacity.DiskIOMBps), 4)
		}
		h.Usage.PowerWatts = round(PowerWatts(h.Usage.CPU, h.Capacity.VCPUs), 1)
	}
}

// PowerWatts is the linear host power model used by the generator and the
// simulator: idle 60 % of peak, peak 7 W per core.
func PowerWatts(cpu float64, cores int) float64 {
	peak := 7 * float64(cores)
	return 0.6*peak + 0.4*peak*cpu
}

func generateCeph(rng *rand.Rand, cfg CephConfig) *model.Ceph {
	ceph := &model.Ceph{}
	for h := 0; h < cfg.OSDHosts; h++ {
		for k := 0; k < cfg.OSDsPerHost; k++ {
			// Mixed drive sizes (4, 8 and 12 TB), as clusters grow.
			tb := []float64{3.64, 7.28, 10.91}[rng.IntN(3)]
			ceph.OSDs = append(ceph.OSDs, model.OSD{
				ID:          len(ceph.OSDs),
				Host:        fmt.Sprintf("storage-%03d", h),
				DeviceClass: "hdd",
				CrushWeight: tb,
				Reweight:    1,
				BytesTotal:  int64(tb * (1 << 40)),
				Up:          true,
				In:          true,
			})
		}
	}
	osdPGs := make([]int64, len(ceph.OSDs))
	for p := 0; p < cfg.Pools; p++ {
		pool := model.Pool{ID: p + 1, Name: fmt.Sprintf("pool-%d", p+1), Size: cfg.Size, PGNum: cfg.PGsPerPool, FailureDomain: "host"}
		ceph.Pools = append(ceph.Pools, pool)
		for k := 0; k < cfg.PGsPerPool; k++ {
			pg := model.PG{
				ID:      fmt.Sprintf("%d.%x", pool.ID, k),
				Pool:    pool.ID,
				Bytes:   int64(20+rng.IntN(30)) << 30,
				Objects: int64(5000 + rng.IntN(5000)),
			}
			// Weighted random choice of distinct hosts, then an OSD by
			// weight in each: CRUSH's statistics, including its usual
			// unevenness, without its hash.
			used := map[string]bool{}
			for len(pg.Raw) < cfg.Size {
				o := weightedOSD(rng, ceph.OSDs)
				if used[ceph.OSDs[o].Host] {
					continue
				}
				used[ceph.OSDs[o].Host] = true
				pg.Raw = append(pg.Raw, ceph.OSDs[o].ID)
			}
			for _, o := range pg.Raw {
				osdPGs[o] += pg.Bytes
			}
			ceph.PGs = append(ceph.PGs, pg)
		}
	}
	for i := range ceph.OSDs {
		ceph.OSDs[i].BytesUsed = min(osdPGs[i], ceph.OSDs[i].BytesTotal)
	}
	return ceph
}

func weightedOSD(rng *rand.Rand, osds []model.OSD) int {
	var total float64
	for _, o := range osds {
		total += o.CrushWeight
	}
	x := rng.Float64() * total
	for i, o := range osds {
		if x < o.CrushWeight {
			return i
		}
		x -= o.CrushWeight
	}
	return len(osds) - 1
}

func zoneName(i, n int) string {
	if n <= 1 {
		return "nova"
	}
	return fmt.Sprintf("az-%d", i+1)
}

func uuidFrom(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return uuid.UUID(b).String()
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// beta draws from Beta(a, b) as X/(X+Y) with X~Gamma(a), Y~Gamma(b).
func beta(rng *rand.Rand, a, b float64) float64 {
	x := gamma(rng, a)
	y := gamma(rng, b)
	return x / (x + y)
}

// gamma draws from Gamma(k, 1) (Marsaglia and Tsang; boosted for k < 1).
func gamma(rng *rand.Rand, k float64) float64 {
	if k < 1 {
		return gamma(rng, k+1) * math.Pow(rng.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
