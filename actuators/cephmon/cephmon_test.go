package cephmon_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The mons reject a float argument written without a decimal point
// (`"weight": 1` → EINVAL bad or missing field 'weight').
func TestFloatKeepsItsDecimalPoint(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{1, "1.0"}, {0, "0.0"}, {0.85, "0.85"}, {0.5, "0.5"}, {1e-7, "0.0000001"}}
	for _, tt := range tests {
		b, err := json.Marshal(map[string]any{"weight": cephmon.Float(tt.in)})
		require.NoError(t, err)
		require.JSONEq(t, `{"weight": `+tt.want+`}`, string(b))
		require.Contains(t, string(b), tt.want)
	}
}

func TestPGIDs(t *testing.T) {
	tests := []struct {
		pgid       string
		pool       int
		seed       uint64
		bad        bool
		existsIn18 bool
	}{
		{"3.0", 3, 0, false, true},
		{"3.a", 3, 10, false, true},
		{"3.1f", 3, 31, false, false},
		{"3", 0, 0, true, false},
		{"x.1", 0, 0, true, false},
		{"3.zz", 0, 0, true, false},
		{"-1.0", 0, 0, true, false},
	}
	var m cephmon.OSDMap
	require.NoError(t, json.Unmarshal([]byte(`{"epoch": 9, "pools": [{"pool": 3, "pool_name": "rbd", "size": 2, "pg_num": 18}],
		"osds": [{"osd": 0, "up": 1, "in": 1, "weight": 1.0}, {"osd": 1, "up": 0, "in": 1, "weight": 0.8499908447265625}],
		"pg_upmap_items": [{"pgid": "3.a", "mappings": [{"from": 0, "to": 1}]}]}`), &m))
	for _, tt := range tests {
		pool, seed, err := cephmon.ParsePGID(tt.pgid)
		if tt.bad {
			require.Error(t, err, tt.pgid)
		} else {
			require.NoError(t, err)
			require.Equal(t, tt.pool, pool)
			require.Equal(t, tt.seed, seed)
		}
		require.Equal(t, tt.existsIn18, m.PGExists(tt.pgid), tt.pgid)
	}
	require.Equal(t, []action.UpmapPair{{From: 0, To: 1}}, m.Upmap("3.a"))
	require.Nil(t, m.Upmap("3.0"))
	exists, up, in, w := m.OSD(1)
	require.True(t, exists)
	require.False(t, up)
	require.True(t, in)
	require.InDelta(t, 0.85, w, 1e-4)
	exists, _, _, _ = m.OSD(7)
	require.False(t, exists)
}

func TestUpmapHelpers(t *testing.T) {
	p := func(f, to int) action.UpmapPair { return action.UpmapPair{From: f, To: to} }
	require.True(t, cephmon.SameUpmap([]action.UpmapPair{p(1, 2), p(3, 4)}, []action.UpmapPair{p(3, 4), p(1, 2)}))
	require.True(t, cephmon.SameUpmap(nil, []action.UpmapPair{}))
	require.False(t, cephmon.SameUpmap([]action.UpmapPair{p(1, 2)}, []action.UpmapPair{p(2, 1)}))
	require.Equal(t, "[1->2,3->4]", cephmon.FormatUpmap([]action.UpmapPair{p(1, 2), p(3, 4)}))
	require.Equal(t, "[]", cephmon.FormatUpmap(nil))
	// up [5,2] with item 1->5: CRUSH chose [1,2].
	require.Equal(t, []int{1, 2}, cephmon.RawSet([]int{5, 2}, []action.UpmapPair{p(1, 5)}))
}

func TestConfig(t *testing.T) {
	c := cephmon.Config{}
	require.NoError(t, c.Validate())
	require.Equal(t, "admin", c.User)
	c = cephmon.Config{User: "client.admin"}
	require.EqualError(t, c.Validate(), `ceph.user: "client.admin" must not start with "client."`)
	cl, err := cephmon.New(cephmon.Config{ConfigFile: "/nonexistent.conf"}, nil)
	require.NoError(t, err, "connects at first use")
	_, err = cl.Command(context.Background(), "osd dump", nil)
	require.ErrorContains(t, err, `read ceph config "/nonexistent.conf"`)
	require.NoError(t, cl.Close())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = cl.Command(ctx, "osd dump", nil)
	require.ErrorIs(t, err, context.Canceled)
}
