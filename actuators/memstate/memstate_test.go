package memstate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestJournal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	s, err := memstate.Open(path)
	require.NoError(t, err)
	a := action.NewNop("x")
	a.ID = "a1"
	b := action.NewMigrate(action.MigrateParams{Source: "h1", Destination: "h2", InstanceID: "i"}, true)
	b.ID, b.Parents = "a2", []string{"a1"}
	require.NoError(t, s.Add(applier.Plan{ID: "p1", Actions: []applier.Action{{Action: a}, {Action: b}}}))
	require.NoError(t, s.Add(applier.Plan{ID: "p2", State: actuators.StateSucceeded}))
	require.ErrorContains(t, s.Add(applier.Plan{ID: "p1"}), "already stored")
	require.NoError(t, s.TransitionPlan(ctx, "p1", actuators.StatePending, actuators.StateOngoing, ""))
	require.NoError(t, s.TransitionAction(ctx, "a1", actuators.StatePending, actuators.StateOngoing, ""))
	err = s.TransitionAction(ctx, "a1", actuators.StatePending, actuators.StateOngoing, "")
	require.ErrorIs(t, err, actuators.ErrStateConflict)
	require.EqualError(t, err, "action a1 is ONGOING, not PENDING: state changed concurrently")
	require.ErrorContains(t, s.TransitionAction(ctx, "zz", actuators.StatePending, actuators.StateOngoing, ""), "not stored")
	require.NoError(t, s.Close())

	// A crash cut the last line short: it is ignored.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"transition":{"kind":"action","id":"a1","fr`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s, err = memstate.Open(path)
	require.NoError(t, err)
	defer s.Close()
	plans, err := s.UnfinishedPlans(ctx)
	require.NoError(t, err)
	require.Len(t, plans, 1)
	require.Equal(t, actuators.StateOngoing, plans[0].State)
	require.Equal(t, actuators.StateOngoing, plans[0].Actions[0].State)
	require.Equal(t, actuators.StatePending, plans[0].Actions[1].State)
	require.Equal(t, []string{"a1"}, plans[0].Actions[1].Parents)
	require.Equal(t, "h2", plans[0].Actions[1].Param("destination_node"))
	require.Len(t, s.History(), 2)
	// The next append starts on a line of its own.
	require.NoError(t, s.TransitionAction(ctx, "a1", actuators.StateOngoing, actuators.StateSucceeded, ""))
	require.NoError(t, s.Close())
	s, err = memstate.Open(path)
	require.NoError(t, err)
	st, _ := s.ActionState("a1")
	require.Equal(t, actuators.StateSucceeded, st)
	require.NoError(t, s.Close())
}
