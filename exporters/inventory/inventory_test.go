package inventory

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

func sample() *Inventory {
	return &Inventory{
		SchemaVersion: SchemaVersion,
		CollectedAt:   time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		Host: Host{Hostname: "hv-07", Hypervisor: "QEMU", LibvirtVersion: "9.0.0", CPUModel: "x86_64", CPUMHz: 2400,
			CPUs: 32, NUMANodes: 2, Sockets: 2, Cores: 8, Threads: 2, MemoryBytes: 256 << 30,
			DiskBytes: 2 << 40, DiskPath: "/var/lib/nova/instances",
			Allocation: AllocationRatios{CPU: 4, Memory: 1.5, Disk: 1},
			Reserved:   Reserved{CPUs: 2, MemoryBytes: 8 << 30}},
		Domains: []Domain{{
			UUID: "4d9e6f7c-6c1a-4c51-9d2e-1f0e3b2a8c11", Name: "instance-0000002a", State: "running",
			VCPUs: 2, MemoryBytes: 2 << 30, CurrentMemoryBytes: 1536 << 20,
			Disks: []Disk{{TargetDevice: "vda", Device: "disk", Bus: "virtio", Source: "vms/4d9e6f7c_disk", SourceProtocol: "rbd"}},
			NICs:  []NIC{{MAC: "fa:16:3e:12:34:56", TargetDevice: "tap1234abcd-ef", Source: "br-int", Model: "virtio"}},
			Metadata: Metadata{DisplayName: "web-1", ProjectID: "0f1e", ProjectName: "shop", UserID: "8a1b", UserName: "alice",
				Flavor: "m1.small", FlavorVCPUs: 2, FlavorMemoryMiB: 2048, FlavorDiskGiB: 20},
		}},
	}
}

func TestGolden(t *testing.T) {
	logger, _ := scrapetest.Logger()
	c, err := New(func() (*Inventory, error) { return sample(), nil }, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "inventory", c, logger)
	scrapetest.CompareGolden(t, reg, "testdata/inventory.golden")
	scrapetest.Promtool(t, reg)
}

func TestSourceFailure(t *testing.T) {
	logger, logs := scrapetest.Logger()
	c, err := New(func() (*Inventory, error) { return nil, errors.New("libvirt is down") }, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "inventory", c, logger)
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "inventory"))
	require.Contains(t, logs.String(), "read inventory: libvirt is down")
}

// The event carries the whole inventory, keyed by host, and decodes back
// to the same value: the schema is the JSON form documented in docs/inventory.md.
func TestEventRoundTrip(t *testing.T) {
	inv := sample()
	e, err := NewEvent("ballast-exporter/hv-07", inv)
	require.NoError(t, err)
	require.Equal(t, bus.TypeInventory, e.Type)
	require.Equal(t, "hv-07", e.Subject)
	var back Inventory
	require.NoError(t, e.Decode(&back))
	require.Equal(t, *inv, back)

	var raw map[string]any
	require.NoError(t, json.Unmarshal(e.Data, &raw))
	require.Equal(t, "1", raw["schema_version"])
	host := raw["host"].(map[string]any)
	require.Equal(t, map[string]any{"cpu": 4.0, "memory": 1.5, "disk": 1.0}, host["allocation_ratios"])
}

func TestFormatVersion(t *testing.T) {
	require.Equal(t, "9.0.0", FormatVersion(9000000))
	require.Equal(t, "11.6.12", FormatVersion(11006012))
}
