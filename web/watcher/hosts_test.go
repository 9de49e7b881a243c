package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/hoststate"
	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/web/store"
)

// TestHostInventory drives the change_host_state actuator over the
// inventory the API provides.
func TestHostInventory(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	inv := NewHostInventory(e.store, audit.SnapshotModels(e.sim.Snapshot))
	host := e.sim.Snapshot().Hosts[0].Name
	st, err := inv.HostState(t.Context(), host)
	require.NoError(t, err)
	require.Equal(t, "enabled", st, "a host known only to the model has the model's state")
	_, err = inv.HostState(t.Context(), "no-such-host")
	require.ErrorIs(t, err, hoststate.ErrUnknownHost)

	act, err := hoststate.New(hoststate.Config{}, hoststate.Deps{Inventory: inv}, nil)
	require.NoError(t, err)
	a := action.NewHostState("", host, "maintenance", "disk swap")
	require.NoError(t, act.Precondition(t.Context(), a))
	done, err := act.Reconcile(t.Context(), a)
	require.NoError(t, err)
	require.False(t, done)
	ctx := store.WithActor(t.Context(), store.Actor{Name: "system:applier", Role: "system"})
	require.NoError(t, act.Execute(ctx, a, nil))
	st, err = inv.HostState(t.Context(), host)
	require.NoError(t, err)
	require.Equal(t, "maintenance", st)
	done, err = act.Reconcile(t.Context(), a)
	require.NoError(t, err)
	require.True(t, done)
	require.ErrorIs(t, act.Precondition(t.Context(), action.NewHostState("", "no-such-host", "disabled", "")), actuators.ErrSkip)

	entries, err := e.store.ListLog(t.Context(), store.LogFilter{ResourceUUID: host})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "maintenance", entries[0].To)
	require.Equal(t, "system:applier", entries[0].Actor)
	eventually(t, "host state event", 5*time.Second, func() bool {
		for _, ev := range e.events.all() {
			if ev.Type == bus.TypeHostState && ev.Subject == host {
				var hs collect.HostStateEvent
				require.NoError(t, ev.Decode(&hs))
				return hs.State == "maintenance" && hs.DisabledReason == "disk swap"
			}
		}
		return false
	})
	require.Error(t, e.store.SetHostState(t.Context(), host, "asleep", ""))
}
