package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
)

// MaxFileSize bounds what Read accepts, so a hostile or mistaken input cannot
// exhaust memory (a 10k-host, 200k-instance model is about 60 MiB).
const MaxFileSize = 1 << 30

// Read decodes and validates a model in its JSON form. Unknown fields are
// rejected so that a typo does not silently drop a constraint.
func Read(r io.Reader) (*Cluster, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("read model: larger than %d bytes", MaxFileSize)
	}
	return Decode(data)
}

// Decode is Read over a byte slice. Its errors name where the problem is:
// a JSON path with array indexes (hosts[3].capacity.vcpus) for a value,
// a line and column for a syntax error.
func Decode(data []byte) (*Cluster, error) {
	// One strict decode of the whole model is the fast path; only when it
	// fails is the model read again, piece by piece, to find where.
	var c Cluster
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&c)
	if err == nil {
		err = trailing(data, int(dec.InputOffset()))
	}
	if err != nil {
		return nil, explain(data, err)
	}
	if c.Version != Version {
		if err := checkVersion(data); err != nil {
			return nil, err
		}
		return nil, &DecodeError{Path: "version", Msg: fmt.Sprintf("%d is not supported (want %d)", c.Version, Version)}
	}
	// A model file is read to plan on, which takes hosts; a model
	// assembled live may be empty until the inventory arrives.
	if err := c.validate(true); err != nil {
		return nil, err
	}
	return &c, nil
}

// ReadFile reads and validates the model stored at path.
func ReadFile(path string) (*Cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	defer f.Close()
	c, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Write encodes the cluster in its JSON form (with Version set), indented when
// indent is true.
func Write(w io.Writer, c *Cluster, indent bool) error {
	cp := *c
	cp.Version = Version
	if cp.Hosts == nil {
		cp.Hosts = []Host{}
	}
	if cp.Instances == nil {
		cp.Instances = []Instance{}
	}
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(&cp); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}

// ValidationError lists every problem found, each naming its field.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	const shown = 10
	var b bytes.Buffer
	for i, p := range e.Problems {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-shown)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	return b.String()
}

type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) finite(field string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		p.add("%s: %v is not a finite number", field, v)
	}
}

func (p *problems) nonNeg(field string, v float64) {
	p.finite(field, v)
	if v < 0 {
		p.add("%s: %v must not be negative", field, v)
	}
}

func (p *problems) fraction(field string, v float64) {
	p.finite(field, v)
	if v < 0 || v > 1.5 {
		// Measured fractions may exceed 1 slightly (counter jitter); more
		// than 1.5 is a unit mistake (percent instead of a fraction).
		p.add("%s: %v must be a fraction in [0, 1]", field, v)
	}
}

var pgidRE = regexp.MustCompile(`^[0-9]+\.[0-9a-f]+$`)

// Validate checks the whole model and returns a *ValidationError naming each
// bad field (e.g. "hosts[3].capacity.vcpus: must be positive").
func (c *Cluster) Validate() error { return c.validate(false) }

