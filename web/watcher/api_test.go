package watcher

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/web"
)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(l ...string) []string {
	sort.Strings(l)
	return l
}

// TestViews checks Watcher's summary and detail field sets per resource and
// the fields microversions add.
func TestViews(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	tmpl := e.ok("POST", "/v1/audit_templates", map[string]any{"name": "t", "goal": "dummy", "strategy": "dummy",
		"default_parameters": map[string]any{"para2": "x"}})
	auditUUID, plan := e.oneshot(nil)
	first := func(path string, opts ...reqOpt) map[string]any {
		l := e.ok("GET", path, nil, opts...)
		for _, v := range l {
			if items, ok := v.([]any); ok && len(items) > 0 {
				return items[0].(map[string]any)
			}
		}
		t.Fatalf("%s: empty", path)
		return nil
	}
	audits := "?audit_uuid=" + auditUUID
	for _, c := range []struct {
		path, version string
		want          []string
	}{
		{"/v1/audits", "1.7", []string{"uuid", "name", "audit_type", "state", "goal_uuid", "goal_name", "strategy_uuid", "strategy_name",
			"interval", "scope", "auto_trigger", "next_run_time", "links"}},
		{"/v1/audits/detail", "1.0", []string{"uuid", "name", "audit_type", "state", "goal_uuid", "goal_name", "strategy_uuid",
			"strategy_name", "interval", "scope", "auto_trigger", "next_run_time", "links", "parameters", "hostname", "created_at",
			"updated_at", "deleted_at"}},
		{"/v1/audits/detail", "1.5", []string{"uuid", "name", "audit_type", "state", "goal_uuid", "goal_name", "strategy_uuid",
			"strategy_name", "interval", "scope", "auto_trigger", "next_run_time", "links", "parameters", "hostname", "created_at",
			"updated_at", "deleted_at", "start_time", "end_time", "force", "status_message"}},
		{"/v1/action_plans" + audits, "1.7", []string{"uuid", "state", "efficacy_indicators", "global_efficacy", "updated_at",
			"audit_uuid", "strategy_uuid", "strategy_name", "links"}},
		{"/v1/action_plans/detail" + audits, "1.4", []string{"uuid", "state", "efficacy_indicators", "global_efficacy", "updated_at",
			"audit_uuid", "strategy_uuid", "strategy_name", "links", "hostname", "created_at", "deleted_at"}},
		{"/v1/action_plans/detail" + audits, "1.5", []string{"uuid", "state", "efficacy_indicators", "global_efficacy", "updated_at",
			"audit_uuid", "strategy_uuid", "strategy_name", "links", "hostname", "created_at", "deleted_at", "status_message"}},
		{"/v1/actions?action_plan_uuid=" + plan, "1.7", []string{"uuid", "state", "action_plan_uuid", "action_type", "parents", "links"}},
		{"/v1/actions/detail?action_plan_uuid=" + plan, "1.5", []string{"uuid", "state", "action_plan_uuid", "action_type", "parents",
			"links", "description", "input_parameters", "created_at", "updated_at", "deleted_at", "status_message"}},
		{"/v1/audit_templates", "1.7", []string{"uuid", "name", "goal_uuid", "goal_name", "strategy_uuid", "strategy_name", "scope", "links"}},
		{"/v1/audit_templates/detail", "1.6", []string{"uuid", "name", "goal_uuid", "goal_name", "strategy_uuid", "strategy_name",
			"scope", "links", "description", "created_at", "updated_at", "deleted_at"}},
		{"/v1/audit_templates/detail", "1.7", []string{"uuid", "name", "goal_uuid", "goal_name", "strategy_uuid", "strategy_name",
			"scope", "links", "description", "created_at", "updated_at", "deleted_at", "default_parameters"}},
		{"/v1/goals", "1.7", []string{"uuid", "name", "display_name", "efficacy_specification", "links"}},
		{"/v1/strategies", "1.7", []string{"uuid", "name", "display_name", "goal_uuid", "goal_name", "links"}},
		{"/v1/strategies/detail", "1.7", []string{"uuid", "name", "display_name", "goal_uuid", "goal_name", "links", "parameters_spec",
			"created_at", "updated_at", "deleted_at"}},
		{"/v1/scoring_engines", "1.7", []string{"uuid", "name", "description", "links"}},
		{"/v1/services", "1.7", []string{"id", "name", "host", "status", "links"}},
		{"/v1/services/detail", "1.7", []string{"id", "name", "host", "status", "links", "last_seen_up", "created_at", "updated_at",
			"deleted_at"}},
	} {
		got := first(c.path, withVersion(c.version))
		require.Equal(t, sorted(c.want...), keys(got), "%s at %s", c.path, c.version)
	}

	// Field values and formats.
	au := e.ok("GET", "/v1/audits/"+auditUUID, nil)
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$`, au["created_at"])
	require.Equal(t, []any{}, au["scope"])
	require.Equal(t, map[string]any{"para1": 3.2, "para2": "hello"}, au["parameters"], "defaults are filled in")
	require.Regexp(t, `^dummy-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$`, au["name"])
	links := au["links"].([]any)
	require.Equal(t, e.srv.URL+"/v1/audits/"+auditUUID, links[0].(map[string]any)["href"])
	require.Equal(t, e.srv.URL+"/audits/"+auditUUID, links[1].(map[string]any)["href"])
	require.Equal(t, map[string]any{"para2": "x"}, e.ok("GET", "/v1/audit_templates/t", nil)["default_parameters"])
	require.NotContains(t, e.ok("GET", "/v1/audit_templates/t", nil, withVersion("1.6")), "default_parameters")
	require.Equal(t, tmpl["uuid"], e.ok("GET", "/v1/audit_templates/t", nil)["uuid"])

	spec := e.ok("GET", "/v1/strategies/dummy", nil)["parameters_spec"].(map[string]any)
	require.Equal(t, 3.2, spec["properties"].(map[string]any)["para1"].(map[string]any)["default"])
	state := e.do("GET", "/v1/strategies/dummy/state", nil)
	require.Equal(t, 200, state.status)
	var checks []map[string]any
	require.NoError(t, json.Unmarshal(state.body, &checks))
	require.Len(t, checks, 4)
	require.Equal(t, "ballast: available", checks[0]["state"])
	require.Equal(t, "dummy", checks[3]["state"])

	// Efficacy of a real plan: consolidation on the simulated cluster.
	c := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "server_consolidation",
		"strategy": "vm_workload_consolidation", "force": true})
	e.waitAudit(c["uuid"].(string), audit.StateSucceeded)
	p := e.plansOf(c["uuid"].(string))[0].(map[string]any)
	var names []string
	for _, in := range p["efficacy_indicators"].([]any) {
		m := in.(map[string]any)
		names = append(names, m["name"].(string))
		require.Contains(t, m, "value")
		require.Contains(t, m, "unit")
	}
	require.Subset(t, names, []string{"compute_nodes_count", "released_compute_nodes_count", "instance_migrations_count"})
	ge := p["global_efficacy"].([]any)[0].(map[string]any)
	require.Equal(t, "released_nodes_ratio", ge["name"])
	require.Equal(t, "%", ge["unit"])
	require.Greater(t, ge["value"].(float64), 0.0)
	acts := e.ok("GET", "/v1/actions/detail?action_plan_uuid="+p["uuid"].(string), nil)["actions"].([]any)
	mig := acts[slices.IndexFunc(acts, func(a any) bool { return a.(map[string]any)["action_type"] == "migrate" })].(map[string]any)
	ip := mig["input_parameters"].(map[string]any)
	require.Equal(t, "live", ip["migration_type"])
	require.NotEmpty(t, ip["source_node"])
	require.NotEmpty(t, ip["resource_id"])
}

func TestDocumentsAndRouting(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	root := e.ok("GET", "/", nil, withToken(""))
	v := root["versions"].([]any)[0].(map[string]any)
	require.Equal(t, "v1", v["id"])
	require.Equal(t, "CURRENT", v["status"])
	require.Equal(t, "1.0", v["min_version"])
	require.Equal(t, "1.7", v["max_version"])
	require.Equal(t, e.srv.URL+"/v1/", v["links"].([]any)[0].(map[string]any)["href"])
	require.Equal(t, root["default_version"], v)

	v1 := e.ok("GET", "/v1", nil, withToken(""), withVersion("1.2"))
	require.Equal(t, "v1", v1["id"])
	require.NotContains(t, v1, "data_model")
	require.NotContains(t, v1, "webhooks")
	require.Equal(t, e.srv.URL+"/audits/", v1["audits"].([]any)[1].(map[string]any)["href"])
	v1 = e.ok("GET", "/v1/", nil, withToken(""), withVersion("1.4"))
	require.Contains(t, v1, "data_model")
	require.Contains(t, v1, "webhooks")
	require.Contains(t, v1, "goals", "Ballast also links goals and strategies")

	// Watcher's reroute: a path that does not start with v1 is served as
	// if it did (bookmark links rely on it); trailing slashes are ignored.
	id := e.eventAudit()
	require.Equal(t, id, e.ok("GET", "/audits/"+id, nil)["uuid"])
	require.Equal(t, id, e.ok("GET", "/v1/audits/"+id+"/", nil)["uuid"])
	require.NotEmpty(t, e.ok("GET", "/v1/strategies/?goal=dummy", nil)["strategies"])
	// Lookup by name and by integer id.
	named := e.ok("GET", "/v1/audits/"+id, nil)["name"].(string)
	require.Equal(t, id, e.ok("GET", "/v1/audits/"+named, nil)["uuid"])
	require.Equal(t, "dummy", e.ok("GET", "/v1/goals/dummy", nil)["name"])
	require.Equal(t, "watcher-decision-engine", e.ok("GET", "/v1/services/watcher-decision-engine", nil)["name"])
	svc := e.ok("GET", "/v1/services/1", nil)
	require.EqualValues(t, 1, svc["id"])

	// 201 with Location, 204, 202.
	r := e.do("POST", "/v1/audit_templates", map[string]any{"name": "loc", "goal": "dummy"})
	require.Equal(t, http.StatusCreated, r.status)
	require.Equal(t, e.srv.URL+"/v1/audit_templates/"+r.json(t)["uuid"].(string), r.header.Get("Location"))
	r = e.do("DELETE", "/v1/audit_templates/loc", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Empty(t, r.body)
	require.Equal(t, http.StatusNotFound, e.do("GET", "/v1/audit_templates/loc", nil).status, "soft-deleted rows are gone")
	// The name is free again after a soft delete.
	require.Equal(t, http.StatusCreated, e.do("POST", "/v1/audit_templates", map[string]any{"name": "loc", "goal": "dummy"}).status)
}

// TestMountedInServer mounts the API as cmd/ballast does, through web.New,
// and checks that it does not shadow the server's other routes.
func TestMountedInServer(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	stub := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, name+" "+r.URL.Path) })
	}
	h, err := web.New(web.Options{PromAPI: stub("promapi"), RemoteWrite: stub("write"), Gatherer: prometheus.NewRegistry(),
		Exporter: stub("exporter"), UI: stub("ui"), Watcher: e.api}, nil)
	require.NoError(t, err)
	srv := newServer(t, h)
	defer srv.Close()
	get := func(path string, tok bool) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok {
			req.Header.Set("X-Auth-Token", e.tokens[RoleReader])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{"/api/v1/query": "promapi /query", "/api/v1/write": "write /api/v1/write",
		"/exporter/metrics": "exporter /exporter/metrics", "/ui/": "ui"} {
		code, body := get(path, false)
		require.Equal(t, 200, code, path)
		require.Contains(t, body, want, path)
	}
	code, body := get("/metrics", false)
	require.Equal(t, 200, code)
	require.NotContains(t, body, "error_message")
	code, body = get("/-/healthy", false)
	require.Equal(t, 200, code)
	require.Contains(t, body, "Healthy")
	code, body = get("/", false)
	require.Equal(t, 200, code)
	require.Contains(t, body, "OpenStack Watcher API")
	code, body = get("/v1/goals/dummy", true)
	require.Equal(t, 200, code, body)
	code, body = get("/goals/dummy", true)
	require.Equal(t, 200, code, body)
	code, _ = get("/v1/goals", false)
	require.Equal(t, 401, code)
}

// TestPagination follows next links: they keep the filters (Watcher's
// drop them) and walk the whole filtered collection in sort order.
func TestPagination(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	var want []string
	for i := range 7 {
		name := "p" + string(rune('a'+i))
		e.ok("POST", "/v1/audit_templates", map[string]any{"name": name, "goal": "dummy"})
		want = append(want, name)
		e.ok("POST", "/v1/audit_templates", map[string]any{"name": "other" + name, "goal": "server_consolidation"})
	}
	walk := func(path string) []string {
		var got []string
		for path != "" {
			body := e.ok("GET", path, nil)
			for _, it := range body["audit_templates"].([]any) {
				got = append(got, it.(map[string]any)["name"].(string))
			}
			next, _ := body["next"].(string)
			if next == "" {
				break
			}
			u, err := url.Parse(next)
			require.NoError(t, err)
			require.Equal(t, "dummy", u.Query().Get("goal"), "next keeps the filter: %s", next)
			path = u.RequestURI()
		}
		return got
	}
	require.Equal(t, want, walk("/v1/audit_templates?goal=dummy&limit=3"))
	rev := slices.Clone(want)
	slices.Reverse(rev)
	require.Equal(t, rev, walk("/v1/audit_templates/detail?goal=dummy&limit=2&sort_key=name&sort_dir=desc"))
	// A computed sort key (Watcher sorts those after the page; we page
	// in its order).
	got := walk("/v1/audit_templates?goal=dummy&limit=4&sort_key=goal_name")
	require.ElementsMatch(t, want, got)
	body := e.ok("GET", "/v1/audit_templates?limit=3", nil)
	require.Len(t, body["audit_templates"], 3)
	require.Regexp(t, `/v1/audit_templates\?sort_key=id&sort_dir=asc&limit=3&marker=[0-9a-f-]{36}$`, body["next"])
	require.NotContains(t, e.ok("GET", "/v1/audit_templates?goal=dummy&limit=100", nil), "next", "a partial page has no next")
	// limit is capped by max_limit.
	e2 := newEnv(t, envOptions{noApplier: true, cfg: func(c *Config) { c.MaxLimit = 2 }})
	require.Len(t, e2.ok("GET", "/v1/goals?limit=50", nil)["goals"], 2)
}

// TestAuditSemantics covers what audits do over time: the refusal while a
// plan is ONGOING (unless force), expiry of stale recommendations,
// start_time and end_time.
func TestAuditSemantics(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) {
		c.Audits.ActionPlanExpiry = 1500 * time.Millisecond
		c.Audits.ExpiryCheckInterval = 100 * time.Millisecond
	}})
	// A plan that sleeps 4 s keeps ONGOING meanwhile.
	_, long := e.oneshot(map[string]any{"para1": 4})
	e.ok("POST", "/v1/action_plans/"+long+"/start", map[string]any{})
	e.waitPlan(long, audit.StateOngoing)

	refused := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy"})["uuid"].(string)
	got := e.waitAudit(refused, audit.StateCancelled)
	require.Equal(t, "Action Plan "+long+" is currently running.", got["status_message"])
	require.Empty(t, e.plansOf(refused))
	forced := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "force": true})["uuid"].(string)
	e.waitAudit(forced, audit.StateSucceeded)
	stale := e.plansOf(forced)[0].(map[string]any)["uuid"].(string)
	e.waitPlan(long, audit.StateSucceeded)

	// The forced audit's plan was never started: it expires.
	p := e.waitPlan(stale, audit.StateSuperseded)
	require.Equal(t, "Expired: recommended for longer than action_plan_expiry.", p["status_message"])

	// A continuous audit whose window has not opened waits; one whose
	// window closed is SUCCEEDED.
	future := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "1", "force": true,
		"start_time": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05")})["uuid"].(string)
	eventually(t, "next run at start_time", 5*time.Second, func() bool {
		return e.ok("GET", "/v1/audits/"+future, nil)["next_run_time"] != nil
	})
	got = e.ok("GET", "/v1/audits/"+future, nil)
	require.Equal(t, audit.StatePending, got["state"])
	require.Empty(t, e.plansOf(future))
	past := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "1",
		"start_time": "2020-01-01T00:00:00", "end_time": "2020-01-02T00:00:00"})["uuid"].(string)
	e.waitAudit(past, audit.StateSucceeded)
	require.Empty(t, e.plansOf(past))

	// Audit and plan state machines through the API.
	ev := e.eventAudit()
	e.ok("PATCH", "/v1/audits/"+ev, patch("replace", "/state", "CANCELLED"))
	e.ok("DELETE", "/v1/audits/"+ev, nil)
	require.Equal(t, http.StatusNotFound, e.do("GET", "/v1/audits/"+ev, nil).status)
	_, rec := e.oneshot(nil)
	require.Equal(t, "CANCELLED", e.ok("PATCH", "/v1/action_plans/"+rec, patch("replace", "/state", "CANCELLED"))["state"])
	for _, a := range e.ok("GET", "/v1/actions?action_plan_uuid="+rec, nil)["actions"].([]any) {
		require.Equal(t, "CANCELLED", a.(map[string]any)["state"])
	}
	r := e.do("DELETE", "/v1/action_plans/"+rec, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Empty(t, e.ok("GET", "/v1/actions?action_plan_uuid="+rec, nil)["actions"], "actions are deleted with their plan")
}

func TestDataModel(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true, hosts: 4, instances: 10})
	rows := e.ok("GET", "/v1/data_model", nil, withVersion("1.3"))["context"].([]any)
	servers := map[string]bool{}
	for _, r := range rows {
		m := r.(map[string]any)
		for k, v := range m {
			_, isString := v.(string)
			require.True(t, isString, "%s is %T: Watcher serialises every value as a string", k, v)
		}
		require.NotContains(t, m, "server_pinned_az")
		if id, ok := m["server_uuid"].(string); ok {
			servers[id] = true
			require.NotEmpty(t, m["node_hostname"])
		}
	}
	require.Len(t, servers, 10)
	row := e.ok("GET", "/v1/data_model?data_model_type=compute", nil, withVersion("1.6"))["context"].([]any)[0].(map[string]any)
	require.Contains(t, row, "server_pinned_az")
	require.Contains(t, row, "server_flavor_extra_specs")

	// audit_uuid narrows to the audit's scope.
	host := row["node_hostname"].(string)
	id := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy",
		"scope": []any{map[string]any{"compute": []any{map[string]any{"compute_nodes": []any{map[string]any{"name": host}}}}}}})["uuid"].(string)
	scoped := e.ok("GET", "/v1/data_model?audit_uuid="+id, nil, withVersion("1.3"))["context"].([]any)
	require.NotEmpty(t, scoped)
	for _, r := range scoped {
		require.Equal(t, host, r.(map[string]any)["node_hostname"])
	}
}

// TestRestart proves persistence: a new process on the same database file
// sees everything, with each migration applied once.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOptions{dir: dir})
	tmpl := e.template()
	au, plan := e.oneshot(map[string]any{"para1": 1})
	e.ok("POST", "/v1/action_plans/"+plan+"/start", map[string]any{})
	e.waitPlan(plan, audit.StateSucceeded)
	cont := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "3600", "force": true})["uuid"].(string)
	e.waitAudit(cont, audit.StateOngoing)
	eventually(t, "first continuous plan", time.Minute, func() bool { return len(e.plansOf(cont)) == 1 })
	// The run is over once the next one is scheduled (an hour out).
	eventually(t, "next run scheduled", time.Minute, func() bool {
		next, _ := e.ok("GET", "/v1/audits/"+cont, nil)["next_run_time"].(string)
		at, err := time.Parse("2006-01-02T15:04:05.999999", next)
		return err == nil && time.Until(at) > 30*time.Minute
	})
	before := e.dump()
	beforeAudit := e.ok("GET", "/v1/audits/"+cont, nil)
	e.stop()

	e2 := newEnv(t, envOptions{dir: dir})
	applied, err := e2.store.AppliedMigrations(t.Context())
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, applied)
	require.Equal(t, tmpl, e2.ok("GET", "/v1/audit_templates/"+tmpl, nil)["uuid"])
	require.Equal(t, "SUCCEEDED", e2.ok("GET", "/v1/audits/"+au, nil)["state"])
	require.Equal(t, "SUCCEEDED", e2.ok("GET", "/v1/action_plans/"+plan, nil)["state"])
	// The continuous audit is still scheduled an hour out: no new run.
	time.Sleep(300 * time.Millisecond)
	require.Len(t, e2.plansOf(cont), 1)
	require.Equal(t, beforeAudit["next_run_time"], e2.ok("GET", "/v1/audits/"+cont, nil)["next_run_time"])
	require.Equal(t, before, e2.dump())
	// Goals keep their UUIDs.
	g, err := e2.store.GetGoal(t.Context(), "dummy")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(g.UUID, "f068aca9"), "goal UUIDs derive from names: %s", g.UUID)
}
