package novaservice_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/nova"
	"github.com/ballast-cloud/ballast/actuators/nova/novatest"
	"github.com/ballast-cloud/ballast/actuators/novaservice"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServiceState(t *testing.T) {
	const token = "svc-token"
	srv := novatest.New(t, token, "compute-1")
	c, err := nova.New(nova.Config{URL: srv.URL(), Token: token}, srv.Client(), nil)
	require.NoError(t, err)
	s, err := novaservice.New(novaservice.Config{}, novaservice.Deps{Services: c}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	tests := []struct {
		enabled bool
		reason  string
		status  string
	}{
		{false, "watcher_disabled", "disabled"},
		{true, "", "enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			a := action.NewServiceState("", "compute-1", tt.enabled, tt.reason)
			require.NoError(t, s.Precondition(ctx, a))
			done, err := s.Reconcile(ctx, a)
			require.NoError(t, err)
			require.False(t, done, "not yet in the wanted state")
			require.NoError(t, s.Execute(ctx, a, func(float64) {}))
			status, reason := srv.Status("compute-1")
			require.Equal(t, tt.status, status)
			require.Equal(t, tt.reason, reason)
			done, err = s.Reconcile(ctx, a)
			require.NoError(t, err)
			require.True(t, done)
		})
	}
	err = s.Precondition(ctx, action.NewServiceState("", "compute-5", false, ""))
	require.ErrorIs(t, err, actuators.ErrSkip)
	require.Equal(t, "host compute-5 has no nova-compute service", actuators.SkipReason(err))
	_, err = novaservice.New(novaservice.Config{}, novaservice.Deps{}, nil)
	require.ErrorContains(t, err, "actuators.nova")
}
