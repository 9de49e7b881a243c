package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

// cephPG is a PG's line in `ceph pg ls-by-pool` and `pg dump pgs`.
type cephPG struct {
	PGID  string `json:"pgid"`
	State string `json:"state"`
	Up    []int  `json:"up"`
}

// cephRig is the real Ceph cluster scripts/ceph.sh started, taken for the
// test, and a `ballast server` whose Ceph actuators and model use it.
type cephRig struct {
	conf string
	url  string
}

func newCephRig(t *testing.T) *cephRig {
	t.Helper()
	conf := testenv.RequireEnv(t, "CEPH_CONF", "a Ceph cluster (scripts/ceph.sh start DIR; . DIR/env)")
	testenv.Exclusive(t, conf) // tests in other packages create pools and move PGs on it too
	testenv.RequireBinary(t, "ceph")
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
	return &cephRig{conf: conf, url: p.url}
}

// ceph runs the ceph CLI and returns its standard output.
func (r *cephRig) ceph(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("ceph", append(args, "--conf", r.conf)...).Output()
	require.NoError(t, err, "ceph %v: %s", args, out)
	return out
}

// pool creates a replicated pool and waits until its PGs are active+clean.
func (r *cephRig) pool(t *testing.T, pgs, size int) (string, []cephPG) {
	t.Helper()
	name := fmt.Sprintf("loop%d", time.Now().UnixNano()%100000)
	r.ceph(t, "osd", "pool", "create", name, fmt.Sprint(pgs), fmt.Sprint(pgs))
	r.ceph(t, "osd", "pool", "set", name, "size", fmt.Sprint(size), "--yes-i-really-mean-it")
	t.Cleanup(func() {
		_ = exec.Command("ceph", "--conf", r.conf, "osd", "pool", "rm", name, name, "--yes-i-really-really-mean-it").Run()
	})
	var list []cephPG
	require.Eventually(t, func() bool {
		var ls struct {
			PGStats []cephPG `json:"pg_stats"`
		}
		if json.Unmarshal(r.ceph(t, "pg", "ls-by-pool", name, "-f", "json"), &ls) != nil || len(ls.PGStats) != pgs {
			return false
		}
		for _, s := range ls.PGStats {
			if s.State != "active+clean" || len(s.Up) != size {
				return false
			}
		}
		list = ls.PGStats
		return true
	}, 2*time.Minute, time.Second, "pool %s active+clean with size %d", name, size)
	return name, list
}

// v1 calls the server's Watcher API and decodes the JSON answer.
func (r *cephRig) v1(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	return callV1(t, r.url, method, path, body)
}

