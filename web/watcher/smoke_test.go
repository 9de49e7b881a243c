package watcher

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.ok("GET", "/", nil, withToken(""))
	require.Equal(t, "OpenStack Watcher API", root["name"])
	goals := e.ok("GET", "/v1/goals", nil)
	t.Logf("%v", goals)
	au, plan := e.oneshot(map[string]any{"para1": 1.0})
	t.Logf("audit %s plan %s", au, plan)
	e.ok("POST", "/v1/action_plans/"+plan+"/start", map[string]any{})
	p := e.waitPlan(plan, "SUCCEEDED")
	t.Logf("%v", p)
	acts := e.ok("GET", "/v1/actions/detail?action_plan_uuid="+plan, nil)
	t.Logf("%v", acts)
}
