package ceph

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

func cephCLI(t *testing.T, conf string, args ...string) []byte {
	t.Helper()
	bin := testenv.RequireBinary(t, "ceph")
	out, err := exec.Command(bin, append([]string{"--conf", conf, "--connect-timeout", "20"}, args...)...).Output()
	require.NoError(t, err, "ceph %s", strings.Join(args, " "))
	return out
}

// TestRealCluster scrapes the cluster scripts/ceph.sh started and checks
// the collector against `ceph osd df -f json` and `ceph osd dump -f json`
// read from the same cluster.
func TestRealCluster(t *testing.T) {
	conf := testenv.RequireEnv(t, "CEPH_CONF", "a Ceph cluster (scripts/ceph.sh start DIR)")
	testenv.Exclusive(t, conf) // tests in other packages create pools and move PGs on it too
	const pool = "ballast-collector-test"
	cephCLI(t, conf, "osd", "pool", "create", pool, "8", "8")
	t.Cleanup(func() { cephCLI(t, conf, "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it") })
	cephCLI(t, conf, "osd", "pool", "set", pool, "size", "2")
	cephCLI(t, conf, "osd", "pool", "application", "enable", pool, "rados")
	cephCLI(t, conf, "osd", "reweight", "1", "0.85")
	t.Cleanup(func() { cephCLI(t, conf, "osd", "reweight", "1", "1.0") })

	logger, logs := scrapetest.Logger()
	col, err := New(Config{ConfigFile: conf, Timeout: 20 * time.Second}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = col.Close() })
	reg := scrapetest.Registry(t, "ceph", col, logger)

	// PGs of a new pool peer for a few seconds; compare once placement is stable.
	var poolID string
	require.Eventually(t, func() bool {
		var pgs struct {
			PGStats []pgBrief `json:"pg_stats"`
		}
		if json.Unmarshal(cephCLI(t, conf, "pg", "ls-by-pool", pool, "-f", "json"), &pgs) != nil || len(pgs.PGStats) != 8 {
			return false
		}
		for _, p := range pgs.PGStats {
			if p.State != "active+clean" {
				return false
			}
			poolID, _, _ = strings.Cut(p.PGID, ".")
		}
		return true
	}, 120*time.Second, time.Second, "pool %s never became active+clean", pool)

	pgID := poolID + ".0"
	var mapping struct {
		Up []int `json:"up"`
	}
	require.NoError(t, json.Unmarshal(cephCLI(t, conf, "pg", "map", pgID, "-f", "json"), &mapping))
	target := -1
	for _, o := range []int{0, 1, 2} {
		if o != mapping.Up[0] && o != mapping.Up[1] {
			target = o
		}
	}
	cephCLI(t, conf, "osd", "pg-upmap-items", pgID, fmt.Sprint(mapping.Up[0]), fmt.Sprint(target))

	require.Equal(t, 1.0, scrapetest.Success(t, reg, "ceph"), logs.String())
	require.Equal(t, 1.0, scrapetest.Value(t, reg, "ballast_ceph_up", nil))
	scrapetest.Promtool(t, reg, mgrModuleNames)

	var df osdDFReply
	require.NoError(t, json.Unmarshal(cephCLI(t, conf, "osd", "df", "-f", "json"), &df))
	require.Len(t, df.Nodes, 3)
	for _, n := range df.Nodes {
		d := map[string]string{"ceph_daemon": n.Name}
		require.Equal(t, float64(n.KB)*1024, scrapetest.Value(t, reg, "ceph_osd_stat_bytes", d), n.Name)
		require.Equal(t, n.CrushWeight, scrapetest.Value(t, reg, "ballast_ceph_osd_crush_weight", d), n.Name)
		require.Equal(t, n.Reweight, scrapetest.Value(t, reg, "ceph_osd_weight", d), n.Name)
		require.Equal(t, 1.0, scrapetest.Value(t, reg, "ceph_osd_up", d), n.Name)
		// Usage moves with every write the OSDs make, so allow the drift
		// between two reads a moment apart.
		require.InDelta(t, float64(n.KBUsed)*1024, scrapetest.Value(t, reg, "ceph_osd_stat_bytes_used", d), 8<<20, n.Name)
	}
	require.InDelta(t, 0.85, scrapetest.Value(t, reg, "ceph_osd_weight", map[string]string{"ceph_daemon": "osd.1"}), 1e-4, "reweight is stored as a 16.16 fixed-point number")
	require.Equal(t, 8.0, scrapetest.Value(t, reg, "ceph_pg_total", map[string]string{"pool_id": poolID}))
	require.Equal(t, 2.0, scrapetest.Value(t, reg, "ballast_ceph_pool_size", map[string]string{"pool_id": poolID}))
	require.Equal(t, 1.0, scrapetest.Value(t, reg, "ceph_pool_metadata", map[string]string{"pool_id": poolID, "name": pool}))

	var dump osdDumpReply
	require.NoError(t, json.Unmarshal(cephCLI(t, conf, "osd", "dump", "-f", "json"), &dump))
	require.NotEmpty(t, dump.PGUpmapItems)
	require.Equal(t, float64(len(dump.PGUpmapItems)), scrapetest.Value(t, reg, "ballast_ceph_upmap_items", nil))
	for _, fam := range []string{"ceph_health_status", "ballast_ceph_balancer_active", "ceph_cluster_total_bytes"} {
		scrapetest.Value(t, reg, fam, nil)
	}
}
