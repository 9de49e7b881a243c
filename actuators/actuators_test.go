package actuators_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestParams(t *testing.T) {
	a := action.Action{Type: action.CephReweight, InputParameters: map[string]any{
		"s": "x", "empty": "", "f": 0.5, "i": 3, "jf": json.Number("2"), "bad": json.Number("x"), "frac": 1.5, "nan": "nope",
	}}
	s, err := actuators.StringParam(a, "s")
	require.NoError(t, err)
	require.Equal(t, "x", s)
	_, err = actuators.StringParam(a, "empty")
	require.EqualError(t, err, "ceph_reweight: input_parameters.empty must be a non-empty string")
	_, err = actuators.StringParam(a, "missing")
	require.EqualError(t, err, "ceph_reweight: input_parameters.missing is required")
	f, err := actuators.FloatParam(a, "f")
	require.NoError(t, err)
	require.Equal(t, 0.5, f)
	i, err := actuators.IntParam(a, "i")
	require.NoError(t, err)
	require.Equal(t, 3, i)
	i, err = actuators.IntParam(a, "jf")
	require.NoError(t, err)
	require.Equal(t, 2, i)
	_, err = actuators.FloatParam(a, "bad")
	require.ErrorContains(t, err, `input_parameters.bad "x" is not a number`)
	_, err = actuators.IntParam(a, "frac")
	require.EqualError(t, err, "ceph_reweight: input_parameters.frac 1.5 must be an integer")
	_, err = actuators.FloatParam(a, "nan")
	require.EqualError(t, err, "ceph_reweight: input_parameters.nan must be a number, not string")
}

func TestRegistry(t *testing.T) {
	r := actuators.Registry{action.Nop: nil, action.Sleep: nil}
	_, err := r.Lookup(action.Migrate)
	require.EqualError(t, err, `no actuator for action type "migrate" (configured: nop, sleep)`)
	err = actuators.Skip("instance %s is gone", "i-1")
	require.ErrorIs(t, err, actuators.ErrSkip)
	require.Equal(t, "instance i-1 is gone", actuators.SkipReason(err))
}

func TestRetry(t *testing.T) {
	errBusy := errors.New("busy")
	errFatal := errors.New("fatal")
	tests := []struct {
		name    string
		results []error
		backoff actuators.Backoff
		calls   int
		want    error
	}{
		{"success", []error{nil}, actuators.Backoff{}, 1, nil},
		{"retried then success", []error{actuators.Retryable(errBusy, time.Millisecond), actuators.Retryable(errBusy, 0), nil},
			actuators.Backoff{Initial: time.Millisecond}, 3, nil},
		{"not retryable", []error{errFatal, nil}, actuators.Backoff{}, 1, errFatal},
		{"attempts run out", []error{actuators.Retryable(errBusy, 0), actuators.Retryable(errBusy, 0), nil},
			actuators.Backoff{Initial: time.Millisecond, Attempts: 2}, 2, errBusy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := actuators.Retry(context.Background(), tt.backoff, func(context.Context) error {
				calls++
				return tt.results[calls-1]
			})
			require.Equal(t, tt.calls, calls)
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := actuators.Retry(ctx, actuators.Backoff{Attempts: -1}, func(context.Context) error { return actuators.Retryable(errBusy, time.Hour) })
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errBusy)
	require.Nil(t, actuators.Retryable(nil, 0))
}