// validate is Validate, also requiring a host when requireHosts is set.
func (c *Cluster) validate(requireHosts bool) error {
	var p problems
	if c.Version != Version {
		p.add("version: %d is not supported (want %d)", c.Version, Version)
	}
	if requireHosts && len(c.Hosts) == 0 {
		p.add("hosts: at least one host is required")
	}
	if c.Metrics != nil {
		if c.Metrics.PeriodSeconds < 0 || c.Metrics.GranularitySeconds < 0 {
			p.add("metrics: period_s and granularity_s must not be negative")
		}
		if c.Metrics.Aggregate != "" {
			if _, err := ParseAggregate(c.Metrics.Aggregate); err != nil {
				p.add("metrics.aggregate: %v", err)
			}
		}
	}
	hosts := make(map[string]int, len(c.Hosts))
	for i := range c.Hosts {
		h := &c.Hosts[i]
		f := "hosts[" + strconv.Itoa(i) + "]"
		if h.Name == "" {
			p.add("%s.name: must not be empty", f)
		} else if j, dup := hosts[h.Name]; dup {
			p.add("%s.name: %q already used by hosts[%d]", f, h.Name, j)
		} else {
			hosts[h.Name] = i
		}
		if h.Capacity.VCPUs <= 0 {
			p.add("%s.capacity.vcpus: %d must be positive", f, h.Capacity.VCPUs)
		}
		if h.Capacity.MemoryMB <= 0 {
			p.add("%s.capacity.memory_mb: %d must be positive", f, h.Capacity.MemoryMB)
		}
		if h.Capacity.DiskGB < 0 {
			p.add("%s.capacity.disk_gb: %d must not be negative", f, h.Capacity.DiskGB)
		}
		p.nonNeg(f+".capacity.net_mbps", h.Capacity.NetMbps)
		p.nonNeg(f+".capacity.disk_io_mbps", h.Capacity.DiskIOMBps)
		p.nonNeg(f+".allocation_ratio.vcpu", h.AllocationRatio.VCPU)
		p.nonNeg(f+".allocation_ratio.memory", h.AllocationRatio.Memory)
		p.nonNeg(f+".allocation_ratio.disk", h.AllocationRatio.Disk)
		if h.Reserved.VCPUs < 0 || h.Reserved.VCPUs > h.Capacity.VCPUs {
			p.add("%s.reserved.vcpus: %d must be within [0, capacity %d]", f, h.Reserved.VCPUs, h.Capacity.VCPUs)
		}
		if h.Reserved.MemoryMB < 0 || h.Reserved.MemoryMB > h.Capacity.MemoryMB {
			p.add("%s.reserved.memory_mb: %d must be within [0, capacity %d]", f, h.Reserved.MemoryMB, h.Capacity.MemoryMB)
		}
		if h.Reserved.DiskGB < 0 || (h.Capacity.DiskGB > 0 && h.Reserved.DiskGB > h.Capacity.DiskGB) {
			p.add("%s.reserved.disk_gb: %d must be within [0, capacity %d]", f, h.Reserved.DiskGB, h.Capacity.DiskGB)
		}
		switch h.State {
		case "", HostEnabled, HostDisabled, HostMaintenance:
		default:
			p.add("%s.state: %q is not one of enabled, disabled, maintenance", f, h.State)
		}
		switch h.PowerState {
		case "", PowerOn, PowerOff:
		default:
			p.add("%s.power_state: %q is not one of on, off", f, h.PowerState)
		}
		if u := h.Usage; u != nil {
			p.fraction(f+".usage.cpu", u.CPU)
			p.nonNeg(f+".usage.memory_mb", u.MemoryMB)
			p.nonNeg(f+".usage.disk_io_mbps", u.DiskIOMBps)
			p.nonNeg(f+".usage.net_mbps", u.NetMbps)
			p.fraction(f+".usage.disk_io_util", u.DiskIOUtil)
			p.fraction(f+".usage.cpu_steal", u.CPUSteal)
			p.nonNeg(f+".usage.power_watts", u.PowerWatts)
		}
	}
	uuids := make(map[string]int, len(c.Instances))
	for i := range c.Instances {
		in := &c.Instances[i]
		f := "instances[" + strconv.Itoa(i) + "]"
		if in.UUID == "" {
			p.add("%s.uuid: must not be empty", f)
		} else if j, dup := uuids[in.UUID]; dup {
			p.add("%s.uuid: %q already used by instances[%d]", f, in.UUID, j)
		} else {
			uuids[in.UUID] = i
		}
		if in.Host == "" {
			p.add("%s.host: must not be empty", f)
		} else if _, ok := hosts[in.Host]; !ok {
			p.add("%s.host: %q is not a host of this model", f, in.Host)
		}
		if in.Flavor.VCPUs <= 0 {
			p.add("%s.flavor.vcpus: %d must be positive", f, in.Flavor.VCPUs)
		}
		if in.Flavor.MemoryMB <= 0 {
			p.add("%s.flavor.memory_mb: %d must be positive", f, in.Flavor.MemoryMB)
		}
		if in.Flavor.DiskGB < 0 {
			p.add("%s.flavor.disk_gb: %d must not be negative", f, in.Flavor.DiskGB)
		}
		switch in.State {
		case InstanceActive, InstancePaused, InstanceSuspended, InstanceStopped, InstanceShutoff,
			InstanceBuilding, InstanceError, InstanceMigrating:
		default:
			p.add("%s.state: %q is not one of active, paused, suspended, stopped, shutoff, building, error, migrating", f, in.State)
		}
		switch in.Metadata.Priority {
		case "", "high", "low":
		default:
			p.add("%s.metadata.priority: %q is not one of high, low or empty", f, in.Metadata.Priority)
		}
		if u := in.Usage; u != nil {
			p.fraction(f+".usage.cpu", u.CPU)
			p.nonNeg(f+".usage.memory_mb", u.MemoryMB)
			p.nonNeg(f+".usage.disk_io_mbps", u.DiskIOMBps)
			p.nonNeg(f+".usage.net_mbps", u.NetMbps)
			p.nonNeg(f+".usage.dirty_rate_mbps", u.DirtyRateMBps)
			p.fraction(f+".usage.cpu_steal", u.CPUSteal)
		}
		for name, s := range in.History {
			if s.IntervalSeconds <= 0 {
				p.add("%s.history[%q].interval_s: %d must be positive", f, name, s.IntervalSeconds)
			}
			for k, v := range s.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					p.add("%s.history[%q].values[%d]: not a finite number", f, name, k)
					break
				}
			}
		}
	}
	if c.Ceph != nil {
		c.Ceph.validate(&p)
	}
	if len(p.list) > 0 {
		return &ValidationError{Problems: p.list}
	}
	return nil
}

