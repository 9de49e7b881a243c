package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/web/store"
)

// mutation is one mutating endpoint: setup makes a fresh target, so that
// every caller in the matrix acts on its own resource.
type mutation struct {
	policy string
	method string
	role   string
	want   int
	setup  func(e *env) (path string, body any)
	opts   []reqOpt
}

var seq atomic.Int64

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func (e *env) template() string {
	return e.ok("POST", "/v1/audit_templates", map[string]any{"name": uniq("at"), "goal": "dummy", "strategy": "dummy"})["uuid"].(string)
}

func (e *env) eventAudit() string {
	return e.ok("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy", "name": uniq("ev")})["uuid"].(string)
}

func mutations() []mutation {
	return []mutation{
		{"audit_template:create", "POST", RoleOperator, 201, func(e *env) (string, any) {
			return "/v1/audit_templates", map[string]any{"name": uniq("at"), "goal": "dummy"}
		}, nil},
		{"audit_template:update", "PATCH", RoleOperator, 200, func(e *env) (string, any) {
			return "/v1/audit_templates/" + e.template(), []map[string]any{{"op": "replace", "path": "/description", "value": "x"}}
		}, nil},
		{"audit_template:delete", "DELETE", RoleOperator, 204, func(e *env) (string, any) {
			return "/v1/audit_templates/" + e.template(), nil
		}, nil},
		{"audit:create", "POST", RoleOperator, 201, func(e *env) (string, any) {
			return "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy"}
		}, nil},
		{"audit:update", "PATCH", RoleOperator, 200, func(e *env) (string, any) {
			return "/v1/audits/" + e.eventAudit(), []map[string]any{{"op": "replace", "path": "/name", "value": uniq("renamed")}}
		}, nil},
		{"audit:delete", "DELETE", RoleOperator, 204, func(e *env) (string, any) {
			id := e.eventAudit()
			e.ok("PATCH", "/v1/audits/"+id, []map[string]any{{"op": "replace", "path": "/state", "value": "CANCELLED"}})
			return "/v1/audits/" + id, nil
		}, nil},
		{"action_plan:update", "PATCH", RoleOperator, 200, func(e *env) (string, any) {
			_, plan := e.oneshot(nil)
			return "/v1/action_plans/" + plan, []map[string]any{{"op": "replace", "path": "/state", "value": "CANCELLED"}}
		}, nil},
		{"action_plan:delete", "DELETE", RoleOperator, 204, func(e *env) (string, any) {
			_, plan := e.oneshot(nil)
			return "/v1/action_plans/" + plan, nil
		}, nil},
		{"action_plan:start", "POST", RoleOperator, 200, func(e *env) (string, any) {
			_, plan := e.oneshot(map[string]any{"para1": 1})
			return "/v1/action_plans/" + plan + "/start", map[string]any{}
		}, nil},
		{"action:update", "PATCH", RoleOperator, 200, func(e *env) (string, any) {
			_, plan := e.oneshot(nil)
			acts := e.ok("GET", "/v1/actions?action_plan_uuid="+plan, nil)["actions"].([]any)
			return "/v1/actions/" + acts[0].(map[string]any)["uuid"].(string),
				[]map[string]any{{"op": "replace", "path": "/state", "value": "SKIPPED"}}
		}, nil},
		{"webhook:trigger", "POST", RoleOperator, 202, func(e *env) (string, any) {
			return "/v1/webhooks/" + e.eventAudit(), map[string]any{"alarm": "x"}
		}, nil},
		{"token:create", "POST", RoleAdmin, 201, func(e *env) (string, any) {
			return "/v1/auth/tokens", map[string]any{"name": uniq("tok"), "role": RoleReader}
		}, nil},
		{"token:delete", "DELETE", RoleAdmin, 204, func(e *env) (string, any) {
			return "/v1/auth/tokens/" + e.ok("POST", "/v1/auth/tokens", map[string]any{"name": uniq("tok"), "role": RoleReader})["uuid"].(string), nil
		}, nil},
	}
}

