package watcher

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

type badCase struct {
	name   string
	method string
	path   string
	body   any
	opts   []reqOpt
	status int
	// fault is the exact faultstring (or pecan description).
	fault string
}

func patch(op, path string, value any) []map[string]any {
	m := map[string]any{"op": op, "path": path}
	if value != nil {
		m["value"] = value
	}
	return []map[string]any{m}
}

// TestBadInput sends what Watcher refuses and checks its status code, its
// exact message in Watcher's envelope, and that nothing stored changed.
func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	tmpl := e.template()
	event := e.eventAudit()
	oneshotAudit, plan := e.oneshot(nil)
	acts := e.ok("GET", "/v1/actions?action_plan_uuid="+plan, nil)["actions"].([]any)
	act := acts[0].(map[string]any)["uuid"].(string)
	cancelled := e.eventAudit()
	e.ok("PATCH", "/v1/audits/"+cancelled, patch("replace", "/state", "CANCELLED"))
	_, pendingPlan := e.oneshot(nil)
	// Without an applier a started plan stays PENDING.
	e.ok("POST", "/v1/action_plans/"+pendingPlan+"/start", map[string]any{})
	missing := "8d4cbb7e-4bc1-4f1d-a0b3-0c0c7a4a0d9e"
	at := func(v string) []reqOpt { return []reqOpt{withVersion(v)} }

	cases := []badCase{
		// Bodies.
		{"bad json", "POST", "/v1/audits", `{"audit_type": `, nil, 400, ""},
		{"not an object", "POST", "/v1/audits", `["ONESHOT"]`, nil, 400, ""},
		{"empty body", "POST", "/v1/audits", ``, nil, 400, `Missing argument: "audit_p"`},
		{"unknown attribute", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "colour": "red"}, nil, 400,
			"Unknown attribute for argument audit_p: colour"},
		{"no audit type", "POST", "/v1/audits", map[string]any{"goal": "dummy"}, nil, 400,
			"Invalid input for field/attribute audit_type. Value: 'None'. Mandatory field missing."},
		{"wrong type", "POST", "/v1/audits", map[string]any{"audit_type": 3, "goal": "dummy"}, nil, 400,
			"Invalid input for field/attribute audit_type. Value: '3'. Wrong type. Expected '<class 'str'>', got '<class 'int'>'"},
		{"unknown audit type", "POST", "/v1/audits", map[string]any{"audit_type": "WEEKLY", "goal": "dummy"}, nil, 400,
			"Audit type WEEKLY could not be found"},
		{"no goal", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT"}, nil, 400,
			"A valid goal or audit_template_id must be provided"},
		{"goal and template", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "audit_template_uuid": tmpl}, nil, 400,
			"Either audit_template_uuid or goal should be provided."},
		{"unknown goal", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "world_peace"}, nil, 404,
			"Goal world_peace could not be found"},
		{"unknown strategy", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "strategy": "magic"}, nil, 404,
			"Strategy magic could not be found"},
		{"unknown template", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "audit_template_uuid": missing}, nil, 400,
			"The audit template UUID or name specified is invalid"},
		{"bad parameter", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "strategy": "dummy",
			"parameters": map[string]any{"para1": 100}}, nil, 400, ""},
		{"unknown parameter", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "strategy": "dummy",
			"parameters": map[string]any{"para9": 1}}, nil, 400, ""},
		{"parameters without strategy", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy",
			"parameters": map[string]any{"para1": 2}}, nil, 400,
			"Specify parameters but no predefined strategy for audit, or no parameter spec in predefined strategy"},
		{"oneshot with interval", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "interval": "60"}, nil, 400,
			"Interval of audit must not be set for ONESHOT."},
		{"continuous without interval", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy"}, nil, 400,
			"Interval of audit must be specified for CONTINUOUS."},
		{"bad cron", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "*/5 * *"}, nil, 400, ""},
		{"cron out of range", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "61 * * * *"}, nil, 400, ""},
		{"zero seconds", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "0"}, nil, 400, ""},
		{"start_time below 1.1", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "60",
			"start_time": "2030-01-01T00:00:00"}, at("1.0"), 406, "Request not acceptable."},
		{"oneshot with start_time", "POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "dummy",
			"start_time": "2030-01-01T00:00:00"}, nil, 400, "Start or End time of audit must not be set for ONESHOT."},
		{"bad start_time", "POST", "/v1/audits", map[string]any{"audit_type": "CONTINUOUS", "goal": "dummy", "interval": "60",
			"start_time": "tomorrow"}, nil, 400, ""},
		{"duplicate audit name", "POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy", "name": "dup"}, nil, 0, ""},
		{"duplicate audit name again", "POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy", "name": "dup"}, nil, 409,
			"An audit with UUID or name dup already exists"},
		{"template unknown goal", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "nope"}, nil, 400, "Goal nope is invalid"},
		{"template unknown strategy", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy", "strategy": "nope"}, nil, 400,
			"Strategy nope is invalid"},
		{"template strategy of another goal", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy",
			"strategy": "vm_workload_consolidation"}, nil, 400, ""},
		{"template defaults below 1.7", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy", "strategy": "dummy",
			"default_parameters": map[string]any{"para1": 2}}, at("1.6"), 406, "Request not acceptable."},
		{"template defaults without strategy", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy",
			"default_parameters": map[string]any{"para1": 2}}, nil, 400, "default_parameters requires a strategy to be specified"},
		{"template bad scope", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy", "scope": "everything"}, nil, 400, ""},
		{"template scope in and out", "POST", "/v1/audit_templates", map[string]any{"name": "t1", "goal": "dummy", "scope": []any{
			map[string]any{"compute": []any{map[string]any{"host_aggregates": []any{map[string]any{"name": "a"}}},
				map[string]any{"exclude": []any{map[string]any{"host_aggregates": []any{map[string]any{"name": "b"}}}}}}}}}, nil, 400,
			"host_aggregates can't be included and excluded together"},

		// JSON patches.
		{"patch not a list", "PATCH", "/v1/audits/" + event, map[string]any{"op": "replace"}, nil, 400, ""},
		{"patch move", "PATCH", "/v1/audits/" + event, patch("move", "/name", "x"), nil, 400,
			"Invalid input for field/attribute op. Value: 'move'. Value should be one of: add, remove, replace"},
		{"patch bad path", "PATCH", "/v1/audits/" + event, patch("replace", "name", "x"), nil, 400,
			`Invalid input for field/attribute path. Value: 'name'. Value should match the pattern ^(/[\w-]+)+$`},
		{"patch internal", "PATCH", "/v1/audits/" + event, patch("replace", "/uuid", missing), nil, 400,
			"'/uuid' is an internal attribute and can not be updated"},
		{"patch status_message", "PATCH", "/v1/audits/" + event, patch("replace", "/status_message", "x"), nil, 400,
			"'/status_message' is an internal attribute and can not be updated"},
		{"patch without value", "PATCH", "/v1/audits/" + event, patch("replace", "/name", nil), nil, 400,
			"'add' and 'replace' operations needs value"},
		{"patch unknown attribute", "PATCH", "/v1/audits/" + event, patch("replace", "/colour", "red"), nil, 400,
			"'/colour' is not an allowed attribute and can not be updated"},
		{"patch audit type", "PATCH", "/v1/audits/" + event, patch("replace", "/type", "ONESHOT"), nil, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/type', 'value': \"ONESHOT\"}]'. Reason: /type can't be updated."},
		{"patch state null", "PATCH", "/v1/audits/" + event, `[{"op": "replace", "path": "/state", "value": null}]`, nil, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/state', 'value': null}]'. Reason: /state can't be updated."},
		{"illegal audit transition", "PATCH", "/v1/audits/" + event, patch("replace", "/state", "SUCCEEDED"), nil, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/state', 'value': \"SUCCEEDED\"}]'. Reason: State transition not allowed: (PENDING -> SUCCEEDED)"},
		{"remove missing", "PATCH", "/v1/audits/" + event, patch("remove", "/parameters/nope", nil), nil, 400, ""},
		{"interval on oneshot", "PATCH", "/v1/audits/" + oneshotAudit, patch("replace", "/interval", "60"), nil, 400,
			"Interval of audit must not be set for ONESHOT."},
		{"delete pending audit", "DELETE", "/v1/audits/" + event, nil, nil, 400, "Couldn't delete when state is 'PENDING'."},
		{"template remove goal", "PATCH", "/v1/audit_templates/" + tmpl, patch("remove", "/goal", nil), nil, 400,
			"Cannot remove 'goal' attribute from an audit template"},
		{"template patch unknown goal", "PATCH", "/v1/audit_templates/" + tmpl, patch("replace", "/goal", "nope"), nil, 400, "Goal nope is invalid"},
		{"illegal plan transition", "PATCH", "/v1/action_plans/" + plan, patch("replace", "/state", "SUCCEEDED"), nil, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/state', 'value': \"SUCCEEDED\"}]'. Reason: State transition not allowed: (RECOMMENDED -> SUCCEEDED)"},
		{"unknown plan state", "PATCH", "/v1/action_plans/" + plan, patch("replace", "/state", "PAUSED"), nil, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/state', 'value': \"PAUSED\"}]'. Reason: Invalid state: PAUSED"},
		{"plan internal", "PATCH", "/v1/action_plans/" + plan, patch("replace", "/status_message", "x"), nil, 400,
			"'/status_message' is an internal attribute and can not be updated"},
		{"plan by name", "GET", "/v1/action_plans/my-plan", nil, nil, 400,
			"Invalid input for field/attribute action_plan_uuid. Value: 'my-plan'. Expected a uuid but received my-plan"},
		{"start pending", "POST", "/v1/action_plans/" + pendingPlan + "/start", map[string]any{}, nil, 400,
			"Couldn't start when state is 'PENDING'."},
		{"delete pending plan", "DELETE", "/v1/action_plans/" + pendingPlan, nil, nil, 400, "Couldn't delete when state is 'PENDING'."},
		{"skip below 1.5", "PATCH", "/v1/actions/" + act, patch("replace", "/state", "SKIPPED"), at("1.4"), 400,
			"API microversion 1.5 or higher is required."},
		{"action illegal transition", "PATCH", "/v1/actions/" + act, patch("replace", "/state", "SUCCEEDED"), nil, 409,
			"State transition not allowed: (PENDING -> SUCCEEDED)"},
		{"action message without skip", "PATCH", "/v1/actions/" + act, patch("replace", "/status_message", "why"), nil, 409,
			"status_message update only allowed when action state is SKIPPED"},
		{"action remove", "PATCH", "/v1/actions/" + act, patch("remove", "/state", nil), nil, 400,
			"'/state' is a mandatory attribute and can not be removed"},
		{"action other field", "PATCH", "/v1/actions/" + act, patch("replace", "/input_parameters", map[string]any{}), nil, 400,
			"'/input_parameters' is not an allowed attribute and can not be updated"},

		// Webhooks.
		{"webhook on oneshot", "POST", "/v1/webhooks/" + oneshotAudit, map[string]any{}, nil, 400, "Audit type ONESHOT is disallowed."},
		{"webhook on cancelled", "POST", "/v1/webhooks/" + cancelled, map[string]any{}, nil, 400, "Audit state CANCELLED is disallowed."},
		{"webhook on nothing", "POST", "/v1/webhooks/" + missing, map[string]any{}, nil, 404, "Audit " + missing + " could not be found"},
		{"webhook bad json", "POST", "/v1/webhooks/" + event, `{"x"`, nil, 400, "Invalid JSON body"},

		// Collections.
		{"limit zero", "GET", "/v1/audits?limit=0", nil, nil, 400, "Limit must be positive"},
		{"limit negative", "GET", "/v1/action_plans?limit=-5", nil, nil, 400, "Limit must be positive"},
		{"limit not a number", "GET", "/v1/audits?limit=ten", nil, nil, 400,
			"Invalid input for field/attribute limit. Value: 'ten'. unable to convert to int"},
		{"sort dir", "GET", "/v1/audits?sort_dir=up", nil, nil, 400, "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'"},
		{"sort key", "GET", "/v1/audits?sort_key=colour", nil, nil, 400, "Invalid sort key: colour"},
		{"sort key before limit", "GET", "/v1/audits?sort_key=colour&limit=0", nil, nil, 400, "Invalid sort key: colour"},
		{"marker not a uuid", "GET", "/v1/audits?marker=abc", nil, nil, 400,
			"Invalid input for field/attribute marker. Value: 'abc'. Expected a uuid but received abc"},
		{"marker unknown", "GET", "/v1/audits?marker=" + missing, nil, nil, 404, "Audit " + missing + " could not be found"},
		{"unknown argument", "GET", "/v1/audits?colour=red", nil, nil, 400, `Unknown argument: "colour"`},
		{"both action filters", "GET", "/v1/actions?action_plan_uuid=" + plan + "&audit_uuid=" + oneshotAudit, nil, nil, 400,
			"Filtering actions on both audit and action-plan is prohibited"},
		{"audit_uuid filter not a uuid", "GET", "/v1/action_plans?audit_uuid=x", nil, nil, 400,
			"Invalid input for field/attribute audit_uuid. Value: 'x'. Expected a uuid but received x"},
		{"services marker", "GET", "/v1/services?marker=abc", nil, nil, 400,
			"Invalid input for field/attribute marker. Value: 'abc'. unable to convert to int"},

		// Resources and routes.
		{"audit not found", "GET", "/v1/audits/" + missing, nil, nil, 404, "Audit " + missing + " could not be found"},
		{"goal not found", "GET", "/v1/goals/world_peace", nil, nil, 404, "Goal world_peace could not be found"},
		{"service not found", "GET", "/v1/services/99", nil, nil, 404, "The service 99 cannot be found."},
		{"unknown route", "GET", "/v1/frobnicators", nil, nil, 404, "The resource could not be found."},
		{"detail on an item", "GET", "/v1/audits/" + event + "/detail", nil, nil, 404, "The resource could not be found."},
		{"wrong method", "PUT", "/v1/audits/" + event, map[string]any{}, nil, 405, ""},
		{"data model below 1.3", "GET", "/v1/data_model", nil, at("1.2"), 406, "Request not acceptable."},
		{"data model storage", "GET", "/v1/data_model?data_model_type=storage", nil, nil, 404, "The storage data model could not be found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.quiesce()
			before := e.dump()
			r := e.do(c.method, c.path, c.body, c.opts...)
			if c.status == 0 {
				require.Less(t, r.status, 300, "%s", r.body)
				return
			}
			require.Equal(t, c.status, r.status, "%s", r.body)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			if c.fault != "" {
				require.Equal(t, c.fault, r.fault(t))
			} else {
				require.NotEmpty(t, r.fault(t))
			}
			require.Equal(t, before, e.dump(), "a refused request changed stored data")
		})
	}
}

// TestErrorBodyBytes pins Watcher's envelope byte for byte: the WSME fault
// JSON as a string in error_message, Python's separators.
func TestErrorBodyBytes(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	missing := "8d4cbb7e-4bc1-4f1d-a0b3-0c0c7a4a0d9e"
	r := e.do("GET", "/v1/audits/"+missing, nil)
	require.Equal(t, `{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Audit `+missing+
		` could not be found\", \"debuginfo\": null}"}`, string(r.body))
	r = e.do("GET", "/v1/goals", nil, withVersion("1.8"))
	require.Equal(t, `{"error_message": "{\"code\": 406, \"title\": \"Not Acceptable\", \"description\": \"Version 1.8 was `+
		`requested but the minor version is not supported by this service. The supported version range is: [1.0, 1.7].\"}"}`,
		string(r.body))
	require.Equal(t, "\\u00e9", pyQuote("é")[1:7])
}

func TestMicroversions(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	for _, c := range []struct {
		headers []string
		status  int
		version string
		// headers: whether min/max/Vary accompany a 406.
		rangeHeaders bool
		fault        string
	}{
		{nil, 200, "1.0", false, ""},
		{[]string{"infra-optim 1.4"}, 200, "1.4", false, ""},
		{[]string{"infra-optim latest"}, 200, "1.7", false, ""},
		{[]string{"INFRA-OPTIM 1.5"}, 200, "1.5", false, ""},
		{[]string{"infra-optim 1"}, 200, "1.0", false, ""},
		{[]string{"infra-optim 1.x"}, 200, "1.0", false, ""},
		{[]string{"compute 2.1"}, 200, "1.0", false, ""},
		{[]string{"compute 2.1, infra-optim 1.3"}, 200, "1.3", false, ""},
		{[]string{"infra-optim 1.2", "infra-optim 1.6"}, 200, "1.6", false, ""},
		{[]string{"infra-optim 1.07"}, 200, "1.7", false, ""},
		{[]string{"infra-optim 1.8"}, 406, "", true,
			"Version 1.8 was requested but the minor version is not supported by this service. The supported version range is: [1.0, 1.7]."},
		{[]string{"infra-optim 1.999"}, 406, "", true,
			"Version 1.999 was requested but the minor version is not supported by this service. The supported version range is: [1.0, 1.7]."},
		{[]string{"infra-optim 1.-1"}, 406, "", true,
			"Version 1.-1 was requested but the minor version is not supported by this service. The supported version range is: [1.0, 1.7]."},
		{[]string{"infra-optim 2.0"}, 406, "", true,
			"Mutually exclusive versions requested. Version 2.0 requested but not supported by this service. The supported version range is: [1.0, 1.7]."},
		{[]string{"infra-optim 10"}, 406, "", false, "Invalid value for OpenStack-API-Version header"},
		{[]string{"infra-optim 1.2.3"}, 406, "", false, "Invalid value for OpenStack-API-Version header"},
	} {
		t.Run(c.version+c.fault, func(t *testing.T) {
			r := e.do("GET", "/v1/goals", nil, func(r *http.Request) {
				r.Header.Del("OpenStack-API-Version")
				for _, h := range c.headers {
					r.Header.Add("OpenStack-API-Version", h)
				}
			})
			require.Equal(t, c.status, r.status, "%s", r.body)
			if c.status == 200 {
				require.Equal(t, "infra-optim "+c.version, r.header.Get("OpenStack-API-Version"))
				require.Equal(t, "1.0", r.header.Get("OpenStack-API-Minimum-Version"))
				require.Equal(t, "1.7", r.header.Get("OpenStack-API-Maximum-Version"))
				require.Equal(t, "OpenStack-API-Version", r.header.Get("Vary"))
				return
			}
			require.Equal(t, c.fault, r.fault(t))
			require.Empty(t, r.header.Get("OpenStack-API-Version"))
			if c.rangeHeaders {
				require.Equal(t, "1.0", r.header.Get("OpenStack-API-Minimum-Version"))
				require.Equal(t, "1.7", r.header.Get("OpenStack-API-Maximum-Version"))
				require.Equal(t, "OpenStack-API-Version", r.header.Get("Vary"))
			} else {
				require.Empty(t, r.header.Get("OpenStack-API-Maximum-Version"))
			}
		})
	}
	// The root document carries no version headers.
	r := e.do("GET", "/", nil)
	require.Equal(t, 200, r.status)
	require.Empty(t, r.header.Get("OpenStack-API-Maximum-Version"))
}
