package collect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	dmodel "github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/exporters/inventory"
)

// FromAgent turns an agent's inventory (schema of exporters/inventory, the
// data of the io.ballast.inventory.v1 events `ballast exporter` publishes)
// into the model's host and instances.
func FromAgent(inv *inventory.Inventory) (dmodel.HostInventory, error) {
	if inv.Host.Hostname == "" {
		return dmodel.HostInventory{}, errors.New("agent inventory: host.hostname is empty")
	}
	h := inv.Host
	host := dmodel.Host{
		Name: h.Hostname,
		Capacity: dmodel.Capacity{
			VCPUs:    int(h.CPUs),
			MemoryMB: int64(h.MemoryBytes >> 20),
			DiskGB:   int64(h.DiskBytes >> 30),
		},
		AllocationRatio: dmodel.AllocationRatio{VCPU: h.Allocation.CPU, Memory: h.Allocation.Memory, Disk: h.Allocation.Disk},
		Reserved:        dmodel.Reserved{VCPUs: int(h.Reserved.CPUs), MemoryMB: int64(h.Reserved.MemoryBytes >> 20), DiskGB: int64(h.Reserved.DiskBytes >> 30)},
		State:           dmodel.HostEnabled,
		PowerState:      dmodel.PowerOn,
	}
	out := dmodel.HostInventory{Host: host}
	for _, d := range inv.Domains {
		if d.UUID == "" {
			return dmodel.HostInventory{}, fmt.Errorf("agent inventory of %s: a domain has no uuid", h.Hostname)
		}
		out.Instances = append(out.Instances, dmodel.Instance{
			UUID:      d.UUID,
			Name:      firstNonEmpty(d.Metadata.DisplayName, d.Name),
			Host:      h.Hostname,
			ProjectID: d.Metadata.ProjectID,
			Flavor: dmodel.Flavor{Name: d.Metadata.Flavor,
				VCPUs:    int(firstNonZero(d.Metadata.FlavorVCPUs, d.VCPUs)),
				MemoryMB: int64(firstNonZero(d.Metadata.FlavorMemoryMiB, d.MemoryBytes>>20)),
				DiskGB:   int64(d.Metadata.FlavorDiskGiB)},
			State: instanceState(d.State),
		})
	}
	return out, nil
}

// instanceState maps libvirt domain states to the model's.
func instanceState(s string) dmodel.InstanceState {
	switch s {
	case "running", "blocked":
		return dmodel.InstanceActive
	case "paused":
		return dmodel.InstancePaused
	case "pmsuspended":
		return dmodel.InstanceSuspended
	case "shutdown", "shutoff", "nostate":
		return dmodel.InstanceShutoff
	case "crashed":
		return dmodel.InstanceError
	}
	return dmodel.InstanceShutoff
}