// TestAuthMatrix drives every mutating endpoint with no token, an unknown
// token, and each role: 401 and 403 come in Watcher's envelope with the
// stored data untouched; allowed roles get Watcher's success codes.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, envOptions{})
	callers := []struct {
		name string
		opt  reqOpt
		role string
	}{
		{"no token", withToken(""), ""},
		{"unknown token", withToken("not-a-token-of-ours-0123456789"), ""},
		{"reader", withToken(e.tokens[RoleReader]), RoleReader},
		{"operator", withToken(e.tokens[RoleOperator]), RoleOperator},
		{"operator bearer", withBearer(e.tokens[RoleOperator]), RoleOperator},
		{"admin", withToken(e.tokens[RoleAdmin]), RoleAdmin},
	}
	for _, m := range mutations() {
		for _, c := range callers {
			t.Run(m.policy+"/"+c.name, func(t *testing.T) {
				path, body := m.setup(e)
				e.quiesce()
				before := e.dump()
				r := e.do(m.method, path, body, append([]reqOpt{c.opt, withVersion("1.5")}, m.opts...)...)
				switch {
				case c.role == "":
					require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
					require.Equal(t, "The request you have made requires authentication.", r.fault(t))
					require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
					require.Empty(t, r.header.Get("OpenStack-API-Version"), "a 401 comes before version negotiation")
					require.Equal(t, before, e.dump())
				case roleRank[c.role] < roleRank[m.role]:
					require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
					require.Equal(t, "Policy doesn't allow "+m.policy+" to be performed.", r.fault(t))
					require.Equal(t, before, e.dump())
				default:
					require.Equal(t, m.want, r.status, "%s", r.body)
				}
			})
		}
	}
	// Every read is open to readers; token management and the audit log
	// are not.
	for _, path := range []string{"/v1/goals", "/v1/goals/detail", "/v1/goals/dummy", "/v1/strategies", "/v1/strategies/dummy/state",
		"/v1/scoring_engines", "/v1/services", "/v1/audit_templates", "/v1/audits/detail", "/v1/action_plans",
		"/v1/actions/detail", "/v1/data_model"} {
		r := e.do("GET", path, nil, withToken(e.tokens[RoleReader]))
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		require.Equal(t, http.StatusUnauthorized, e.do("GET", path, nil, withToken("")).status, path)
	}
	for path, policy := range map[string]string{"/v1/auth/tokens": "token:get_all", "/v1/audit_log": "audit_log:get_all"} {
		for _, role := range []string{RoleReader, RoleOperator} {
			r := e.do("GET", path, nil, withToken(e.tokens[role]))
			require.Equal(t, http.StatusForbidden, r.status)
			require.Equal(t, "Policy doesn't allow "+policy+" to be performed.", r.fault(t))
		}
	}
	// The version documents need no token (Watcher's public routes).
	require.Equal(t, http.StatusOK, e.do("GET", "/", nil, withToken("")).status)
	require.Equal(t, http.StatusOK, e.do("GET", "/v1", nil, withToken("")).status)
}

