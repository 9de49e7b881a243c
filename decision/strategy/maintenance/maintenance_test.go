package maintenance_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/model/synth"
	"github.com/ballast-cloud/ballast/decision/strategy"
	"github.com/ballast-cloud/ballast/decision/strategy/maintenance"
)

// TestParameterErrors: a parameter the model contradicts is the request's
// fault, so the engine reports it as an InvalidRequestError naming the
// parameter (a 400 for the API, a usage error for `ballast plan`).
func TestParameterErrors(t *testing.T) {
	c, err := synth.Generate(synth.Config{Hosts: 6, Instances: 30, Seed: 1})
	require.NoError(t, err)
	e, err := decision.New(decision.Config{}, nil)
	require.NoError(t, err)
	node, other := c.Hosts[0].Name, c.Hosts[1].Name
	for _, tc := range []struct {
		name   string
		params map[string]any
		scope  decision.Scope
		param  string
		want   string
	}{
		{name: "unknown maintenance node", params: map[string]any{"maintenance_node": "ghost"},
			param: "maintenance_node", want: `"ghost" is not a host in scope`},
		{name: "unknown backup node", params: map[string]any{"maintenance_node": node, "backup_node": "ghost"},
			param: "backup_node", want: `"ghost" is not a host in scope`},
		{name: "maintenance node out of scope", params: map[string]any{"maintenance_node": node},
			scope: decision.Scope{ExcludeHosts: []string{node}}, param: "maintenance_node", want: `"` + node + `" is not a host in scope`},
		{name: "backup node is the maintenance node", params: map[string]any{"maintenance_node": node, "backup_node": node},
			param: "backup_node", want: `must differ from maintenance_node "` + node + `"`},
		{name: "unknown scoring engine", params: map[string]any{"maintenance_node": node, "backup_node": other, "scoring_engine": "nope"},
			param: "scoring_engine", want: `"nope" is not a registered scoring engine`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(context.Background(), decision.Request{Goal: goal.ClusterMaintaining, Params: tc.params, Model: c, Scope: tc.scope})
			var inv *decision.InvalidRequestError
			require.True(t, errors.As(err, &inv), "%v is not an InvalidRequestError", err)
			require.Equal(t, tc.param, inv.Param)
			require.EqualError(t, inv.Err, tc.want)
			require.EqualError(t, err, `parameter "`+tc.param+`": `+tc.want)
		})
	}
}

func TestNewRefusesBackupEqualToNode(t *testing.T) {
	_, err := maintenance.New(maintenance.Params{MaintenanceNode: "a", BackupNode: "a"}, nil)
	var pe *strategy.ParamError
	require.True(t, errors.As(err, &pe), "%v is not a ParamError", err)
	require.Equal(t, "backup_node", pe.Parameter())
	require.EqualError(t, err, `parameter "backup_node": must differ from maintenance_node "a"`)
}
