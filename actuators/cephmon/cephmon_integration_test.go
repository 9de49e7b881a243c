package cephmon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/actuators/cephreweight"
	"github.com/ballast-cloud/ballast/actuators/cephupmap"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// roundTrip gives actions the shapes the API's store gives back: numbers
// as float64, lists as []any.
func roundTrip(t *testing.T, acts ...action.Action) []action.Action {
	t.Helper()
	b, err := json.Marshal(acts)
	require.NoError(t, err)
	var out []action.Action
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

type cephRun struct {
	t     *testing.T
	store *memstate.Store
	ap    *applier.Applier
}

func (r *cephRun) apply(id, state string, acts []action.Action, actionStates ...string) applier.Result {
	r.t.Helper()
	p := applier.Plan{ID: id, State: state}
	for i, a := range roundTrip(r.t, acts...) {
		a.ID = fmt.Sprintf("%s-%d", id, i)
		pa := applier.Action{Action: a}
		if i < len(actionStates) {
			pa.State = actionStates[i]
		}
		p.Actions = append(p.Actions, pa)
	}
	require.NoError(r.t, r.store.Add(p))
	ex, err := r.ap.Start(context.Background(), p)
	require.NoError(r.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := ex.Wait(ctx)
	require.NoError(r.t, err)
	return res
}

// TestRealCeph applies ceph_upmap and ceph_reweight actions to the cluster
// scripts/ceph.sh started, checks `osd dump` shows them, then checks that
// actions computed on a stale OSD map are skipped, that an interrupted
// action is reconciled, and that weight 1.0 is sent as a float.
func TestRealCeph(t *testing.T) {
	conf := testenv.RequireEnv(t, "CEPH_CONF", "a Ceph cluster (scripts/ceph.sh start DIR; . DIR/env)")
	testenv.Exclusive(t, conf) // tests in other packages create pools and move PGs on it too
	ctx := context.Background()
	logger := slog.Default()
	client, err := cephmon.New(cephmon.Config{ConfigFile: conf}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	mon := func(prefix string, args map[string]any) []byte {
		t.Helper()
		out, err := client.Command(ctx, prefix, args)
		require.NoError(t, err, "ceph %s", prefix)
		return out
	}

	pool := "ballast-applier-" + uuid.NewString()[:8]
	mon("osd pool create", map[string]any{"pool": pool, "pg_num": 8, "pgp_num": 8})
	t.Cleanup(func() {
		_, err := client.Command(ctx, "osd pool rm", map[string]any{"pool": pool, "pool2": pool, "yes_i_really_really_mean_it": true})
		require.NoError(t, err)
	})
	mon("osd pool set", map[string]any{"pool": pool, "var": "size", "val": "2"})
	mon("osd pool application enable", map[string]any{"pool": pool, "app": "rados"})
	m, err := cephmon.ReadOSDMap(ctx, client)
	require.NoError(t, err)
	poolID := -1
	for _, p := range m.Pools {
		if p.Name == pool {
			poolID = p.ID
		}
	}
	require.NotEqual(t, -1, poolID)
	pgid := fmt.Sprintf("%d.0", poolID)
	var up []int
	require.Eventually(t, func() bool {
		pm, err := cephmon.ReadPGMap(ctx, client, pgid)
		require.NoError(t, err)
		up = pm.Up
		return len(up) == 2
	}, time.Minute, 200*time.Millisecond, "pg %s never mapped to 2 OSDs", pgid)
	from, target := up[0], -1
	for _, o := range m.OSDs {
		if !slices.Contains(up, o.ID) {
			target = o.ID
		}
	}
	require.NotEqual(t, -1, target, "the cluster needs a third OSD")
	osd := up[1]
	_, _, _, w := m.OSD(osd)
	require.InDelta(t, 1.0, w, cephreweight.Tolerance)
	t.Cleanup(func() {
		_, _ = client.Command(ctx, "osd rm-pg-upmap-items", map[string]any{"pgid": pgid})
		_, err := client.Command(ctx, "osd reweight", map[string]any{"id": osd, "weight": cephmon.Float(1)})
		require.NoError(t, err)
	})

	up1, err := cephupmap.New(cephupmap.Config{}, cephupmap.Deps{Mon: client}, logger)
	require.NoError(t, err)
	rw, err := cephreweight.New(cephreweight.Config{}, cephreweight.Deps{Mon: client}, logger)
	require.NoError(t, err)
	store := memstate.New()
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: actuators.Registry{
		action.CephUpmap: up1, action.CephReweight: rw}}, logger)
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	r := &cephRun{t: t, store: store, ap: ap}
	items := []action.UpmapPair{{From: from, To: target}}

	// 1. Upmap and reweight as planned.
	res := r.apply("apply", "", []action.Action{action.NewUpmap(pgid, items, nil), action.NewReweight(osd, 0.85, 1.0)})
	for i := range 2 {
		st, msg := store.ActionState(fmt.Sprintf("apply-%d", i))
		require.Equal(t, actuators.StateSucceeded, st, "action %d: %s", i, msg)
	}
	require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
	m, err = cephmon.ReadOSDMap(ctx, client)
	require.NoError(t, err)
	require.Equal(t, items, m.Upmap(pgid), "osd dump pg_upmap_items")
	_, _, _, w = m.OSD(osd)
	require.InDelta(t, 0.85, w, cephreweight.Tolerance, "osd dump weight of osd.%d", osd)
	require.Eventually(t, func() bool {
		pm, err := cephmon.ReadPGMap(ctx, client, pgid)
		require.NoError(t, err)
		return slices.Contains(pm.Up, target) && !slices.Contains(pm.Up, from)
	}, 30*time.Second, 200*time.Millisecond, "pg %s up set never moved from osd.%d to osd.%d", pgid, from, target)

	// 2. Actions computed before that change are skipped.
	res = r.apply("stale", "", []action.Action{
		action.NewUpmap(pgid, []action.UpmapPair{{From: up[1], To: target}}, nil), action.NewReweight(osd, 0.7, 1.0)})
	require.Equal(t, actuators.StateSucceeded, res.State)
	require.Equal(t, "One or more actions were skipped.", res.Message)
	st, msg := store.ActionState("stale-0")
	require.Equal(t, actuators.StateSkipped, st)
	require.Equal(t, fmt.Sprintf("Action was skipped automatically: pg %s has pg_upmap_items [%d->%d], the plan expected []", pgid, from, target), msg)
	st, msg = store.ActionState("stale-1")
	require.Equal(t, actuators.StateSkipped, st)
	require.Equal(t, fmt.Sprintf("Action was skipped automatically: osd.%d has reweight 0.8500, the plan expected 1.0000", osd), msg)

	// 3. The applier died after removing the items: the ONGOING action is
	// reconciled, not sent again. Weight 1 goes out as 1.0.
	remove := action.NewUpmap(pgid, nil, items)
	require.NoError(t, up1.Execute(ctx, roundTrip(t, remove)[0], func(float64) {}))
	res = r.apply("resume", actuators.StateOngoing, []action.Action{remove, action.NewReweight(osd, 1, 0.85)}, actuators.StateOngoing)
	require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
	_, msg = store.ActionState("resume-0")
	require.Equal(t, "The applier restarted while the action ran; it had taken effect.", msg)
	m, err = cephmon.ReadOSDMap(ctx, client)
	require.NoError(t, err)
	require.Empty(t, m.Upmap(pgid))
	_, _, _, w = m.OSD(osd)
	require.InDelta(t, 1.0, w, cephreweight.Tolerance)

	// 4. A PG that does not exist is skipped; a refused command fails
	// with the mon's reason.
	res = r.apply("missing", "", []action.Action{action.NewUpmap(fmt.Sprintf("%d.ff", poolID), items, nil)})
	require.Equal(t, actuators.StateSucceeded, res.State)
	st, msg = store.ActionState("missing-0")
	require.Equal(t, actuators.StateSkipped, st)
	require.Equal(t, fmt.Sprintf("Action was skipped automatically: pg %d.ff does not exist", poolID), msg)
	_, err = client.Command(ctx, "osd pg-upmap-items", map[string]any{"pgid": "4242.0", "id": []int{0, 1}})
	require.ErrorContains(t, err, "4242.0")
}