// callV1 sends a Watcher API request at microversion 1.7 without a token
// (the servers under test run auth_strategy noauth), requires a 2xx answer
// and decodes its JSON body.
func callV1(t *testing.T, base, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("OpenStack-API-Version", "infra-optim 1.7")
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

// plan runs a ONESHOT audit and returns its action plan.
func (r *cephRig) plan(t *testing.T, audit map[string]any) map[string]any {
	t.Helper()
	audit["audit_type"] = "ONESHOT"
	a := r.v1(t, http.MethodPost, "/v1/audits", audit)
	var plan map[string]any
	require.Eventually(t, func() bool {
		st := r.v1(t, http.MethodGet, "/v1/audits/"+a["uuid"].(string), nil)
		require.NotEqual(t, "FAILED", st["state"], "audit failed: %v", st["status_message"])
		plans := r.v1(t, http.MethodGet, "/v1/action_plans?audit_uuid="+a["uuid"].(string), nil)["action_plans"].([]any)
		if len(plans) == 0 {
			return false
		}
		plan = r.v1(t, http.MethodGet, "/v1/action_plans/"+plans[0].(map[string]any)["uuid"].(string), nil)
		return true
	}, time.Minute, 250*time.Millisecond)
	return plan
}

// apply starts the plan and waits until it SUCCEEDED.
func (r *cephRig) apply(t *testing.T, planID string) {
	t.Helper()
	r.v1(t, http.MethodPost, "/v1/action_plans/"+planID+"/start", map[string]any{})
	require.Eventually(t, func() bool {
		plan := r.v1(t, http.MethodGet, "/v1/action_plans/"+planID, nil)
		require.NotContains(t, []any{"FAILED", "CANCELLED"}, plan["state"], "plan: %v", plan["status_message"])
		return plan["state"] == "SUCCEEDED"
	}, 2*time.Minute, 500*time.Millisecond, "the applier executes the plan")
}

// TestRealCephLoop drives the Watcher API of `ballast server` to plan and
// apply a pg-upmap-items exception and an OSD reweight on a real Ceph
// cluster (the actuator strategy carries the actions), then reads `ceph osd
// dump` to see both in force.
func TestRealCephLoop(t *testing.T) {
	r := newCephRig(t)
	_, pgs := r.pool(t, 8, 2)
	pg := pgs[0]
	var other int
	for _, id := range []int{0, 1, 2} {
		if !slices.Contains(pg.Up, id) {
			other = id
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ceph", "--conf", r.conf, "osd", "reweight", fmt.Sprint(other), "1.0").Run()
	})

	plan := r.plan(t, map[string]any{
		"goal": "unclassified", "strategy": "actuator",
		"parameters": map[string]any{"actions": []any{
			map[string]any{"action_type": "ceph_upmap", "input_parameters": map[string]any{
				"pgid": pg.PGID, "mappings": []any{map[string]any{"from": pg.Up[0], "to": other}}, "previous": []any{}}},
			map[string]any{"action_type": "ceph_reweight", "input_parameters": map[string]any{
				"osd_id": other, "weight": 0.85, "previous_weight": 1.0}},
		}},
	})
	r.apply(t, plan["uuid"].(string))

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
	require.NoError(t, json.Unmarshal(r.ceph(t, "osd", "dump", "-f", "json"), &dump))
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

// TestRealCephStorageBalance skews a real cluster (pg-upmap-items that put
// a replica of every PG of a new pool on osd.0), then runs a
// storage_balancing audit: the server reads OSDs, pools and PGs from the
// cluster, plans ceph_upmap actions, and the applier applies them; `pg dump`
// then shows every OSD within one PG of the others' share.
func TestRealCephStorageBalance(t *testing.T) {
	r := newCephRig(t)
	name, pgs := r.pool(t, 16, 2)
	for _, pg := range pgs {
		if !slices.Contains(pg.Up, 0) {
			r.ceph(t, "osd", "pg-upmap-items", pg.PGID, fmt.Sprint(pg.Up[0]), "0")
		}
	}
	perOSD := func() map[int]int {
		t.Helper()
		var stats []cephPG
		out := r.ceph(t, "pg", "dump", "pgs_brief", "-f", "json")
		if json.Unmarshal(out, &stats) != nil {
			var wrapped struct {
				PGStats []cephPG `json:"pg_stats"`
			}
			require.NoError(t, json.Unmarshal(out, &wrapped), "%s", out)
			stats = wrapped.PGStats
		}
		n := map[int]int{}
		for _, s := range stats {
			for _, o := range s.Up {
				n[o]++
			}
		}
		return n
	}
	spread := func(n map[int]int) int {
		lo, hi := math.MaxInt, 0
		for _, id := range []int{0, 1, 2} {
			lo, hi = min(lo, n[id]), max(hi, n[id])
		}
		return hi - lo
	}
	var before map[int]int
	require.Eventually(t, func() bool {
		before = perOSD()
		return spread(before) >= 8
	}, time.Minute, time.Second, "the skew is in force")
	t.Logf("PG replicas per OSD before: %v (pool %s)", before, name)

	plan := r.plan(t, map[string]any{
		"goal": "storage_balancing", "strategy": "storage_balance",
		"parameters": map[string]any{"target_max_misplaced_ratio": 1.0},
	})
	ind := map[string]float64{}
	for _, e := range plan["efficacy_indicators"].([]any) {
		m := e.(map[string]any)
		ind[m["name"].(string)] = m["value"].(float64)
	}
	require.Positive(t, ind["pg_remaps_count"], "plan: %v", plan)
	require.Less(t, ind["pg_deviation_after"], ind["pg_deviation_before"], "indicators: %v", ind)
	actions := r.v1(t, http.MethodGet, "/v1/actions?action_plan_uuid="+plan["uuid"].(string), nil)["actions"].([]any)
	require.NotEmpty(t, actions)
	for _, a := range actions {
		require.Equal(t, "ceph_upmap", a.(map[string]any)["action_type"])
	}
	r.apply(t, plan["uuid"].(string))

	var after map[int]int
	require.Eventually(t, func() bool {
		after = perOSD()
		return spread(after) <= 2
	}, time.Minute, time.Second, "balanced: before %v, after %v", before, after)
	t.Logf("PG replicas per OSD after: %v", after)
}