func TestTokensAndAuditLog(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true})
	created := e.ok("POST", "/v1/auth/tokens", map[string]any{"name": "dashboard", "role": RoleReader})
	secretTok := created["token"].(string)
	require.True(t, strings.HasPrefix(secretTok, "blst_"))
	require.Equal(t, RoleReader, created["role"])
	require.Equal(t, "admin-user", created["created_by"])

	// The new token reads but cannot write.
	require.Equal(t, http.StatusOK, e.do("GET", "/v1/audits", nil, withToken(secretTok)).status)
	r := e.do("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy"}, withToken(secretTok))
	require.Equal(t, http.StatusForbidden, r.status)

	list := e.ok("GET", "/v1/auth/tokens", nil)["tokens"].([]any)
	require.Len(t, list, 4)
	raw, _ := json.Marshal(list)
	for _, s := range append([]string{secretTok}, e.tokens[RoleAdmin], e.tokens[RoleOperator], e.tokens[RoleReader]) {
		require.NotContains(t, string(raw), s)
	}
	// Names are unique, file tokens are managed in the file.
	require.Equal(t, http.StatusConflict, e.do("POST", "/v1/auth/tokens", map[string]any{"name": "dashboard", "role": RoleReader}).status)
	require.Equal(t, http.StatusConflict, e.do("POST", "/v1/auth/tokens", map[string]any{"name": "admin-user", "role": RoleReader}).status)
	require.Equal(t, http.StatusBadRequest, e.do("DELETE", "/v1/auth/tokens/admin-user", nil).status)
	r = e.do("POST", "/v1/auth/tokens", map[string]any{"name": "boss", "role": "superuser"})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.fault(t), "Value should be one of: admin, operator, reader")

	// Revoked tokens stop working at once; expired ones too.
	e.ok("DELETE", "/v1/auth/tokens/dashboard", nil)
	require.Equal(t, http.StatusUnauthorized, e.do("GET", "/v1/audits", nil, withToken(secretTok)).status)
	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	short := e.ok("POST", "/v1/auth/tokens", map[string]any{"name": "short", "role": RoleOperator, "expires_at": soon})["token"].(string)
	require.Equal(t, http.StatusOK, e.do("GET", "/v1/goals", nil, withToken(short)).status)
	time.Sleep(1600 * time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, e.do("GET", "/v1/goals", nil, withToken(short)).status)

	// The audit log: logins, failed logins, mutating requests (even
	// refused ones) and state changes, with who and from where.
	id := e.ok("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy"},
		withToken(e.tokens[RoleOperator]))["uuid"].(string)
	e.ok("PATCH", "/v1/audits/"+id, []map[string]any{{"op": "replace", "path": "/state", "value": "CANCELLED"}},
		withToken(e.tokens[RoleOperator]))
	e.do("GET", "/v1/goals", nil, withToken("wrong-token-0123456789abcdef"))

	entries := func(q string) []store.LogEntry {
		r := e.do("GET", "/v1/audit_log"+q, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var body struct {
			Log  []store.LogEntry `json:"audit_log"`
			Next string           `json:"next"`
		}
		require.NoError(t, json.Unmarshal(r.body, &body))
		return body.Log
	}
	logins := entries("?kind=login&actor=operator-user")
	require.Len(t, logins, 1, "one login per login window")
	require.Equal(t, "127.0.0.1", logins[0].Remote)
	failed := entries("?kind=login_failed")
	require.NotEmpty(t, failed)
	require.Equal(t, "unknown token", failed[0].Detail)
	reqs := entries("?kind=request&actor=operator-user")
	require.Len(t, reqs, 2)
	require.Equal(t, "PATCH", reqs[0].Method, "newest first")
	require.Equal(t, "/v1/audits/"+id, reqs[0].Path)
	require.Equal(t, 200, reqs[0].Status)
	require.Equal(t, 201, reqs[1].Status)
	refused := entries("?kind=request&actor=short")
	require.Empty(t, refused)
	readerReqs := entries("?kind=request&actor=dashboard")
	require.Len(t, readerReqs, 1)
	require.Equal(t, http.StatusForbidden, readerReqs[0].Status)
	changes := entries("?kind=state_change&resource_uuid=" + id)
	require.Len(t, changes, 2)
	require.Equal(t, "PENDING", changes[0].From)
	require.Equal(t, "CANCELLED", changes[0].To)
	require.Equal(t, "operator-user", changes[0].Actor)
	require.Equal(t, "", changes[1].From)
	require.Equal(t, "PENDING", changes[1].To)

	// Paging with next.
	page := e.ok("GET", "/v1/audit_log?limit=2", nil)
	require.Len(t, page["audit_log"], 2)
	require.Contains(t, page["next"], "marker=")

	// The same entries were published as events, with the audit's state
	// changes as io.ballast.audit.v1.
	eventually(t, "events", 5*time.Second, func() bool {
		var audits, logs int
		for _, ev := range e.events.all() {
			switch {
			case ev.Type == bus.TypeAudit && ev.Subject == id:
				audits++
			case ev.Type == bus.TypeAuditLog:
				logs++
			}
		}
		return audits == 2 && logs > 5
	})
	for _, ev := range e.events.all() {
		if ev.Type == bus.TypeAudit && ev.Subject == id {
			var sc store.StateChange
			require.NoError(t, ev.Decode(&sc))
			require.Equal(t, "audit", sc.Resource)
			require.Equal(t, "operator-user", sc.Actor)
			require.Equal(t, store.EventSource, ev.Source)
		}
	}
}

