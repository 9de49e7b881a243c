package virt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

func testClient(t *testing.T, domains int, ttl time.Duration) *Client {
	t.Helper()
	uri, err := virttest.Host{CPUs: 16, MemoryKiB: 64 << 20, Domains: domains}.Write(t.TempDir())
	require.NoError(t, err)
	logger, _ := scrapetest.Logger()
	c, err := New(Config{URI: uri, DomainCacheTTL: ttl}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestInventoryFromTestDriver(t *testing.T) {
	c := testClient(t, 4, -1)
	policy := HostPolicy{DiskPath: t.TempDir(), Allocation: inventory.AllocationRatios{CPU: 4, Memory: 1, Disk: 1},
		Reserved: inventory.Reserved{CPUs: 1}}
	inv, err := c.Inventory(policy)
	require.NoError(t, err)
	require.Equal(t, inventory.SchemaVersion, inv.SchemaVersion)
	require.Equal(t, uint64(16), inv.Host.CPUs)
	require.Equal(t, uint64(64<<30), inv.Host.MemoryBytes)
	require.Equal(t, "TEST", inv.Host.Hypervisor)
	require.Positive(t, inv.Host.DiskBytes, "statfs of the disk path")
	require.Equal(t, policy.Allocation, inv.Host.Allocation)
	require.Len(t, inv.Domains, 4)
	d := inv.Domains[2]
	require.Equal(t, virttest.UUID(2), d.UUID)
	require.Equal(t, "running", d.State)
	require.Equal(t, uint64(4), d.VCPUs)
	require.Equal(t, uint64(1536<<20), d.MemoryBytes)
	require.Equal(t, "m1.f2", d.Metadata.Flavor)
	require.Equal(t, "project2", d.Metadata.ProjectName)
	require.Equal(t, []inventory.Disk{{TargetDevice: "vda", Device: "disk", Bus: "virtio", Source: "/guest/" + virttest.Name(2) + ".img"}}, d.Disks)
	require.Len(t, d.NICs, 1)
	require.Equal(t, "52:54:00:00:00:02", d.NICs[0].MAC)

	// A state change shows in the next inventory.
	conn, err := c.Conn()
	require.NoError(t, err)
	dom, err := conn.LookupDomainByUUIDString(virttest.UUID(2))
	require.NoError(t, err)
	defer dom.Free()
	require.NoError(t, dom.Suspend())
	inv, err = c.Inventory(policy)
	require.NoError(t, err)
	require.Equal(t, "paused", inv.Domains[2].State)
}

func TestDomainsCache(t *testing.T) {
	c := testClient(t, 2, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	first, err := c.Domains()
	require.NoError(t, err)
	require.Len(t, first, 2)

	conn, err := c.Conn()
	require.NoError(t, err)
	dom, err := conn.LookupDomainByUUIDString(virttest.UUID(0))
	require.NoError(t, err)
	require.NoError(t, dom.Destroy())
	require.NoError(t, dom.Undefine())
	require.NoError(t, dom.Free())

	again, err := c.Domains()
	require.NoError(t, err)
	require.Len(t, again, 2, "within the TTL the listing is reused")
	now = now.Add(2 * time.Minute)
	fresh, err := c.Domains()
	require.NoError(t, err)
	require.Len(t, fresh, 1)
	require.Equal(t, virttest.UUID(1), fresh[0].UUID)
}

func TestErrorCodes(t *testing.T) {
	require.True(t, IsNoDomain(libvirt.Error{Code: libvirt.ERR_NO_DOMAIN}))
	require.False(t, IsNoDomain(libvirt.Error{Code: libvirt.ERR_NO_SUPPORT}))
	require.True(t, IsNoSupport(libvirt.Error{Code: libvirt.ERR_NO_SUPPORT}))
	require.False(t, IsNoSupport(nil))
}
