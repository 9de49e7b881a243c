package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// TestRealCephLoop drives the Watcher API of `ballast server` to plan and
// apply a pg-upmap-items exception and an OSD reweight on a real Ceph
// cluster (the actuator strategy carries the actions), then reads `ceph osd
// dump` to see both in force.
func TestRealCephLoop(t *testing.T) {
	conf := testenv.RequireEnv(t, "CEPH_CONF", "a Ceph cluster (scripts/ceph.sh start DIR; . DIR/env)")
	testenv.RequireBinary(t, "ceph")
	ceph := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("ceph", append(args, "--conf", conf)...)
		out, err := cmd.Output()
		require.NoError(t, err, "ceph %v: %s", args, out)
		return out
	}
	pool := fmt.Sprintf("loop%d", time.Now().UnixNano()%100000)
	ceph("osd", "pool", "create", pool, "8", "8")
	ceph("osd", "pool", "set", pool, "size", "2", "--yes-i-really-mean-it")
	t.Cleanup(func() {
		_ = exec.Command("ceph", "--conf", conf, "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it").Run()
	})

	// A PG of the pool, its up set, and an OSD outside it.
	type pgStat struct {
		PGID  string `json:"pgid"`
		State string `json:"state"`
		Up    []int  `json:"up"`
	}
	var pg pgStat
	require.Eventually(t, func() bool {
		var ls struct {
			PGStats []pgStat `json:"pg_stats"`
		}
		if json.Unmarshal(ceph("pg", "ls-by-pool", pool, "-f", "json"), &ls) != nil || len(ls.PGStats) == 0 {
			return false
		}
		for _, s := range ls.PGStats {
			if s.State != "active+clean" || len(s.Up) != 2 {
				return false
			}
		}
		pg = ls.PGStats[0]
		return true
	}, 2*time.Minute, time.Second, "pool %s active+clean with size 2", pool)
	var other int
	for _, id := range []int{0, 1, 2} {
		if !slices.Contains(pg.Up, id) {
			other = id
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ceph", "--conf", conf, "osd", "reweight", fmt.Sprint(other), "1.0").Run()
	})

	dir := t.TempDir()
	cfg := filepath.Join(dir, "ballast.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
simulator: {enabled: false}
exporter: {enabled: false}
watcher: {auth_strategy: noauth}
actuators:
  ceph: {config_file: '%s'}
`, conf)), 0o644))
	p := startServer(t, filepath.Join(dir, "data"), "--config.file", cfg)
	v1 := func(method, path string, body any) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, p.url+path, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, raw)
		out := map[string]any{}
		if len(raw) > 0 {
			require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
		}
		return out
	}

	audit := v1(http.MethodPost, "/v1/audits", map[string]any{
		"audit_type": "ONESHOT", "goal": "unclassified", "strategy": "actuator",
		"parameters": map[string]any{"actions": []any{
			map[string]any{"action_type": "ceph_upmap", "input_parameters": map[string]any{
				"pgid": pg.PGID, "mappings": []any{map[string]any{"from": pg.Up[0], "to": other}}, "previous": []any{}}},
			map[string]any{"action_type": "ceph_reweight", "input_parameters": map[string]any{
				"osd_id": other, "weight": 0.85, "previous_weight": 1.0}},
		}},
	})
	var planID string
	require.Eventually(t, func() bool {
		a := v1(http.MethodGet, "/v1/audits/"+audit["uuid"].(string), nil)
		require.NotEqual(t, "FAILED", a["state"], "audit failed: %v", a["status_message"])
		plans := v1(http.MethodGet, "/v1/action_plans?audit_uuid="+audit["uuid"].(string), nil)["action_plans"].([]any)
		if len(plans) == 0 {
			return false
		}
		planID = plans[0].(map[string]any)["uuid"].(string)
		return true
	}, time.Minute, 250*time.Millisecond)
	v1(http.MethodPost, "/v1/action_plans/"+planID+"/start", map[string]any{})
	require.Eventually(t, func() bool {
		plan := v1(http.MethodGet, "/v1/action_plans/"+planID, nil)
		require.NotContains(t, []any{"FAILED", "CANCELLED"}, plan["state"], "plan: %v", plan["status_message"])
		return plan["state"] == "SUCCEEDED"
	}, 2*time.Minute, 500*time.Millisecond, "the applier executes the plan")

	var dump struct {
		OSDs []struct {
			OSD    int     `json:"osd"`
			Weight float64 `json:"weight"`
		} `json:"osds"`
		Upmaps []struct {
			PGID     string `json:"pgid"`
			Mappings []struct {
				From int `json:"from"`
				To   int `json:"to"`
			} `json:"mappings"`
		} `json:"pg_upmap_items"`
	}
	require.NoError(t, json.Unmarshal(ceph("osd", "dump", "-f", "json"), &dump))
	found := false
	for _, u := range dump.Upmaps {
		if u.PGID == pg.PGID {
			require.Len(t, u.Mappings, 1)
			require.Equal(t, pg.Up[0], u.Mappings[0].From)
			require.Equal(t, other, u.Mappings[0].To)
			found = true
		}
	}
	require.True(t, found, "osd dump lists the pg_upmap_items of %s", pg.PGID)
	for _, o := range dump.OSDs {
		if o.OSD == other {
			require.InDelta(t, 0.85, o.Weight, 1e-4, "osd.%d reweighted", other)
		}
	}
}
