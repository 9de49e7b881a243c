package model

import (
	"fmt"
	"slices"
)

// Index is the integer-id view of a validated cluster that strategies and the
// solver work on: hosts and instances by position, zones and anti-affinity
// groups numbered, instances grouped per host. It does not copy the cluster;
// it must be rebuilt if the cluster changes.
type Index struct {
	Cluster *Cluster

	HostByName     map[string]int
	InstanceByUUID map[string]int

	// InstanceHost is the host index of every instance.
	InstanceHost []int32
	// HostInstances lists the instances on every host, in instance order.
	HostInstances [][]int32

	// Zones are the distinct availability zones (the empty default zone
	// included if used), and HostZone the zone index of every host.
	Zones    []string
	HostZone []int32
	// ZoneByName maps a zone name to its index.
	ZoneByName map[string]int32

	// Groups are the distinct anti-affinity groups; InstanceGroup is the
	// group index of every instance, or -1.
	Groups        []string
	InstanceGroup []int32
}

// NewIndex builds the index of c, which must be valid.
func NewIndex(c *Cluster) (*Index, error) {
	ix := &Index{
		Cluster:        c,
		HostByName:     make(map[string]int, len(c.Hosts)),
		InstanceByUUID: make(map[string]int, len(c.Instances)),
		InstanceHost:   make([]int32, len(c.Instances)),
		HostInstances:  make([][]int32, len(c.Hosts)),
		HostZone:       make([]int32, len(c.Hosts)),
		ZoneByName:     map[string]int32{},
		InstanceGroup:  make([]int32, len(c.Instances)),
	}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if _, dup := ix.HostByName[h.Name]; dup {
			return nil, fmt.Errorf("hosts[%d].name: %q is not unique", i, h.Name)
		}
		ix.HostByName[h.Name] = i
		z, ok := ix.ZoneByName[h.AvailabilityZone]
		if !ok {
			z = int32(len(ix.Zones))
			ix.Zones = append(ix.Zones, h.AvailabilityZone)
			ix.ZoneByName[h.AvailabilityZone] = z
		}
		ix.HostZone[i] = z
	}
	counts := make([]int, len(c.Hosts))
	groups := map[string]int32{}
	for i := range c.Instances {
		in := &c.Instances[i]
		if _, dup := ix.InstanceByUUID[in.UUID]; dup {
			return nil, fmt.Errorf("instances[%d].uuid: %q is not unique", i, in.UUID)
		}
		ix.InstanceByUUID[in.UUID] = i
		h, ok := ix.HostByName[in.Host]
		if !ok {
			return nil, fmt.Errorf("instances[%d].host: %q is not a host of this model", i, in.Host)
		}
		ix.InstanceHost[i] = int32(h)
		counts[h]++
		ix.InstanceGroup[i] = -1
		if g := in.Metadata.AntiAffinityGroup; g != "" {
			id, ok := groups[g]
			if !ok {
				id = int32(len(ix.Groups))
				ix.Groups = append(ix.Groups, g)
				groups[g] = id
			}
			ix.InstanceGroup[i] = id
		}
	}
	for h, n := range counts {
		ix.HostInstances[h] = make([]int32, 0, n)
	}
	for i, h := range ix.InstanceHost {
		ix.HostInstances[h] = append(ix.HostInstances[h], int32(i))
	}
	return ix, nil
}

// Host returns the host at index h.
func (ix *Index) Host(h int) *Host { return &ix.Cluster.Hosts[h] }

// Instance returns the instance at index i.
func (ix *Index) Instance(i int) *Instance { return &ix.Cluster.Instances[i] }

// ActiveHosts counts the hosts that run at least one instance.
func (ix *Index) ActiveHosts() int {
	n := 0
	for _, l := range ix.HostInstances {
		if len(l) > 0 {
			n++
		}
	}
	return n
}

// ZoneNames returns the zone names sorted, for display.
func (ix *Index) ZoneNames() []string {
	z := slices.Clone(ix.Zones)
	slices.Sort(z)
	return z
}
