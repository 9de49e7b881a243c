package virt

import (
	"fmt"
	"slices"
	"strings"
	"syscall"

	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/inventory"
)

// HostPolicy is the operator's configuration that libvirt cannot know.
type HostPolicy struct {
	// DiskPath is the filesystem holding instance disks (Nova's
	// instances_path); its size is the host's disk capacity.
	DiskPath   string
	Allocation inventory.AllocationRatios
	Reserved   inventory.Reserved
}

// stateNames are the inventory's state strings.
var stateNames = map[libvirt.DomainState]string{
	libvirt.DOMAIN_NOSTATE: "nostate", libvirt.DOMAIN_RUNNING: "running", libvirt.DOMAIN_BLOCKED: "blocked",
	libvirt.DOMAIN_PAUSED: "paused", libvirt.DOMAIN_SHUTDOWN: "shutdown", libvirt.DOMAIN_SHUTOFF: "shutoff",
	libvirt.DOMAIN_CRASHED: "crashed", libvirt.DOMAIN_PMSUSPENDED: "pmsuspended",
}

// Inventory reads the host and its domains from libvirt.
func (c *Client) Inventory(policy HostPolicy) (*inventory.Inventory, error) {
	conn, err := c.Conn()
	if err != nil {
		return nil, err
	}
	host, err := c.host(conn, policy)
	if err != nil {
		c.Check(conn, err)
		return nil, err
	}
	states, err := c.states(conn)
	if err != nil {
		c.Check(conn, err)
		return nil, err
	}
	descs, err := c.Domains()
	if err != nil {
		return nil, err
	}
	inv := &inventory.Inventory{SchemaVersion: inventory.SchemaVersion, CollectedAt: c.now().UTC(), Host: host,
		Domains: make([]inventory.Domain, 0, len(descs))}
	for _, d := range descs {
		state, ok := states[d.UUID]
		if !ok {
			continue // undefined since the cached listing
		}
		inv.Domains = append(inv.Domains, inventoryDomain(d, state))
	}
	// A stable order keeps consecutive inventories comparable.
	slices.SortFunc(inv.Domains, func(a, b inventory.Domain) int { return strings.Compare(a.UUID, b.UUID) })
	return inv, nil
}

func (c *Client) host(conn *libvirt.Connect, policy HostPolicy) (inventory.Host, error) {
	ni, err := conn.GetNodeInfo()
	if err != nil {
		return inventory.Host{}, fmt.Errorf("node info: %w", err)
	}
	hostname, err := conn.GetHostname()
	if err != nil {
		return inventory.Host{}, fmt.Errorf("hostname: %w", err)
	}
	typ, err := conn.GetType()
	if err != nil {
		return inventory.Host{}, fmt.Errorf("driver type: %w", err)
	}
	libVersion, err := conn.GetLibVersion()
	if err != nil {
		return inventory.Host{}, fmt.Errorf("libvirt version: %w", err)
	}
	h := inventory.Host{
		Hostname: hostname, Hypervisor: typ, LibvirtVersion: inventory.FormatVersion(libVersion),
		CPUModel: ni.Model, CPUMHz: uint64(ni.MHz), CPUs: uint64(ni.Cpus),
		NUMANodes: uint64(ni.Nodes), Sockets: uint64(ni.Sockets), Cores: uint64(ni.Cores), Threads: uint64(ni.Threads),
		MemoryBytes: ni.Memory * 1024,
		DiskPath:    policy.DiskPath, Allocation: policy.Allocation, Reserved: policy.Reserved,
	}
	if policy.DiskPath != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(policy.DiskPath, &st); err != nil {
			// Once per distinct error: a missing path stays missing for
			// every scrape, and the inventory says disk_bytes 0.
			msg := err.Error()
			if prev := c.diskErr.Swap(&msg); prev == nil || *prev != msg {
				c.logger.Warn("Cannot size instance disk path; reporting no disk capacity", "path", policy.DiskPath, "err", err)
			}
		} else {
			h.DiskBytes = st.Blocks * uint64(st.Bsize)
		}
	}
	return h, nil
}

// states reads every domain's state in one call.
func (c *Client) states(conn *libvirt.Connect) (map[string]string, error) {
	stats, err := ReadDomainStats(conn, libvirt.DOMAIN_STATS_STATE, 0)
	if err != nil {
		return nil, fmt.Errorf("domain states: %w", err)
	}
	defer stats.Close()
	out := make(map[string]string, stats.Len())
	for _, s := range stats.Domains {
		if s.UUID != "" && s.State != nil {
			out[s.UUID] = stateNames[s.State.State]
		}
	}
	return out, nil
}

func inventoryDomain(d *domxml.Domain, state string) inventory.Domain {
	out := inventory.Domain{UUID: d.UUID, Name: d.Name, State: state, VCPUs: d.CurrentVCPUs,
		MemoryBytes: d.MaxMemoryBytes, CurrentMemoryBytes: d.CurrentMemoryBytes,
		Disks: []inventory.Disk{}, NICs: []inventory.NIC{}}
	for _, k := range d.Disks {
		out.Disks = append(out.Disks, inventory.Disk{TargetDevice: k.TargetDevice, Device: k.Device, Bus: k.TargetBus,
			Source: k.Source, SourceProtocol: k.SourceProtocol})
	}
	for _, n := range d.Interfaces {
		out.NICs = append(out.NICs, inventory.NIC{MAC: n.MAC, TargetDevice: n.TargetDevice, Source: n.Source, Model: n.ModelType})
	}
	if n := d.Nova; n != nil {
		out.Metadata = inventory.Metadata{DisplayName: n.Name, ProjectID: n.ProjectID, ProjectName: n.ProjectName,
			UserID: n.UserID, UserName: n.UserName, Flavor: n.FlavorName,
			FlavorVCPUs: n.FlavorVCPUs, FlavorMemoryMiB: n.FlavorMemoryMiB, FlavorDiskGiB: n.FlavorDiskGiB}
	}
	return out
}
