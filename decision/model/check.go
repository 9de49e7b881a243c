package model

import (
	"cmp"
	"fmt"
	"slices"
)

// Move relocates one instance to another host.
type Move struct {
	Instance string `json:"instance"`
	To       string `json:"to"`
}

// ApplyMoves returns a copy of c with the moves applied, or an error naming
// the first move that refers to an unknown instance or host. It checks
// nothing else: use CheckPlacement on the result.
func ApplyMoves(c *Cluster, moves []Move) (*Cluster, error) {
	out := c.Clone()
	byUUID := make(map[string]int, len(out.Instances))
	for i := range out.Instances {
		byUUID[out.Instances[i].UUID] = i
	}
	hosts := make(map[string]bool, len(out.Hosts))
	for i := range out.Hosts {
		hosts[out.Hosts[i].Name] = true
	}
	for k, m := range moves {
		i, ok := byUUID[m.Instance]
		if !ok {
			return nil, fmt.Errorf("moves[%d].instance: %q is not an instance of the model", k, m.Instance)
		}
		if !hosts[m.To] {
			return nil, fmt.Errorf("moves[%d].to: %q is not a host of the model", k, m.To)
		}
		out.Instances[i].Host = m.To
	}
	return out, nil
}

// Violation is a placement rule broken by a cluster state.
type Violation struct {
	// Kind is capacity, anti_affinity or pinned_az.
	Kind string `json:"kind"`
	// Host and Instance name what is involved, where it applies.
	Host     string `json:"host,omitempty"`
	Instance string `json:"instance,omitempty"`
	Detail   string `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s on %s%s: %s", v.Kind, v.Host, ifNotEmpty(" instance ", v.Instance), v.Detail)
}

func ifNotEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// CheckPlacement lists the placement rules the cluster breaks: allocations
// above (capacity − reserved) × allocation ratio for vCPU, memory and disk
// (disk only where the host declares a local disk), two members of one
// anti-affinity group on a host, and instances outside their pinned zone.
// The result is sorted for stable output.
func CheckPlacement(c *Cluster) []Violation {
	type alloc struct{ vcpu, mem, disk float64 }
	used := make(map[string]*alloc, len(c.Hosts))
	hosts := make(map[string]*Host, len(c.Hosts))
	for i := range c.Hosts {
		used[c.Hosts[i].Name] = &alloc{}
		hosts[c.Hosts[i].Name] = &c.Hosts[i]
	}
	type groupHost struct{ group, host string }
	members := map[groupHost][]string{}
	var out []Violation
	for i := range c.Instances {
		in := &c.Instances[i]
		a, ok := used[in.Host]
		if !ok {
			out = append(out, Violation{Kind: "unknown_host", Host: in.Host, Instance: in.UUID, Detail: "host is not in the model"})
			continue
		}
		a.vcpu += float64(in.Flavor.VCPUs)
		a.mem += float64(in.Flavor.MemoryMB)
		a.disk += float64(in.Flavor.DiskGB)
		if g := in.Metadata.AntiAffinityGroup; g != "" {
			k := groupHost{g, in.Host}
			members[k] = append(members[k], in.UUID)
		}
		if z := in.Metadata.PinnedAZ; z != "" && hosts[in.Host].AvailabilityZone != z {
			out = append(out, Violation{Kind: "pinned_az", Host: in.Host, Instance: in.UUID,
				Detail: fmt.Sprintf("pinned to zone %q, host is in %q", z, hosts[in.Host].AvailabilityZone)})
		}
	}
	const eps = 1e-6
	for name, a := range used {
		h := hosts[name]
		lim := h.Allocatable()
		if a.vcpu > lim.VCPUs+eps {
			out = append(out, Violation{Kind: "capacity", Host: name, Detail: fmt.Sprintf("vcpu allocation %.0f > %.1f", a.vcpu, lim.VCPUs)})
		}
		if a.mem > lim.MemoryMB+eps {
			out = append(out, Violation{Kind: "capacity", Host: name, Detail: fmt.Sprintf("memory allocation %.0f MB > %.0f MB", a.mem, lim.MemoryMB)})
		}
		if h.Capacity.DiskGB > 0 && a.disk > lim.DiskGB+eps {
			out = append(out, Violation{Kind: "capacity", Host: name, Detail: fmt.Sprintf("disk allocation %.0f GB > %.0f GB", a.disk, lim.DiskGB)})
		}
	}
	for k, l := range members {
		if len(l) > 1 {
			slices.Sort(l)
			out = append(out, Violation{Kind: "anti_affinity", Host: k.host, Instance: l[1],
				Detail: fmt.Sprintf("group %q has %d members on the host", k.group, len(l))})
		}
	}
	slices.SortFunc(out, func(a, b Violation) int {
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return cmp.Compare(a.Instance+a.Detail, b.Instance+b.Detail)
	})
	return out
}
