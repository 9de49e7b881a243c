package cephreweight_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/actuators/cephreweight"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Bad parameters are refused before the cluster is asked (the client here
// has no cluster: reaching it would say so). The real-cluster test is in
// actuators/cephmon.
func TestParameters(t *testing.T) {
	mon, err := cephmon.New(cephmon.Config{ConfigFile: "/nonexistent.conf"}, nil)
	require.NoError(t, err)
	r, err := cephreweight.New(cephreweight.Config{}, cephreweight.Deps{Mon: mon}, nil)
	require.NoError(t, err)
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"JSON numbers reach the cluster", map[string]any{"osd_id": 1.0, "weight": 0.5, "previous_weight": 1.0}, "read ceph config"},
		{"no previous reaches the cluster", map[string]any{"osd_id": 2, "weight": 0.5}, "read ceph config"},
		{"fractional id", map[string]any{"osd_id": 1.5, "weight": 0.5}, "ceph_reweight: input_parameters.osd_id 1.5 must be an integer"},
		{"negative id", map[string]any{"osd_id": -1, "weight": 0.5}, "osd_id -1 must not be negative"},
		{"weight above 1", map[string]any{"osd_id": 1, "weight": 1.5}, "ceph_reweight: input_parameters.weight 1.5 must be within [0, 1]"},
		{"weight not a number", map[string]any{"osd_id": 1, "weight": "heavy"}, "input_parameters.weight must be a number, not string"},
		{"bad previous", map[string]any{"osd_id": 1, "weight": 0.5, "previous_weight": "x"}, "input_parameters.previous_weight must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := action.Action{Type: action.CephReweight, InputParameters: tt.params}
			require.ErrorContains(t, r.Precondition(context.Background(), a), tt.want)
			require.ErrorContains(t, r.Execute(context.Background(), a, func(float64) {}), tt.want)
		})
	}
}
