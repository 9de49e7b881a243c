package simmigrate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/simmigrate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSimMigrate(t *testing.T) {
	var slept []time.Duration
	s, err := sim.New(sim.Config{Hosts: 4, Instances: 12, Seed: 5, Sleep: func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return ctx.Err()
	}}, nil, nil)
	require.NoError(t, err)
	m, err := simmigrate.New(simmigrate.Config{}, simmigrate.Deps{Cluster: s}, nil)
	require.NoError(t, err)
	c := s.Snapshot()
	in := c.Instances[0]
	var other, third string
	for _, h := range c.Hosts {
		if h.Name != in.Host && other == "" {
			other = h.Name
		} else if h.Name != in.Host && third == "" {
			third = h.Name
		}
	}
	require.NoError(t, s.SetHostState(third, model.HostDisabled, "test"))
	mig := func(id, src, dst string) action.Action {
		return action.NewMigrate(action.MigrateParams{Live: true, Source: src, Destination: dst, InstanceID: id}, true)
	}
	tests := []struct {
		name string
		act  action.Action
		skip string
	}{
		{"ok", mig(in.UUID, in.Host, other), ""},
		{"scheduler picks", mig(in.UUID, in.Host, ""), ""},
		{"gone", mig("nope", in.Host, other), "instance nope no longer exists"},
		{"already there", mig(in.UUID, other, in.Host), fmt.Sprintf("instance %s already runs on %s", in.UUID, in.Host)},
		{"moved elsewhere", mig(in.UUID, other, third), fmt.Sprintf("instance %s runs on %s, not on source_node %s", in.UUID, in.Host, other)},
		{"destination gone", mig(in.UUID, in.Host, "compute-99999"), "destination_node compute-99999 no longer exists"},
		{"destination disabled", mig(in.UUID, in.Host, third), fmt.Sprintf("destination_node %s is disabled and powered on", third)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Precondition(context.Background(), tt.act)
			if tt.skip == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, actuators.ErrSkip)
			require.Equal(t, tt.skip, actuators.SkipReason(err))
		})
	}
	a := mig(in.UUID, in.Host, other)
	done, err := m.Reconcile(context.Background(), a)
	require.NoError(t, err)
	require.False(t, done)
	require.NoError(t, m.Execute(context.Background(), a, func(float64) {}))
	done, err = m.Reconcile(context.Background(), a)
	require.NoError(t, err)
	require.True(t, done)
	// The migration took the simulator's time, proportional to memory.
	want, err := s.MigrationTime(in.UUID)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{want}, slept)
	err = m.Execute(context.Background(), mig(in.UUID, other, third), func(float64) {})
	require.ErrorContains(t, err, "rejected")
}
