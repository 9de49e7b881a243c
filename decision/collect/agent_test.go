package collect

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

func agentInventory(host string, n int) *inventory.Inventory {
	inv := &inventory.Inventory{
		SchemaVersion: inventory.SchemaVersion,
		CollectedAt:   time.Now(),
		Host: inventory.Host{Hostname: host, CPUs: 32, MemoryBytes: 256 << 30, DiskBytes: 2 << 40, DiskPath: "/var/lib/nova/instances",
			Allocation: inventory.AllocationRatios{CPU: 4, Memory: 1.5, Disk: 1},
			Reserved:   inventory.Reserved{CPUs: 2, MemoryBytes: 8 << 30}},
	}
	for i := 0; i < n; i++ {
		inv.Domains = append(inv.Domains, inventory.Domain{
			UUID: host + "-uuid-" + string(rune('a'+i)), Name: "instance-" + string(rune('a'+i)), State: "running",
			VCPUs: 2, MemoryBytes: 4 << 30,
			Metadata: inventory.Metadata{DisplayName: "web-" + string(rune('a'+i)), ProjectID: "p1", Flavor: "m1.medium", FlavorDiskGiB: 40},
		})
	}
	inv.Domains[0].State = "shutoff"
	return inv
}

// TestAgentInventoryEvents: the events `ballast exporter` publishes feed the
// event inventory.
func TestAgentInventoryEvents(t *testing.T) {
	e := NewEventInventory(nil)
	for _, h := range []string{"hv-1", "hv-2"} {
		ev, err := inventory.NewEvent("ballast-exporter/"+h, agentInventory(h, 3))
		require.NoError(t, err)
		require.NoError(t, e.Handle(context.Background(), ev))
	}
	c, err := e.Inventory(context.Background())
	require.NoError(t, err)
	require.Len(t, c.Hosts, 2)
	require.Len(t, c.Instances, 6)
	h := c.Hosts[0]
	require.Equal(t, "hv-1", h.Name)
	require.Equal(t, 32, h.Capacity.VCPUs)
	require.Equal(t, int64(256<<10), h.Capacity.MemoryMB)
	require.Equal(t, 4.0, h.AllocationRatio.VCPU)
	require.Equal(t, int64(8<<10), h.Reserved.MemoryMB)
	in := c.Instances[0]
	require.Equal(t, "hv-1", in.Host)
	require.Equal(t, 2, in.Flavor.VCPUs)
	require.Equal(t, int64(4096), in.Flavor.MemoryMB)
	require.Equal(t, int64(40), in.Flavor.DiskGB)

	// A future major version is refused as poison, not guessed at.
	inv := agentInventory("hv-3", 1)
	inv.SchemaVersion = "2"
	ev, err := bus.NewEvent("x", bus.TypeInventory, "hv-3", inv)
	require.NoError(t, err)
	require.True(t, bus.IsPermanent(e.Handle(context.Background(), ev)))
}

// TestMetricInventoryMatchesEvents: the inventory read back from the
// ballast_inventory_* series an agent exposes equals the one its events
// carry — the two paths build the same model.
func TestMetricInventoryMatchesEvents(t *testing.T) {
	st, err := tsdb.Open(tsdb.Config{Path: t.TempDir()}, nil, nil)
	require.NoError(t, err)
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	app := st.Appender(context.Background())
	events := NewEventInventory(nil)
	for i, h := range []string{"hv-1", "hv-2"} {
		inv := agentInventory(h, 2+i)
		ev, err := inventory.NewEvent("agent", inv)
		require.NoError(t, err)
		require.NoError(t, events.Handle(context.Background(), ev))

		// What a scrape of that agent stores: its series plus target labels.
		reg := prometheus.NewRegistry()
		c, err := inventory.New(func() (*inventory.Inventory, error) { return inv, nil }, nil)
		require.NoError(t, err)
		reg.MustRegister(collectorAdapter{c})
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				b := labels.NewScratchBuilder(0)
				b.Add("__name__", mf.GetName())
				b.Add("instance", h+":9177")
				b.Add("job", "hypervisors")
				for _, lp := range m.GetLabel() {
					b.Add(lp.GetName(), lp.GetValue())
				}
				b.Sort()
				_, err := app.Append(0, b.Labels(), now.UnixMilli(), m.GetGauge().GetValue())
				require.NoError(t, err)
			}
		}
	}
	require.NoError(t, app.Commit())
	q, err := datasource.NewLocal(st.Engine(), st.Queryable())
	require.NoError(t, err)
	got, err := (&MetricInventory{Querier: q, Now: func() time.Time { return now }}).Inventory(context.Background())
	require.NoError(t, err)
	want, err := events.Inventory(context.Background())
	require.NoError(t, err)
	require.Equal(t, want.Hosts, got.Hosts)
	require.Equal(t, want.Instances, got.Instances)
}

// collectorAdapter registers a one-method exporter collector.
type collectorAdapter struct{ c *inventory.Collector }

func (a collectorAdapter) Describe(chan<- *prometheus.Desc)    {}
func (a collectorAdapter) Collect(ch chan<- prometheus.Metric) { _ = a.c.Update(ch) }

func TestInventoriesMerge(t *testing.T) {
	a := NewEventInventory(nil)
	ev, err := inventory.NewEvent("agent", agentInventory("hv-1", 2))
	require.NoError(t, err)
	require.NoError(t, a.Handle(context.Background(), ev))
	b := NewEventInventory(nil)
	for _, h := range []string{"hv-1", "hv-2"} {
		ev, err := inventory.NewEvent("agent", agentInventory(h, 3))
		require.NoError(t, err)
		require.NoError(t, b.Handle(context.Background(), ev))
	}
	c, err := Inventories{a, b}.Inventory(context.Background())
	require.NoError(t, err)
	require.Len(t, c.Hosts, 2)
	require.Len(t, c.Instances, 5, "hv-1 from the first inventory (2), hv-2 from the second (3)")
}
