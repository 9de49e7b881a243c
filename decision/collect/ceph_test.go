package collect

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixtureMon answers mon commands with the answers a real pacific cluster
// (scripts/ceph.sh: one host, 3 OSDs, failure domain osd) gave, recorded
// in testdata/ceph/<prefix with dashes>.json.
type fixtureMon struct {
	dir      string
	override map[string]string
}

func (m fixtureMon) Command(_ context.Context, prefix string, _ map[string]any) ([]byte, error) {
	if v, ok := m.override[prefix]; ok {
		if v == "" {
			return nil, errors.New("mon down")
		}
		return []byte(v), nil
	}
	return os.ReadFile(filepath.Join(m.dir, strings.ReplaceAll(prefix, " ", "-")+".json"))
}

func TestCephInventory(t *testing.T) {
	mon := fixtureMon{dir: filepath.Join("testdata", "ceph")}
	c, err := (&CephInventory{Mon: mon}).Inventory(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.Validate(), "the model validates")
	ceph := c.Ceph
	require.Len(t, ceph.OSDs, 3)
	for i, o := range ceph.OSDs {
		require.Equal(t, i, o.ID)
		require.True(t, o.Up && o.In)
		require.NotEmpty(t, o.Host, "host bucket from osd tree")
		require.Equal(t, "default", o.CrushLocation["root"])
		require.Positive(t, o.CrushWeight)
		require.Positive(t, o.BytesTotal)
		require.Equal(t, 1.0, o.Reweight)
	}
	require.NotEmpty(t, ceph.Pools)
	for _, p := range ceph.Pools {
		require.Equal(t, "osd", p.FailureDomain, "chooseleaf type 0 in the test cluster's rule")
		require.Equal(t, "default", p.Root)
	}
	require.NotEmpty(t, ceph.PGs)
	upmapped := 0
	for _, pg := range ceph.PGs {
		require.NotEmpty(t, pg.Raw)
		if len(pg.UpmapItems) > 0 {
			upmapped++
			for _, it := range pg.UpmapItems {
				require.Contains(t, pg.Raw, it.From, "raw set has the upmap's source")
				require.Contains(t, pg.Up(), it.To, "the effective set has its target")
			}
		}
	}
	require.Positive(t, upmapped, "the fixture has pg_upmap_items")
}

func TestCephInventoryErrors(t *testing.T) {
	for name, override := range map[string]map[string]string{
		"mon down":           {"osd dump": ""},
		"garbage":            {"osd df": "{not json"},
		"bad pgid":           {"pg dump": `{"pg_stats":[{"pgid":"x","up":[0,1]}]}`},
		"no osds":            {"osd dump": `{"osds":[],"pools":[]}`},
		"pg dump is garbage": {"pg dump": `[1,2`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&CephInventory{Mon: fixtureMon{dir: filepath.Join("testdata", "ceph"), override: override}}).Inventory(context.Background())
			require.ErrorContains(t, err, "ceph inventory")
		})
	}
}

func TestParsePGStatsShapes(t *testing.T) {
	for _, in := range []string{
		`[{"pgid":"1.0","up":[0,1]}]`,
		`{"pg_stats":[{"pgid":"1.0","up":[0,1]}]}`,
		`{"pg_ready":true,"pg_map":{"pg_stats":[{"pgid":"1.0","up":[0,1]}]}}`,
	} {
		got, err := parsePGStats([]byte(in))
		require.NoError(t, err, in)
		require.Len(t, got, 1, in)
		require.Equal(t, []int{0, 1}, got[0].Up)
	}
}

// Degraded PGs (a hole in the up set) and erasure-coded pools stay out of
// the model.
func TestCephDegradedLeftOut(t *testing.T) {
	dump := cephOSDDump{}
	require.NoError(t, jsonUnmarshal(`{"osds":[{"osd":0,"up":1,"in":1,"weight":1},{"osd":1,"up":1,"in":1,"weight":1}],
		"pools":[{"pool":1,"pool_name":"r","type":1,"size":2,"pg_num":2},{"pool":2,"pool_name":"ec","type":3,"size":3,"pg_num":1}]}`, &dump))
	pgs := []cephPG{{PGID: "1.0", Up: []int{0, 1}}, {PGID: "1.1", Up: []int{0, 2147483647}}, {PGID: "2.0", Up: []int{0, 1, 1}}}
	stats := make([]cephPGStat, len(pgs))
	for i, p := range pgs {
		stats[i].PGID, stats[i].Up = p.PGID, p.Up
	}
	c, err := buildCeph(dump, cephOSDDF{}, cephOSDTree{}, nil, stats)
	require.NoError(t, err)
	require.Len(t, c.PGs, 1)
	require.Equal(t, "1.0", c.PGs[0].ID)
	require.Len(t, c.Pools, 1)
}

type cephPG struct {
	PGID string
	Up   []int
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
