package planner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/action"
)

func mig(inst, from, to string, secs float64) action.Action {
	a := action.NewMigrate(action.MigrateParams{Live: true, Source: from, Destination: to, InstanceID: inst}, false)
	a.EstimatedDurationSeconds = secs
	return a
}

func byParam(p *Plan) map[string]action.Action {
	out := map[string]action.Action{}
	for _, a := range p.Actions {
		key := string(a.Type) + ":" + a.Param("resource_name") + a.Param("state")
		if a.Type == action.Migrate {
			key = "migrate:" + a.Param("resource_id")
		}
		out[key] = a
	}
	return out
}

func TestOrderings(t *testing.T) {
	acts := []action.Action{
		mig("i1", "src", "dst", 60),
		mig("i2", "src", "dst", 60),
		mig("i3", "other", "dst2", 60),
		action.NewServiceState("", "src", false, "watcher_disabled"),
		action.NewServiceState("", "dst", true, ""),
		action.NewPowerState("", "dst", true),
		action.NewHostState("", "src", "maintenance", ""),
		action.NewPowerState("", "other", false),
	}
	p, err := Build(acts, Options{})
	require.NoError(t, err)
	require.Len(t, p.Actions, len(acts))
	a := byParam(p)
	disable := a["change_nova_service_state:srcdisabled"].ID
	enable := a["change_nova_service_state:dstenabled"].ID
	powerOn := a["change_node_power_state:dston"].ID
	// Disable before evacuating, enable (after power-on) before receiving.
	require.ElementsMatch(t, []string{disable, enable, powerOn}, a["migrate:i1"].Parents)
	require.ElementsMatch(t, []string{powerOn}, a["change_nova_service_state:dstenabled"].Parents)
	// No barrier between independent migrations.
	require.Empty(t, a["migrate:i3"].Parents)
	// Maintenance and power-off only after the host's migrations.
	require.ElementsMatch(t, []string{a["migrate:i1"].ID, a["migrate:i2"].ID, disable}, a["change_host_state:srcmaintenance"].Parents)
	require.ElementsMatch(t, []string{a["migrate:i3"].ID}, a["change_node_power_state:otheroff"].Parents)
	// Parents come first in the list.
	seen := map[string]bool{}
	for _, x := range p.Actions {
		for _, par := range x.Parents {
			require.True(t, seen[par], "parent listed after child")
		}
		seen[x.ID] = true
	}
	require.Equal(t, 4, p.Depth) // power on → enable → migrate → maintenance
}

func TestScheduleRespectsLimits(t *testing.T) {
	var acts []action.Action
	for i := 0; i < 6; i++ {
		acts = append(acts, mig(string(rune('a'+i)), "src", "dst", 10))
	}
	p, err := Build(acts, Options{PerHost: 2, Global: 16})
	require.NoError(t, err)
	// Six migrations through one pair of hosts, two at a time: 30 s.
	require.InDelta(t, 30, p.EstimatedSeconds, 1e-9)
	require.InDelta(t, 60, p.SerialSeconds, 1e-9)
	require.Equal(t, 1, p.Depth)
	var spread []action.Action
	for i := 0; i < 6; i++ {
		spread = append(spread, mig(string(rune('a'+i)), "s"+string(rune('a'+i)), "d"+string(rune('a'+i)), 10))
	}
	p, err = Build(spread, Options{PerHost: 2, Global: 3})
	require.NoError(t, err)
	require.InDelta(t, 20, p.EstimatedSeconds, 1e-9, "global limit of 3")
	for _, a := range p.Actions {
		require.GreaterOrEqual(t, a.EstimatedStartSeconds, 0.0)
	}
}

func TestIDsAreStableAndSequenceKept(t *testing.T) {
	acts := []action.Action{action.NewNop("a"), action.NewNop("b"), action.NewSleep(3)}
	p1, err := Build(acts, Options{})
	require.NoError(t, err)
	p2, err := Build(acts, Options{})
	require.NoError(t, err)
	require.Equal(t, p1, p2)
	require.Equal(t, []string{p1.Actions[0].ID}, p1.Actions[1].Parents)
	require.Equal(t, []string{p1.Actions[1].ID}, p1.Actions[2].Parents)
	require.InDelta(t, 5, p1.EstimatedSeconds, 1e-9)
	empty, err := Build(nil, Options{})
	require.NoError(t, err)
	require.Empty(t, empty.Actions)
}

func TestUpmapsOfOnePGInOrder(t *testing.T) {
	acts := []action.Action{
		action.NewUpmap("1.a", []action.UpmapPair{{From: 1, To: 2}}, nil),
		action.NewUpmap("1.b", []action.UpmapPair{{From: 1, To: 3}}, nil),
		action.NewUpmap("1.a", []action.UpmapPair{{From: 1, To: 4}}, nil),
	}
	p, err := Build(acts, Options{})
	require.NoError(t, err)
	require.Empty(t, p.Actions[0].Parents)
	require.Equal(t, []string{p.Actions[0].ID}, p.Actions[2].Parents)
}
