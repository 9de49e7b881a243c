package exporters

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

func TestHandlerServesEveryEnabledCollector(t *testing.T) {
	uri, err := virttest.Host{CPUs: 8, MemoryKiB: 16 << 20, Domains: 3}.Write(t.TempDir())
	require.NoError(t, err)
	// node reads meminfo and stat from the fixture; diskio needs diskstats,
	// which the node fixture lacks: it fails alone and the scrape answers.
	body, _ := scrapeOnce(t, Config{
		ProcPath: "node/testdata/proc", SysPath: "diskio/testdata/sys",
		Libvirt: virt.Config{URI: uri},
		Host:    virt.HostPolicy{Allocation: inventory.AllocationRatios{CPU: 4, Memory: 1, Disk: 1}},
	})
	for _, want := range []string{
		`ballast_exporter_scrape_collector_success{collector="node"} 1`,
		`ballast_exporter_scrape_collector_success{collector="instance"} 1`,
		`ballast_exporter_scrape_collector_success{collector="inventory"} 1`,
		`ballast_exporter_scrape_collector_success{collector="diskio"} 0`,
		`libvirt_up 1`, `libvirt_domains 3`, `node_memory_MemTotal_bytes 1.6042172416e+10`,
		`ballast_inventory_host_cpus 8`,
		`ballast_inventory_host_allocation_ratio{resource="cpu"} 4`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "ceph_", "ceph is off by default")
}

func TestConfigErrors(t *testing.T) {
	logger, _ := scrapetest.Logger()
	_, err := New(Config{Enabled: map[string]bool{"nope": true}}, logger)
	require.ErrorContains(t, err, `collector "nope": unknown`)
	_, err = New(Config{NoLibvirt: true}, logger)
	require.ErrorContains(t, err, "collector instance: needs libvirt")
	e, err := New(Config{NoLibvirt: true, Enabled: map[string]bool{"instance": false, "inventory": false}}, logger)
	require.NoError(t, err)
	require.Equal(t, []string{"diskio", "node"}, e.Collectors())
	require.Nil(t, e.Inventory())
	require.NoError(t, e.Close())
}

func TestCollectorsListed(t *testing.T) {
	var got []string
	for _, c := range Collectors() {
		got = append(got, c.Name)
		require.NotEmpty(t, c.Help)
	}
	require.Equal(t, []string{"ceph", "diskio", "instance", "inventory", "node"}, got)
}

func TestDiskioWithoutLibvirtd(t *testing.T) {
	// libvirtd is down: the instance and inventory collectors fail and say
	// so; diskio still owns the host's disks and succeeds, without VM
	// limits.
	sock := t.TempDir() + "/no-libvirtd.sock"
	body, logs := scrapeOnce(t, Config{
		ProcPath: "diskio/testdata/proc", SysPath: "diskio/testdata/sys",
		Libvirt: virt.Config{URI: "qemu+unix:///system?socket=" + sock},
		Enabled: map[string]bool{"node": false},
	})
	for _, want := range []string{
		`ballast_exporter_scrape_collector_success{collector="diskio"} 1`,
		`ballast_exporter_scrape_collector_success{collector="instance"} 0`,
		`ballast_exporter_scrape_collector_success{collector="inventory"} 0`,
		`libvirt_up 0`,
		`node_disk_read_bytes_total{device=`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, logs, "disk limits")
}

// scrapeOnce serves the agent's handler for cfg and scrapes it once,
// returning the body and what was logged.
func scrapeOnce(t *testing.T, cfg Config) (body, logs string) {
	t.Helper()
	logger, buf := scrapetest.Logger()
	h, closer, err := NewHandler(cfg, logger)
	require.NoError(t, err)
	defer closer.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b), buf.String()
}