func firstNonZero(v ...uint64) uint64 {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// MetricInventory builds the inventory from the ballast_inventory_* series
// that agents expose (scraped, or pushed with remote_write), read through
// the datasource: the inventory path when there is no Kafka to carry
// inventory events. A host is the agent's target (its instance label); a
// host silent for longer than the lookback delta drops out.
type MetricInventory struct {
	Querier Querier
	// Now replaces the clock, for tests.
	Now func() time.Time
}

var _ Inventory = (*MetricInventory)(nil)

// Inventory queries the agents' inventory series.
func (m *MetricInventory) Inventory(ctx context.Context) (*dmodel.Cluster, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	q := func(query string) (model.Vector, error) {
		v, _, err := m.Querier.Query(ctx, query, now)
		if err != nil {
			return nil, fmt.Errorf("inventory query %s: %w", query, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("inventory query %s: want a vector, got %s", query, v.Type())
		}
		return vec, nil
	}
	infos, err := q(`ballast_inventory_host_info`)
	if err != nil {
		return nil, err
	}
	type target struct{ job, instance string }
	key := func(m model.Metric) target { return target{string(m["job"]), string(m["instance"])} }
	hosts := map[target]*dmodel.Host{}
	for _, s := range infos {
		name := string(s.Metric["hostname"])
		if name == "" {
			continue
		}
		hosts[key(s.Metric)] = &dmodel.Host{Name: name, State: dmodel.HostEnabled, PowerState: dmodel.PowerOn}
	}
	set := func(query string, apply func(h *dmodel.Host, s *model.Sample)) error {
		vec, err := q(query)
		if err != nil {
			return err
		}
		for _, s := range vec {
			if h := hosts[key(s.Metric)]; h != nil {
				apply(h, s)
			}
		}
		return nil
	}
	steps := []struct {
		query string
		apply func(h *dmodel.Host, s *model.Sample)
	}{
		{`ballast_inventory_host_cpus`, func(h *dmodel.Host, s *model.Sample) { h.Capacity.VCPUs = int(s.Value) }},
		{`ballast_inventory_host_memory_bytes`, func(h *dmodel.Host, s *model.Sample) { h.Capacity.MemoryMB = int64(s.Value) >> 20 }},
		{`ballast_inventory_host_disk_bytes`, func(h *dmodel.Host, s *model.Sample) { h.Capacity.DiskGB = int64(s.Value) >> 30 }},
		{`ballast_inventory_host_allocation_ratio`, func(h *dmodel.Host, s *model.Sample) {
			switch s.Metric["resource"] {
			case "cpu":
				h.AllocationRatio.VCPU = float64(s.Value)
			case "memory":
				h.AllocationRatio.Memory = float64(s.Value)
			case "disk":
				h.AllocationRatio.Disk = float64(s.Value)
			}
		}},
		{`ballast_inventory_host_reserved`, func(h *dmodel.Host, s *model.Sample) {
			switch s.Metric["resource"] {
			case "cpu":
				h.Reserved.VCPUs = int(s.Value)
			case "memory":
				h.Reserved.MemoryMB = int64(s.Value) >> 20
			case "disk":
				h.Reserved.DiskGB = int64(s.Value) >> 30
			}
		}},
	}
	for _, st := range steps {
		if err := set(st.query, st.apply); err != nil {
			return nil, err
		}
	}

	domains, err := q(`ballast_inventory_domain_info`)
	if err != nil {
		return nil, err
	}
	type domKey struct {
		t    target
		uuid string
	}
	instances := map[domKey]*dmodel.Instance{}
	for _, s := range domains {
		h := hosts[key(s.Metric)]
		uuid := string(s.Metric["uuid"])
		if h == nil || uuid == "" {
			continue
		}
		instances[domKey{key(s.Metric), uuid}] = &dmodel.Instance{
			UUID:      uuid,
			Name:      firstNonEmpty(string(s.Metric["display_name"]), string(s.Metric["domain"])),
			Host:      h.Name,
			ProjectID: string(s.Metric["project_id"]),
			Flavor:    dmodel.Flavor{Name: string(s.Metric["flavor"])},
			State:     instanceState(string(s.Metric["state"])),
		}
	}
	for _, st := range []struct {
		query string
		apply func(in *dmodel.Instance, v float64)
	}{
		{`ballast_inventory_domain_vcpus`, func(in *dmodel.Instance, v float64) { in.Flavor.VCPUs = int(v) }},
		{`ballast_inventory_domain_memory_bytes`, func(in *dmodel.Instance, v float64) { in.Flavor.MemoryMB = int64(v) >> 20 }},
		{`ballast_inventory_domain_flavor_disk_bytes`, func(in *dmodel.Instance, v float64) { in.Flavor.DiskGB = int64(v) >> 30 }},
	} {
		vec, err := q(st.query)
		if err != nil {
			return nil, err
		}
		for _, s := range vec {
			if in := instances[domKey{key(s.Metric), string(s.Metric["uuid"])}]; in != nil {
				st.apply(in, float64(s.Value))
			}
		}
	}

	c := &dmodel.Cluster{Version: dmodel.Version, Source: "agents", Timestamp: now}
	for _, h := range hosts {
		c.Hosts = append(c.Hosts, *h)
	}
	for _, in := range instances {
		c.Instances = append(c.Instances, *in)
	}
	sort.Slice(c.Hosts, func(i, j int) bool { return c.Hosts[i].Name < c.Hosts[j].Name })
	sort.Slice(c.Instances, func(i, j int) bool {
		if c.Instances[i].Host != c.Instances[j].Host {
			return c.Instances[i].Host < c.Instances[j].Host
		}
		return c.Instances[i].UUID < c.Instances[j].UUID
	})
	return c, nil
}

// schemaMajor returns the major version of an inventory schema_version
// ("1" or "1.2"), or -1.
func schemaMajor(v string) int {
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			v = v[:i]
			break
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// Inventories merges inventories in order: a host known to an earlier one
// hides the same host (and its instances) in the later ones, and the first
// Ceph part found is the model's (CephInventory provides it). The server
// uses events first (current to the second) and the agents' series second
// (agents that are only scraped).
type Inventories []Inventory

var _ Inventory = Inventories(nil)

// Inventory returns the merged model.
func (is Inventories) Inventory(ctx context.Context) (*dmodel.Cluster, error) {
	out := &dmodel.Cluster{Version: dmodel.Version, Source: "agents"}
	seen := map[string]bool{}
	for _, inv := range is {
		c, err := inv.Inventory(ctx)
		if err != nil {
			return nil, err
		}
		fresh := map[string]bool{}
		for _, h := range c.Hosts {
			if !seen[h.Name] {
				fresh[h.Name] = true
				out.Hosts = append(out.Hosts, h)
			}
		}
		for _, in := range c.Instances {
			if fresh[in.Host] {
				out.Instances = append(out.Instances, in)
			}
		}
		for h := range fresh {
			seen[h] = true
		}
		if out.Ceph == nil && c.Ceph != nil {
			out.Ceph = c.Ceph
		}
		if c.Timestamp.After(out.Timestamp) {
			out.Timestamp = c.Timestamp
		}
	}
	sort.Slice(out.Hosts, func(i, j int) bool { return out.Hosts[i].Name < out.Hosts[j].Name })
	sort.SliceStable(out.Instances, func(i, j int) bool {
		if out.Instances[i].Host != out.Instances[j].Host {
			return out.Instances[i].Host < out.Instances[j].Host
		}
		return out.Instances[i].UUID < out.Instances[j].UUID
	})
	return out, nil
}
