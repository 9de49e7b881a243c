package instance

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

func newTestDriver(t *testing.T, domains int) (*Collector, *prometheus.Registry, *scrapetest.Logs) {
	t.Helper()
	uri, err := virttest.Host{CPUs: 16, MemoryKiB: 64 << 20, Domains: domains}.Write(t.TempDir())
	require.NoError(t, err)
	logger, logs := scrapetest.Logger()
	client, err := virt.New(virt.Config{URI: uri}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	c, err := New(Deps{Client: client}, logger)
	require.NoError(t, err)
	return c, scrapetest.Registry(t, "instance", c, logger), logs
}

// The test driver's counters move with the wall clock, so the golden file
// holds the families whose values come from the host description.
var deterministic = []string{
	"libvirt_up", "libvirt_domains", "libvirt_domain_info", "libvirt_domain_openstack_info",
	"libvirt_domain_info_state", "libvirt_domain_info_maximum_memory_bytes", "libvirt_domain_info_memory_usage_bytes",
	"libvirt_domain_info_virtual_cpus", "libvirt_domain_vcpu_current", "libvirt_domain_vcpu_maximum",
	"libvirt_domain_block_stats_info", "libvirt_domain_interface_stats_info", "libvirt_domain_memory_stats_actual_balloon_bytes",
}

func TestTestDriverGolden(t *testing.T) {
	_, reg, _ := newTestDriver(t, 3)
	scrapetest.CompareGolden(t, reg, "testdata/testdriver.golden", deterministic...)
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "instance"))
}

func TestTestDriverManyDomains(t *testing.T) {
	const n = 200
	_, reg, _ := newTestDriver(t, n)
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "instance"))
	require.Equal(t, float64(n), scrapetest.Value(t, reg, "libvirt_domains", nil))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	perDomain := map[string]int{}
	for _, mf := range mfs {
		perDomain[mf.GetName()] = len(mf.GetMetric())
	}
	// Every domain has one vCPU time per vCPU (1, 2 or 4), one disk and one NIC.
	for _, fam := range []string{
		"libvirt_domain_info_cpu_time_seconds_total", "libvirt_domain_block_stats_read_bytes_total",
		"libvirt_domain_block_stats_write_requests_total", "libvirt_domain_interface_stats_receive_bytes_total",
		"libvirt_domain_interface_stats_transmit_drops_total", "libvirt_domain_block_stats_capacity_bytes",
	} {
		require.Equal(t, n, perDomain[fam], fam)
	}
	vcpus := 0
	for i := range n {
		vcpus += 1 << (i % 3)
	}
	require.Equal(t, vcpus, perDomain["libvirt_domain_vcpu_time_seconds_total"])
	// Values come from the domain's own description, per domain.
	require.Equal(t, 4.0, scrapetest.Value(t, reg, "libvirt_domain_info_virtual_cpus", map[string]string{"uuid": virttest.UUID(5)}))
	require.Equal(t, float64(1536<<20), scrapetest.Value(t, reg, "libvirt_domain_info_maximum_memory_bytes", map[string]string{"domain": virttest.Name(2)}))
	scrapetest.Promtool(t, reg)
}

// The exporter gathers through scrape.Set.Gather rather than a registry:
// both give the same series, and concurrent scrapes (two Prometheus
// servers, push mode) share the collector's label cache safely.
func TestSetGatherMatchesRegistry(t *testing.T) {
	c, _, _ := newTestDriver(t, 200)
	set := scrape.NewSet(map[string]scrape.Collector{"instance": c}, slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(set))
	series := func(mfs []*dto.MetricFamily) (all []string, fixed []string) {
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				id := mf.GetName() + fmt.Sprint(m.GetLabel())
				all = append(all, id)
				if slices.Contains(deterministic, mf.GetName()) {
					fixed = append(fixed, fmt.Sprintf("%s %g %g", id, m.GetGauge().GetValue(), m.GetCounter().GetValue()))
				}
			}
		}
		return all, fixed
	}
	want, err := reg.Gather()
	require.NoError(t, err)
	wantAll, wantFixed := series(want)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				got, err := set.Gather()
				assert.NoError(t, err)
				gotAll, gotFixed := series(got)
				assert.Equal(t, wantAll, gotAll)
				assert.Equal(t, wantFixed, gotFixed)
			}
		})
	}
	wg.Wait()
}

func TestDomainDestroyedDuringScrape(t *testing.T) {
	c, reg, logs := newTestDriver(t, 5)
	gone := virttest.UUID(3)
	c.afterStats = func(conn *libvirt.Connect) {
		d, err := conn.LookupDomainByUUIDString(gone)
		require.NoError(t, err)
		defer d.Free()
		require.NoError(t, d.Destroy())
		require.NoError(t, d.Undefine())
		c.afterStats = nil
	}
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "instance"))
	require.Nil(t, c.afterStats, "the hook ran")
	require.Contains(t, logs.String(), "Domain vanished during scrape")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				require.False(t, lp.GetName() == "uuid" && lp.GetValue() == gone, "%s has a series of the destroyed domain", mf.GetName())
			}
		}
	}
	require.Equal(t, 4.0, scrapetest.Value(t, reg, "libvirt_domains", nil))
}

func TestShutoffDomainHasNoCounters(t *testing.T) {
	c, reg, _ := newTestDriver(t, 2)
	conn, err := c.client.Conn()
	require.NoError(t, err)
	d, err := conn.LookupDomainByUUIDString(virttest.UUID(0))
	require.NoError(t, err)
	require.NoError(t, d.Destroy())
	require.NoError(t, d.Free())
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "instance"))
	require.Equal(t, float64(libvirt.DOMAIN_SHUTOFF), scrapetest.Value(t, reg, "libvirt_domain_info_state", map[string]string{"uuid": virttest.UUID(0)}))
	require.Equal(t, 2.0, scrapetest.Value(t, reg, "libvirt_domains", nil))
	require.Equal(t, 1.0*2, scrapetest.Value(t, reg, "libvirt_domain_info_virtual_cpus", map[string]string{"uuid": virttest.UUID(1)}))
}

func TestLibvirtdNotRunning(t *testing.T) {
	logger, logs := scrapetest.Logger()
	sock := fmt.Sprintf("%s/no-libvirtd.sock", t.TempDir())
	client, err := virt.New(virt.Config{URI: "qemu+unix:///system?socket=" + sock}, logger)
	require.NoError(t, err)
	c, err := New(Deps{Client: client}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "instance", c, logger)
	for range 2 { // a failed connect is retried on the next scrape
		require.Equal(t, 0.0, scrapetest.Success(t, reg, "instance"))
		require.Equal(t, 0.0, scrapetest.Value(t, reg, "libvirt_up", nil))
	}
	require.Contains(t, logs.String(), "connect to libvirt qemu+unix:///system?socket="+sock)
	require.Contains(t, logs.String(), "Collector failed")
}

func TestNewNeedsClient(t *testing.T) {
	_, err := New(Deps{}, nil)
	require.Error(t, err)
}