// TestSecretsNeverLogged proves no token (file, API-created, or refused)
// reaches a log line, an event, the audit log or an error body.
func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, envOptions{})
	bad := "bad-secret-" + secret(t)
	var bodies []string
	collect := func(r response) { bodies = append(bodies, string(r.body)) }
	created := e.ok("POST", "/v1/auth/tokens", map[string]any{"name": "ci", "role": RoleOperator})
	apiTok := created["token"].(string)
	for _, tok := range []string{e.tokens[RoleAdmin], e.tokens[RoleOperator], e.tokens[RoleReader], apiTok, bad} {
		collect(e.do("GET", "/v1/audits", nil, withToken(tok)))
		collect(e.do("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy"}, withToken(tok)))
		collect(e.do("POST", "/v1/audits", `{"audit_type": "EVENT", "goal": "nope"}`, withBearer(tok)))
		collect(e.do("PATCH", "/v1/audits/x", `not json`, withToken(tok)))
		collect(e.do("GET", "/v1/nothing", nil, withToken(tok)))
	}
	e.oneshot(nil)
	e.stop()
	var logRows strings.Builder
	st, err := store.Open(store.Config{Path: filepath.Join(e.dir, "watcher.db")}, nil, nil)
	require.NoError(t, err)
	entries, err := st.ListLog(t.Context(), store.LogFilter{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	for _, en := range entries {
		b, _ := json.Marshal(en)
		logRows.Write(b)
	}
	evs, _ := json.Marshal(e.events.all())
	haystacks := map[string]string{"logs": e.logs.String(), "events": string(evs), "audit log": logRows.String(),
		"bodies": strings.Join(bodies, "\n")}
	require.Contains(t, haystacks["logs"], "Request served", "debug logging was on")
	for where, text := range haystacks {
		for _, s := range []string{e.tokens[RoleAdmin], e.tokens[RoleOperator], e.tokens[RoleReader], apiTok, bad} {
			require.NotContains(t, text, s, "a secret leaked into %s", where)
		}
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	leak := "super-secret-value-0123456789"
	write := func(content string) string {
		p := filepath.Join(dir, "tokens.yml")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ci.token"), []byte(leak+"\n"), 0o600))
	toks, err := LoadTokensFile(write(fmt.Sprintf(`tokens:
  - {name: a, role: admin, token: %q}
  - {name: b, role: operator, token_file: ci.token}
  - {name: c, role: reader, token_sha256: %s}
`, leak+"-a", hashSecret(leak+"-c"))))
	require.NoError(t, err)
	require.Equal(t, "a", toks[hashSecret(leak+"-a")].Name)
	require.Equal(t, "operator", toks[hashSecret(leak)].Role)
	require.Equal(t, "c", toks[hashSecret(leak+"-c")].Name)
	for _, e := range toks {
		require.Empty(t, string(e.Token), "secrets are not kept")
	}
	for content, want := range map[string]string{
		fmt.Sprintf("tokens:\n  - {name: a, role: boss, token: %q}\n", leak):                                                       `tokens[0] ("a"): role "boss" is not one of admin, operator, reader`,
		fmt.Sprintf("tokens:\n  - {name: a, role: admin, token: [%q]}\n", leak):                                                    "invalid YAML",
		fmt.Sprintf("tokens:\n  - {name: a, role: admin, token: %q, tokn: 1}\n", leak):                                             "invalid YAML",
		"tokens:\n  - {name: a, role: admin, token: short}\n":                                                                      "token must be at least 16 characters",
		fmt.Sprintf("tokens:\n  - {role: admin, token: %q}\n", leak):                                                               "tokens[0]: name is required",
		fmt.Sprintf("tokens:\n  - {name: a, role: admin, token: %q, token_sha256: ab}\n", leak):                                    "exactly one of token, token_file and token_sha256",
		fmt.Sprintf("tokens:\n  - {name: a, role: admin, token: %q}\n  - {name: a, role: admin, token: %q}\n", leak+"1", leak+"2"): "name is used twice",
	} {
		_, err := LoadTokensFile(write(content))
		require.ErrorContains(t, err, want)
		require.NotContains(t, err.Error(), leak, "errors never show a secret")
	}
	// Secret redacts itself.
	require.Equal(t, "<secret>", fmt.Sprint(Secret(leak)))
	b, _ := json.Marshal(TokenEntry{Name: "x", Token: Secret(leak)})
	require.NotContains(t, string(b), leak)
}

// keystone stands in for a remote validator.
type keystone map[string][2]string

func (k keystone) Validate(_ context.Context, token string) (string, string, bool, error) {
	if token == "keystone-down-0123456789" {
		return "", "", false, errors.New("keystone unreachable")
	}
	v, ok := k[token]
	return v[0], v[1], ok, nil
}

func TestTokenValidator(t *testing.T) {
	e := newEnv(t, envOptions{noApplier: true, validator: keystone{
		"keystone-token-0123456789": {"bob@default", RoleOperator},
		"keystone-bogus-role-01234": {"eve", "superuser"},
	}})
	require.Equal(t, http.StatusCreated, e.do("POST", "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy"},
		withToken("keystone-token-0123456789")).status)
	require.Equal(t, http.StatusForbidden, e.do("POST", "/v1/auth/tokens", map[string]any{"name": "x", "role": RoleReader},
		withToken("keystone-token-0123456789")).status)
	require.Equal(t, http.StatusUnauthorized, e.do("GET", "/v1/goals", nil, withToken("keystone-bogus-role-01234")).status)
	require.Equal(t, http.StatusUnauthorized, e.do("GET", "/v1/goals", nil, withToken("unknown-to-all-0123456789")).status)
	require.Equal(t, http.StatusInternalServerError, e.do("GET", "/v1/goals", nil, withToken("keystone-down-0123456789")).status)
	entries, err := e.store.ListLog(t.Context(), store.LogFilter{Kind: store.KindLogin, Actor: "bob@default"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "token from the validator", entries[0].Detail)
}
