package sleep_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators/sleep"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleep(t *testing.T) {
	s, err := sleep.New(sleep.Config{MaxDuration: time.Minute, Tick: time.Millisecond}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	var mu sync.Mutex
	var seen []float64
	progress := func(f float64) {
		mu.Lock()
		seen = append(seen, f)
		mu.Unlock()
	}
	require.NoError(t, s.Precondition(ctx, action.NewSleep(0.02)))
	require.NoError(t, s.Execute(ctx, action.NewSleep(0.02), progress))
	mu.Lock()
	for _, f := range seen {
		require.GreaterOrEqual(t, f, 0.0)
	}
	mu.Unlock()
	require.ErrorContains(t, s.Precondition(ctx, action.NewSleep(61)), "sleep: input_parameters.duration 61s is outside [0, 1m0s] (sleep.max_duration)")
	require.ErrorContains(t, s.Precondition(ctx, action.Action{Type: action.Sleep, InputParameters: map[string]any{}}), "input_parameters.duration is required")

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Execute(cctx, action.NewSleep(50), func(float64) {}) }()
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "sleep interrupted after")
	ok, err := s.Reconcile(ctx, action.NewSleep(50))
	require.NoError(t, err)
	require.True(t, ok)
	_, err = sleep.New(sleep.Config{MaxDuration: -1}, nil)
	require.EqualError(t, err, "sleep.max_duration: -1ns must not be negative")
}
