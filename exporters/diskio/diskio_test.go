package diskio

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

func novaDomains(t *testing.T) DomainSource {
	doc, err := os.ReadFile("testdata/nova.xml")
	require.NoError(t, err)
	d, err := domxml.Parse(string(doc))
	require.NoError(t, err)
	return func() ([]*domxml.Domain, error) { return []*domxml.Domain{d}, nil }
}

func TestGolden(t *testing.T) {
	logger, _ := scrapetest.Logger()
	c, err := New(Config{ProcPath: "testdata/proc", SysPath: "testdata/sys"}, Deps{Domains: novaDomains(t)}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "diskio", c, logger)
	scrapetest.CompareGolden(t, reg, "testdata/diskio.golden")
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "diskio"))
	// node_exporter's units: sectors of 512 bytes and milliseconds.
	require.Equal(t, 13519402.0*512, scrapetest.Value(t, reg, "node_disk_read_bytes_total", map[string]string{"device": "vda"}))
	require.Equal(t, 294.472, scrapetest.Value(t, reg, "node_disk_io_time_seconds_total", map[string]string{"device": "vda"}))
}

func TestPromtoolOnThisHost(t *testing.T) {
	logger, _ := scrapetest.Logger()
	c, err := New(Config{}, Deps{Domains: novaDomains(t)}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "diskio", c, logger)
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "diskio"))
	scrapetest.Promtool(t, reg)
}

func TestFailures(t *testing.T) {
	t.Run("unreadable diskstats", func(t *testing.T) {
		proc := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(proc, "diskstats"), 0o755)) // reading a directory fails, even as root
		logger, logs := scrapetest.Logger()
		c, err := New(Config{ProcPath: proc, SysPath: "testdata/sys"}, Deps{Domains: novaDomains(t)}, logger)
		require.NoError(t, err)
		reg := scrapetest.Registry(t, "diskio", c, logger)
		require.Equal(t, 0.0, scrapetest.Success(t, reg, "diskio"))
		require.Contains(t, logs.String(), "read diskstats")
		// The VM limits are still reported.
		require.Equal(t, 104857600.0, scrapetest.Value(t, reg, "ballast_domain_disk_iotune_limit_bytes_per_second",
			map[string]string{"target_device": "vda", "op": "total"}))
	})
	t.Run("libvirt down", func(t *testing.T) {
		logger, logs := scrapetest.Logger()
		down := func() ([]*domxml.Domain, error) { return nil, errors.New("connection refused") }
		c, err := New(Config{ProcPath: "testdata/proc", SysPath: "testdata/sys"}, Deps{Domains: down}, logger)
		require.NoError(t, err)
		reg := scrapetest.Registry(t, "diskio", c, logger)
		require.Equal(t, 0.0, scrapetest.Success(t, reg, "diskio"))
		require.Contains(t, logs.String(), "connection refused")
		require.Equal(t, 256.0, scrapetest.Value(t, reg, "ballast_disk_queue_requests", map[string]string{"device": "vda"}))
	})
	t.Run("bad exclude regexp", func(t *testing.T) {
		_, err := New(Config{DeviceExclude: "("}, Deps{}, nil)
		require.ErrorContains(t, err, "collector.diskio.device-exclude")
	})
}

func TestExcludeIsNodeExporters(t *testing.T) {
	re := regexp.MustCompile(DefaultDeviceExclude)
	for dev, excluded := range map[string]bool{
		"sda": false, "sda1": true, "vda": false, "vdb3": true, "nvme0n1": false, "nvme0n1p2": true,
		"loop0": true, "ram0": true, "zram0": true, "dm-0": false, "md0": false,
	} {
		require.Equal(t, excluded, re.MatchString(dev), dev)
	}
}
