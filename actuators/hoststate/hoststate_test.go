package hoststate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/hoststate"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/nova"
	"github.com/ballast-cloud/ballast/actuators/nova/novatest"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inventory is the interface's contract in a map, as the API's persistence
// implements it in SQLite.
type inventory struct {
	mu     sync.Mutex
	states map[string]string
}

func (i *inventory) SetHostState(_ context.Context, host, state, _ string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.states[host]; !ok {
		return fmt.Errorf("host %s: %w", host, hoststate.ErrUnknownHost)
	}
	i.states[host] = state
	return nil
}

func (i *inventory) HostState(_ context.Context, host string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	st, ok := i.states[host]
	if !ok {
		return "", fmt.Errorf("host %s: %w", host, hoststate.ErrUnknownHost)
	}
	return st, nil
}

// writeOnly hides the read side.
type writeOnly struct{ inv *inventory }

func (w writeOnly) SetHostState(ctx context.Context, host, state, reason string) error {
	return w.inv.SetHostState(ctx, host, state, reason)
}

const token = "nova-token-for-hoststate"

func TestHostState(t *testing.T) {
	tests := []struct {
		state, reason string
		nova, why     string
	}{
		{"disabled", "drain", "disabled", "drain"},
		{"maintenance", "", "disabled", "maintenance"},
		{"maintenance", "disk swap", "disabled", "disk swap"},
		{"enabled", "", "enabled", ""},
	}
	srv := novatest.New(t, token, "compute-1")
	c, err := nova.New(nova.Config{URL: srv.URL(), Token: token}, srv.Client(), nil)
	require.NoError(t, err)
	inv := &inventory{states: map[string]string{"compute-1": "enabled"}}
	h, err := hoststate.New(hoststate.Config{}, hoststate.Deps{Inventory: inv, Nova: c}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.state+"/"+tt.reason, func(t *testing.T) {
			a := action.NewHostState("", "compute-1", tt.state, tt.reason)
			require.NoError(t, h.Precondition(ctx, a))
			require.NoError(t, h.Execute(ctx, a, func(float64) {}))
			st, err := inv.HostState(ctx, "compute-1")
			require.NoError(t, err)
			require.Equal(t, tt.state, st)
			status, reason := srv.Status("compute-1")
			require.Equal(t, tt.nova, status)
			require.Equal(t, tt.why, reason)
			done, err := h.Reconcile(ctx, a)
			require.NoError(t, err)
			require.True(t, done)
		})
	}

	t.Run("unknown host", func(t *testing.T) {
		err := h.Precondition(ctx, action.NewHostState("", "compute-7", "disabled", ""))
		require.ErrorIs(t, err, actuators.ErrSkip)
		require.Equal(t, "host compute-7 is not in the inventory", actuators.SkipReason(err))
	})
	t.Run("nova refuses: the inventory is untouched", func(t *testing.T) {
		srv.Fail(novatest.Failure{Status: 409, Body: `{"conflict": {"message": "Service is busy"}}`})
		err := h.Execute(ctx, action.NewHostState("", "compute-1", "disabled", ""), func(float64) {})
		require.ErrorContains(t, err, "set nova-compute on compute-1 disabled: nova GET")
		require.ErrorContains(t, err, "409 Service is busy")
		st, _ := inv.HostState(ctx, "compute-1")
		require.Equal(t, "enabled", st)
	})
	t.Run("not reconciled yet", func(t *testing.T) {
		done, err := h.Reconcile(ctx, action.NewHostState("", "compute-1", "maintenance", ""))
		require.NoError(t, err)
		require.False(t, done)
	})
	t.Run("bad state", func(t *testing.T) {
		err := h.Precondition(ctx, action.NewHostState("", "compute-1", "off", ""))
		require.ErrorContains(t, err, `change_host_state: input_parameters.state "off" is not enabled, disabled or maintenance`)
	})
}

// An interrupted action on an inventory that cannot be read is FAILED at
// once, never run again.
func TestNotObservable(t *testing.T) {
	inv := &inventory{states: map[string]string{"compute-1": "enabled"}}
	h, err := hoststate.New(hoststate.Config{}, hoststate.Deps{Inventory: writeOnly{inv}}, nil)
	require.NoError(t, err)
	require.NoError(t, h.Precondition(context.Background(), action.NewHostState("", "compute-9", "disabled", "")),
		"without a reader nothing is checked")
	store := memstate.New()
	a := action.NewHostState("", "compute-1", "disabled", "")
	a.ID = "hs-0"
	p := applier.Plan{ID: "hs", State: actuators.StateOngoing, Actions: []applier.Action{{Action: a, State: actuators.StateOngoing}}}
	require.NoError(t, store.Add(p))
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: actuators.Registry{action.ChangeHostState: h}}, nil)
	require.NoError(t, err)
	defer ap.Stop()
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateFailed, res.State)
	st, msg := store.ActionState("hs-0")
	require.Equal(t, actuators.StateFailed, st)
	require.Contains(t, msg, "the inventory cannot report host states: effect cannot be observed")
	got, _ := inv.HostState(context.Background(), "compute-1")
	require.Equal(t, "enabled", got, "not run again")
}
