package cephupmap_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/actuators/cephupmap"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Bad parameters are refused before the cluster is asked (the client here
// has no cluster: reaching it would say so). The real-cluster test is in
// actuators/cephmon.
func TestParameters(t *testing.T) {
	mon, err := cephmon.New(cephmon.Config{ConfigFile: "/nonexistent.conf"}, nil)
	require.NoError(t, err)
	u, err := cephupmap.New(cephupmap.Config{}, cephupmap.Deps{Mon: mon}, nil)
	require.NoError(t, err)
	good := action.NewUpmap("1.0", []action.UpmapPair{{From: 0, To: 2}}, nil)
	tests := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"good reaches the cluster", func(map[string]any) {}, "read ceph config"},
		{"bad pgid", func(p map[string]any) { p["pgid"] = "one.zero" }, `ceph_upmap: input_parameters.pgid: pgid "one.zero" is not <pool>.<hex seed>`},
		{"same osd", func(p map[string]any) { p["mappings"] = []any{map[string]any{"from": 1.0, "to": 1.0}} }, "ceph_upmap: input_parameters.mappings: item 0"},
		{"bad previous", func(p map[string]any) { p["previous"] = "none" }, "ceph_upmap: input_parameters.previous"},
		{"no pgid", func(p map[string]any) { delete(p, "pgid") }, "ceph_upmap: input_parameters.pgid is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			a.InputParameters = map[string]any{}
			for k, v := range good.InputParameters {
				a.InputParameters[k] = v
			}
			tt.change(a.InputParameters)
			require.ErrorContains(t, u.Precondition(context.Background(), a), tt.want)
		})
	}
	_, err = cephupmap.New(cephupmap.Config{}, cephupmap.Deps{}, nil)
	require.Error(t, err)
}
