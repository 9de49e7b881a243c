package watcher

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// cli runs Debian's python3-watcherclient (4.0.0, which sends microversion
// 1.4) against the API, exactly as an operator would: watcher
// --os-endpoint-override URL --os-auth-token TOKEN <command>.
type cli struct {
	t     *testing.T
	bin   string
	url   string
	token string
	home  string
}

func newCLI(t *testing.T, e *env, role string) *cli {
	bin := testenv.RequireBinary(t, "watcher")
	// Debian's interpreter, not a pyenv shim.
	testenv.RequireBinary(t, "/usr/bin/python3")
	return &cli{t: t, bin: bin, url: e.srv.URL, token: e.tokens[role], home: t.TempDir()}
}

func (c *cli) cmd(args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c.t.Cleanup(cancel)
	full := append([]string{"--os-endpoint-override", c.url, "--os-auth-token", c.token}, args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	// A clean environment: no OS_* variables, Debian's python first.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + c.home, "LANG=C.UTF-8"}
	return cmd
}

// run runs a command that must succeed and returns its stdout.
func (c *cli) run(args ...string) []byte {
	c.t.Helper()
	cmd := c.cmd(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(c.t, err, "watcher %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, stderr.String())
	return out
}

// json runs a command with -f json and decodes its output into v.
func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.run(append(args, "-f", "json")...)
	require.NoError(c.t, json.Unmarshal(out, v), "watcher %s: %s", strings.Join(args, " "), out)
}

// fail runs a command that must fail and returns its combined output.
func (c *cli) fail(args ...string) string {
	c.t.Helper()
	out, err := c.cmd(args...).CombinedOutput()
	require.Error(c.t, err, "watcher %s succeeded: %s", strings.Join(args, " "), out)
	return string(out)
}

// python runs a python3-watcherclient library call (for what Debian's
// 4.0.0 CLI has no command for: skipping an action needs 1.5).
func (c *cli) python(script string, args ...string) []byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-c", script, c.url, c.token}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + c.home, "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	require.NoError(c.t, err, "python: %s", out)
	return out
}

func names(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["Name"].(string))
	}
	return out
}