func (c *Ceph) validate(p *problems) {
	osds := make(map[int]int, len(c.OSDs))
	for i := range c.OSDs {
		o := &c.OSDs[i]
		f := "ceph.osds[" + strconv.Itoa(i) + "]"
		if o.ID < 0 {
			p.add("%s.id: %d must not be negative", f, o.ID)
		}
		if j, dup := osds[o.ID]; dup {
			p.add("%s.id: %d already used by ceph.osds[%d]", f, o.ID, j)
		}
		osds[o.ID] = i
		if o.Host == "" {
			p.add("%s.host: must not be empty", f)
		}
		p.nonNeg(f+".crush_weight", o.CrushWeight)
		p.finite(f+".reweight", o.Reweight)
		if o.Reweight < 0 || o.Reweight > 1 {
			p.add("%s.reweight: %v must be within [0, 1]", f, o.Reweight)
		}
		if o.BytesUsed < 0 || o.BytesTotal < 0 {
			p.add("%s: bytes_used and bytes_total must not be negative", f)
		}
	}
	pools := make(map[int]int, len(c.Pools))
	for i := range c.Pools {
		pl := &c.Pools[i]
		f := "ceph.pools[" + strconv.Itoa(i) + "]"
		if j, dup := pools[pl.ID]; dup {
			p.add("%s.id: %d already used by ceph.pools[%d]", f, pl.ID, j)
		}
		pools[pl.ID] = i
		if pl.Size <= 0 || pl.Size > 16 {
			p.add("%s.size: %d must be within [1, 16]", f, pl.Size)
		}
		if pl.PGNum < 0 {
			p.add("%s.pg_num: %d must not be negative", f, pl.PGNum)
		}
	}
	pgids := make(map[string]int, len(c.PGs))
	for i := range c.PGs {
		pg := &c.PGs[i]
		f := "ceph.pgs[" + strconv.Itoa(i) + "]"
		if !pgidRE.MatchString(pg.ID) {
			p.add("%s.pgid: %q is not of the form <pool>.<hex>", f, pg.ID)
		} else if j, dup := pgids[pg.ID]; dup {
			p.add("%s.pgid: %q already used by ceph.pgs[%d]", f, pg.ID, j)
		}
		pgids[pg.ID] = i
		pi, ok := pools[pg.Pool]
		if !ok {
			p.add("%s.pool: %d is not a pool of this model", f, pg.Pool)
		} else if len(pg.Raw) != c.Pools[pi].Size {
			p.add("%s.raw: %d OSDs, pool %d has size %d", f, len(pg.Raw), pg.Pool, c.Pools[pi].Size)
		}
		seen := map[int]bool{}
		for k, o := range pg.Raw {
			if _, ok := osds[o]; !ok {
				p.add("%s.raw[%d]: OSD %d is not in ceph.osds", f, k, o)
			}
			if seen[o] {
				p.add("%s.raw[%d]: OSD %d appears twice", f, k, o)
			}
			seen[o] = true
		}
		for k, it := range pg.UpmapItems {
			if _, ok := osds[it.To]; !ok {
				p.add("%s.upmap_items[%d].to: OSD %d is not in ceph.osds", f, k, it.To)
			}
			if !seen[it.From] {
				p.add("%s.upmap_items[%d].from: OSD %d is not in the PG's raw mapping", f, k, it.From)
			}
		}
		if pg.Bytes < 0 || pg.Objects < 0 {
			p.add("%s: bytes and objects must not be negative", f)
		}
	}
}

// Aggregate is a parsed aggregation method: mean, max, min or a percentile.
type Aggregate struct {
	// Kind is "mean", "max", "min" or "percentile".
	Kind string
	// Quantile is in (0, 1) for percentiles.
	Quantile float64
}

// ParseAggregate parses mean|avg, max, min or pNN/pNN.N (e.g. p95).
func ParseAggregate(s string) (Aggregate, error) {
	switch s {
	case "mean", "avg", "":
		return Aggregate{Kind: "mean"}, nil
	case "max", "min":
		return Aggregate{Kind: s}, nil
	}
	if len(s) > 1 && s[0] == 'p' {
		v, err := strconv.ParseFloat(s[1:], 64)
		if err == nil && v > 0 && v < 100 {
			return Aggregate{Kind: "percentile", Quantile: v / 100}, nil
		}
	}
	return Aggregate{}, fmt.Errorf("%q is not one of mean, max, min or pNN (a percentile such as p95)", s)
}
