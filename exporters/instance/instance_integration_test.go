package instance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/deploy/testenv"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// tinyGuest is a 64 MiB TCG guest with a 4 MiB raw disk and a tap NIC: no
// OS, SeaBIOS idles, which is enough for libvirt to report every counter.
func tinyGuest(t *testing.T, name, imagesDir, tap string) string {
	t.Helper()
	img := filepath.Join(imagesDir, name+".img")
	require.NoError(t, os.WriteFile(img, make([]byte, 4<<20), 0o644))
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='%s'/><target dev='vda' bus='virtio'/>
      <iotune><total_bytes_sec>10485760</total_bytes_sec></iotune></disk>
    <interface type='ethernet'><mac address='52:54:00:be:ef:%02x'/><target dev='%s' managed='yes'/><model type='virtio'/></interface>
    <serial type='file'><source path='%s'/></serial>
    <graphics type='vnc' port='-1' listen='127.0.0.1'/><video><model type='none'/></video>
    <memballoon model='virtio'/></devices></domain>`, name, img, len(name), tap, filepath.Join(imagesDir, name+".serial"))
}

type realHost struct {
	uri, dir, script string
	conn             *libvirt.Connect
}

func requireHosts(t *testing.T) realHost {
	t.Helper()
	h := realHost{
		uri:    testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTA_URI", "two libvirtd hosts (scripts/libvirt-hosts.sh up DIR)"),
		dir:    testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTS_DIR", "two libvirtd hosts (scripts/libvirt-hosts.sh up DIR)"),
		script: testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTS_SCRIPT", "two libvirtd hosts (scripts/libvirt-hosts.sh up DIR)"),
	}
	testenv.Exclusive(t, h.uri) // restarts hostA's libvirtd; other packages' tests use it too
	conn, err := libvirt.NewConnect(h.uri)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = conn.Close() })
	h.conn = conn
	return h
}

func (h realHost) start(t *testing.T, name, tap string) *libvirt.Domain {
	t.Helper()
	d, err := h.conn.DomainCreateXML(tinyGuest(t, name, filepath.Join(h.dir, "hostA", "images"), tap), 0)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = d.Destroy()
		_ = d.Free()
	})
	return d
}

func realCollector(t *testing.T, uri string) (*Collector, *prometheus.Registry, *scrapetest.Logs) {
	t.Helper()
	logger, logs := scrapetest.Logger()
	client, err := virt.New(virt.Config{URI: uri, DomainCacheTTL: -1}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	c, err := New(Deps{Client: client}, logger)
	require.NoError(t, err)
	return c, scrapetest.Registry(t, "instance", c, logger), logs
}

// TestRealLibvirtd covers what the test driver cannot: the bulk statistics
// of the qemu driver, a libvirtd restart, a domain destroyed mid-scrape and
// the job statistics of a live migration.
func TestRealLibvirtd(t *testing.T) {
	h := requireHosts(t)
	uriB := testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_URI", "two libvirtd hosts")
	migB := testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_MIGRATION_URI", "two libvirtd hosts")
	addrB := testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_ADDR", "two libvirtd hosts")
	name := fmt.Sprintf("bt-%d", os.Getpid()%100000)
	dom := h.start(t, name, "tap-"+name)
	uuid, err := dom.GetUUIDString()
	require.NoError(t, err)
	c, reg, logs := realCollector(t, h.uri)
	sel := map[string]string{"uuid": uuid}
	dev := func(d string) map[string]string { return map[string]string{"uuid": uuid, "target_device": d} }

	t.Run("qemu statistics", func(t *testing.T) {
		// SeaBIOS reads the boot disk within a moment of starting.
		require.Eventually(t, func() bool {
			return scrapetest.Success(t, reg, "instance") == 1 &&
				scrapetest.Value(t, reg, "libvirt_domain_block_stats_read_requests_total", dev("vda")) > 0
		}, time.Minute, 200*time.Millisecond, logs.String())
		require.Positive(t, scrapetest.Value(t, reg, "libvirt_domain_info_cpu_time_seconds_total", sel))
		require.Positive(t, scrapetest.Value(t, reg, "libvirt_domain_block_stats_read_bytes_total", dev("vda")))
		require.Equal(t, float64(4<<20), scrapetest.Value(t, reg, "libvirt_domain_block_stats_capacity_bytes", dev("vda")))
		require.Positive(t, scrapetest.Value(t, reg, "libvirt_domain_memory_stats_rss_bytes", sel))
		require.Equal(t, float64(64<<20), scrapetest.Value(t, reg, "libvirt_domain_info_maximum_memory_bytes", sel))
		require.Positive(t, scrapetest.Value(t, reg, "libvirt_domain_vcpu_time_seconds_total", map[string]string{"uuid": uuid, "vcpu": "0"}))
		scrapetest.Value(t, reg, "libvirt_domain_interface_stats_transmit_bytes_total", dev("tap-"+name))
		require.Equal(t, 0.0, scrapetest.Value(t, reg, "libvirt_domain_job_info_type", sel), "no job running")
		scrapetest.Promtool(t, reg)
	})

	t.Run("libvirtd restart", func(t *testing.T) {
		out, err := exec.Command(h.script, "restart", h.dir, "hostA").CombinedOutput()
		require.NoError(t, err, "%s", out)
		// The first scrape after the restart may still hold the dead
		// connection; within a few scrapes the collector has reconnected.
		require.Eventually(t, func() bool { return scrapetest.Success(t, reg, "instance") == 1 }, time.Minute, 200*time.Millisecond)
		require.Equal(t, 1.0, scrapetest.Value(t, reg, "libvirt_up", nil))
		require.Positive(t, scrapetest.Value(t, reg, "libvirt_domain_info_cpu_time_seconds_total", sel), "the guest survived")
		require.Regexp(t, "Libvirt connection (lost|failed)", logs.String(), "the dead connection was noticed")
		_, _ = h.conn.Close()
	})
	h.conn, err = libvirt.NewConnect(h.uri)
	require.NoError(t, err)
	dom, err = h.conn.LookupDomainByUUIDString(uuid)
	require.NoError(t, err)

	t.Run("domain destroyed during scrape", func(t *testing.T) {
		other := h.start(t, name+"x", "tap-"+name+"x")
		otherUUID, err := other.GetUUIDString()
		require.NoError(t, err)
		c.afterStats = func(conn *libvirt.Connect) {
			require.NoError(t, other.Destroy()) // transient: it is gone
			c.afterStats = nil
		}
		require.Equal(t, 1.0, scrapetest.Success(t, reg, "instance"), logs.String())
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					require.False(t, lp.GetName() == "uuid" && lp.GetValue() == otherUUID, mf.GetName())
				}
			}
		}
	})

	t.Run("migration job", func(t *testing.T) {
		// Throttle so the job lasts long enough to be scraped.
		require.NoError(t, dom.MigrateSetMaxSpeed(4, 0))
		done := make(chan error, 1)
		go func() {
			p := &libvirt.DomainMigrateParameters{URI: "tcp://" + addrB, URISet: true}
			done <- dom.MigrateToURI3(migB, p, libvirt.MIGRATE_LIVE|libvirt.MIGRATE_PEER2PEER|libvirt.MIGRATE_UNSAFE)
		}()
		sawJob := false
		deadline := time.After(2 * time.Minute)
	poll:
		for {
			select {
			case err := <-done:
				require.NoError(t, err)
				break poll
			case <-deadline:
				t.Fatal("migration did not finish")
			case <-time.After(100 * time.Millisecond):
				mfs, err := reg.Gather()
				require.NoError(t, err)
				for _, mf := range mfs {
					if mf.GetName() != "libvirt_domain_job_info_data_total_bytes" {
						continue
					}
					for _, m := range mf.GetMetric() {
						if m.GetGauge().GetValue() > 0 {
							sawJob = true
						}
					}
				}
			}
		}
		require.True(t, sawJob, "job statistics were reported during the migration")
		_, regB, _ := realCollector(t, uriB)
		require.Equal(t, 1.0, scrapetest.Success(t, regB, "instance"))
		require.Equal(t, 1.0, scrapetest.Value(t, regB, "libvirt_domain_info_state", sel), "running on host B")
		connB, err := libvirt.NewConnect(uriB)
		require.NoError(t, err)
		defer connB.Close()
		if d, err := connB.LookupDomainByUUIDString(uuid); err == nil {
			_ = d.Destroy()
			_ = d.Free()
		}
	})
}