func TestWatcherClient(t *testing.T) {
	e := newEnv(t, envOptions{})

	// The flows run side by side (each CLI call costs seconds of Python
	// start-up). Only the oneshot flow starts a plan; the others use
	// --force so that its ONGOING plan does not hold their audits.
	t.Run("group", func(t *testing.T) {
		t.Run("catalog", func(t *testing.T) {
			t.Parallel()
			c := newCLI(t, e, RoleReader)
			var goals []map[string]any
			c.json(&goals, "goal", "list")
			require.Subset(t, names(goals), []string{"dummy", "server_consolidation", "workload_balancing", "cluster_maintaining",
				"saving_energy", "noisy_neighbor", "unclassified"})
			for _, g := range goals {
				require.True(t, isUUID(g["UUID"]), "goal %v", g)
				require.NotEmpty(t, g["Display name"])
			}

			var strategies []map[string]any
			c.json(&strategies, "strategy", "list")
			require.Subset(t, names(strategies), []string{"dummy", "vm_workload_consolidation", "workload_stabilization",
				"host_maintenance", "actuator"})
			c.json(&strategies, "strategy", "list", "--goal", "dummy")
			require.Equal(t, []string{"dummy"}, names(strategies))
			require.Equal(t, "dummy", strategies[0]["Goal"])

			var services []map[string]any
			c.json(&services, "service", "list")
			require.ElementsMatch(t, []string{"watcher-decision-engine", "watcher-applier"}, names(services))
			for _, s := range services {
				require.Equal(t, "ACTIVE", s["Status"])
				require.Equal(t, "test-host", s["Host"])
			}

			var engines []map[string]any
			c.json(&engines, "scoringengine", "list")
			require.ElementsMatch(t, []string{"weighted_resource", "migration_cost"}, names(engines))

			// A reader cannot create anything; the client shows Watcher's
			// policy message.
			out := c.fail("audit", "create", "-g", "dummy")
			require.Contains(t, out, "Policy doesn't allow audit:create to be performed.")
		})

		t.Run("oneshot", func(t *testing.T) {
			t.Parallel()
			op := newCLI(t, e, RoleOperator)
			// audittemplate create first GETs the goal and the strategy,
			// then POSTs their UUIDs.
			var tmpl map[string]any
			op.json(&tmpl, "audittemplate", "create", "at1", "dummy", "-s", "dummy", "-d", "nightly dummy run")
			require.Equal(t, "at1", tmpl["Name"])
			require.Equal(t, "dummy", tmpl["Goal"])
			require.Equal(t, "dummy", tmpl["Strategy"])
			require.Equal(t, "nightly dummy run", tmpl["Description"])

			var au map[string]any
			op.json(&au, "audit", "create", "-a", "at1", "-p", "para1=1.0", "-p", "para2=from-cli", "--name", "cli-oneshot")
			require.Equal(t, "ONESHOT", au["Audit Type"])
			require.Equal(t, "cli-oneshot", au["Name"])
			require.Equal(t, map[string]any{"para1": 1.0, "para2": "from-cli"}, au["Parameters"])
			id := au["UUID"].(string)
			e.waitAudit(id, audit.StateSucceeded)
			op.json(&au, "audit", "show", id)
			require.Equal(t, "SUCCEEDED", au["State"])
			require.Equal(t, "test-host", au["Hostname"])

			var plans []map[string]any
			op.json(&plans, "actionplan", "list", "--audit", id)
			require.Len(t, plans, 1)
			require.Equal(t, "RECOMMENDED", plans[0]["State"])
			planID := plans[0]["UUID"].(string)
			var plan map[string]any
			op.json(&plan, "actionplan", "show", planID)
			require.Equal(t, id, plan["Audit"])
			require.Equal(t, "dummy", plan["Strategy"])
			require.Equal(t, "RECOMMENDED", plan["State"])

			// action list sends GET /v1/actions/?action_plan_uuid=...
			// (trailing slash).
			var actions []map[string]any
			op.json(&actions, "action", "list", "--action-plan", planID)
			require.Len(t, actions, 3)
			var types []string
			for _, a := range actions {
				types = append(types, a["Action"].(string))
				require.Equal(t, "PENDING", a["State"])
				require.Equal(t, planID, a["Action Plan"])
			}
			require.ElementsMatch(t, []string{"nop", "nop", "sleep"}, types)
			var first map[string]any
			op.json(&first, "action", "show", actions[0]["UUID"].(string))
			require.Equal(t, "nop", first["Action"])
			require.Equal(t, "Logging a NOP message", first["Description"])
			require.Equal(t, map[string]any{"message": "from-cli"}, first["Parameters"])

			// Skip the first nop at microversion 1.5 through the
			// client library (Debian's 4.0.0 CLI has no action update).
			out := op.python(`
import json, sys
from watcherclient.v1 import client
c = client.Client(endpoint=sys.argv[1], token=sys.argv[2], os_infra_optim_api_version='1.5')
a = c.action._update('/v1/actions/%s' % sys.argv[3], [
    {'op': 'replace', 'path': '/state', 'value': 'SKIPPED'},
    {'op': 'replace', 'path': '/status_message', 'value': 'maintenance window'}])
print(json.dumps(a.to_dict()))
`, actions[0]["UUID"].(string))
			var skipped map[string]any
			require.NoError(t, json.Unmarshal(out, &skipped), "%s", out)
			require.Equal(t, "SKIPPED", skipped["state"])
			require.Equal(t, "Action skipped by user. Reason: maintenance window", skipped["status_message"])
			// At 1.4 the client cannot skip: Watcher's 400.
			out = op.python(`
import sys
from watcherclient.v1 import client
c = client.Client(endpoint=sys.argv[1], token=sys.argv[2], os_infra_optim_api_version='1.4')
try:
    c.action._update('/v1/actions/%s' % sys.argv[3], [{'op': 'replace', 'path': '/state', 'value': 'SKIPPED'}])
except Exception as e:
    print(type(e).__name__, e)
`, actions[1]["UUID"].(string))
			require.Contains(t, string(out), "BadRequest API microversion 1.5 or higher is required. (HTTP 400)")

			op.json(&plan, "actionplan", "start", planID)
			require.Contains(t, []string{"PENDING", "ONGOING", "SUCCEEDED"}, plan["State"])
			e.waitPlan(planID, audit.StateSucceeded)
			op.json(&plan, "actionplan", "show", planID)
			require.Equal(t, "SUCCEEDED", plan["State"])
			op.json(&actions, "action", "list", "--action-plan", planID, "--detail")
			states := map[string]int{}
			for _, a := range actions {
				states[a["State"].(string)]++
			}
			require.Equal(t, map[string]int{"SKIPPED": 1, "SUCCEEDED": 2}, states)
			got := e.ok("GET", "/v1/action_plans/"+planID, nil, withVersion("1.5"))
			require.Equal(t, "One or more actions were skipped.", got["status_message"])

			// A finished plan cannot be started again.
			out2 := op.fail("actionplan", "start", planID)
			require.Contains(t, out2, "Couldn't start when state is 'SUCCEEDED'.")
		})

		t.Run("continuous", func(t *testing.T) {
			t.Parallel()
			op := newCLI(t, e, RoleOperator)
			var au map[string]any
			op.json(&au, "audit", "create", "-g", "dummy", "-t", "CONTINUOUS", "-i", "*/5 * * * *", "--force")
			require.Equal(t, "CONTINUOUS", au["Audit Type"])
			require.Equal(t, "*/5 * * * *", au["Interval"])
			require.Equal(t, "PENDING", au["State"])
			require.Equal(t, "auto", au["Strategy"])
			cronID := au["UUID"].(string)
			// The poller schedules it on the next 5-minute boundary.
			var got map[string]any
			eventually(t, "next_run_time", 10*time.Second, func() bool {
				got = e.ok("GET", "/v1/audits/"+cronID, nil)
				return got["next_run_time"] != nil
			})
			next, err := time.Parse("2006-01-02T15:04:05", got["next_run_time"].(string))
			require.NoError(t, err)
			require.Zero(t, next.Minute()%5)
			require.True(t, next.After(time.Now().UTC().Add(-time.Second)))

			// Microversion 1.1 adds start_time and end_time.
			op.json(&au, "--os-infra-optim-api-version", "1.1", "audit", "create", "-g", "dummy", "-t", "CONTINUOUS",
				"-i", "*/5 * * * *", "--start-time", "2030-01-01T00:00:00", "--end-time", "2030-01-02T00:00:00")
			require.Equal(t, "2030-01-01T00:00:00", au["Start Time"])
			require.Equal(t, "2030-01-02T00:00:00", au["End Time"])

			// Every second: each run supersedes the previous
			// recommendation.
			op.json(&au, "audit", "create", "-g", "dummy", "-s", "dummy", "-t", "CONTINUOUS", "-i", "1", "--force",
				"-p", "para1=2.5")
			id := au["UUID"].(string)
			eventually(t, "three runs", time.Minute, func() bool { return len(e.plansOf(id)) >= 3 })
			op.json(&au, "audit", "update", id, "replace", "state=CANCELLED")
			require.Equal(t, "CANCELLED", au["State"])
			plans := e.plansOf(id)
			rec := 0
			for _, p := range plans {
				switch p.(map[string]any)["state"] {
				case "RECOMMENDED":
					rec++
				case "SUPERSEDED":
				default:
					t.Fatalf("unexpected plan state %v", p)
				}
			}
			require.Equal(t, 1, rec, "only the latest run's plan stays RECOMMENDED: %v", plans)

			op.json(&au, "audit", "update", cronID, "replace", "name=every-five-minutes")
			require.Equal(t, "every-five-minutes", au["Name"])
			require.Equal(t, "*/5 * * * *", au["Interval"])
		})

		t.Run("event", func(t *testing.T) {
			t.Parallel()
			op := newCLI(t, e, RoleOperator)
			var au map[string]any
			op.json(&au, "audit", "create", "-g", "dummy", "-s", "dummy", "-t", "EVENT", "--force", "--name", "on-alarm")
			require.Equal(t, "EVENT", au["Audit Type"])
			require.Equal(t, "PENDING", au["State"])
			id := au["UUID"].(string)
			require.Empty(t, e.plansOf(id))
			// Aodh calls the webhook with its alarm as the body.
			r := e.do("POST", "/v1/webhooks/on-alarm", `{"alarm_name": "cpu high", "current": "alarm"}`,
				withToken(e.tokens[RoleOperator]), withVersion("1.4"))
			require.Equal(t, http.StatusAccepted, r.status)
			require.Empty(t, r.body)
			e.waitAudit(id, audit.StateSucceeded)
			require.Len(t, e.plansOf(id), 1)
			// A SUCCEEDED EVENT audit can be triggered again.
			require.Equal(t, http.StatusAccepted, e.do("POST", "/v1/webhooks/"+id, `{}`).status)
			eventually(t, "second plan", time.Minute, func() bool { return len(e.plansOf(id)) == 2 })

			var plans []map[string]any
			op.json(&plans, "actionplan", "list", "--audit", id)
			require.Len(t, plans, 2)
			var plan map[string]any
			op.json(&plan, "actionplan", "cancel", plans[0]["UUID"].(string))
			require.Equal(t, "CANCELLED", plan["State"])
			var actions []map[string]any
			op.json(&actions, "action", "list", "--action-plan", plans[0]["UUID"].(string))
			for _, a := range actions {
				require.Equal(t, "CANCELLED", a["State"])
			}
		})
	})

	t.Run("cancel ongoing", func(t *testing.T) {
		op := newCLI(t, e, RoleOperator)
		// auto_trigger sends the plan straight to the applier; cancelling
		// an ONGOING plan moves it to CANCELLING, the running sleep
		// finishes, the plan ends CANCELLED.
		var au map[string]any
		op.json(&au, "audit", "create", "-g", "dummy", "-s", "dummy", "-p", "para1=4", "--auto-trigger")
		require.Equal(t, true, au["Auto Trigger"])
		id := au["UUID"].(string)
		e.waitAudit(id, audit.StateSucceeded)
		planID := e.plansOf(id)[0].(map[string]any)["uuid"].(string)
		e.waitPlan(planID, audit.StateOngoing)
		var plan map[string]any
		op.json(&plan, "actionplan", "cancel", planID)
		require.Equal(t, "CANCELLING", plan["State"])
		e.waitPlan(planID, audit.StateCancelled)
	})
}

func isUUID(v any) bool {
	s, ok := v.(string)
	return ok && len(s) == 36 && strings.Count(s, "-") == 4
}
