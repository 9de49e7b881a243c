package watcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/nop"
	"github.com/ballast-cloud/ballast/actuators/simmigrate"
	"github.com/ballast-cloud/ballast/actuators/sleep"
	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/web/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// events records what the store publishes.
type events struct {
	mu  sync.Mutex
	evs []bus.Event
}

func (e *events) PublishEvents(_ context.Context, evs ...bus.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, evs...)
	return nil
}

func (e *events) all() []bus.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bus.Event(nil), e.evs...)
}

// env is a running API over a real store, the real decision engine, the
// simulated cluster and the real applier (nop, sleep and sim_migrate
// actuators), served on a real TCP port.
type env struct {
	t       *testing.T
	dir     string
	api     *API
	store   *store.Store
	srv     *httptest.Server
	sim     *sim.Sim
	applier *applier.Applier
	events  *events
	logs    *syncBuffer
	// tokens are the secrets by role.
	tokens map[string]string
	stop   func()
}

type envOptions struct {
	dir       string
	noApplier bool
	hosts     int
	instances int
	cfg       func(*Config)
	validator TokenValidator
}

func secret(t *testing.T) string {
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "tok-" + hex.EncodeToString(b)
}

// writeTokens writes a tokens file with one token per role.
func writeTokens(t *testing.T, dir string) (string, map[string]string) {
	toks := map[string]string{RoleAdmin: secret(t), RoleOperator: secret(t), RoleReader: secret(t)}
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, role := range []string{RoleAdmin, RoleOperator, RoleReader} {
		fmt.Fprintf(&b, "  - name: %s-user\n    role: %s\n    token: %q\n", role, role, toks[role])
	}
	path := filepath.Join(dir, "tokens.yml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path, toks
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.hosts == 0 {
		o.hosts, o.instances = 8, 60
	}
	e := &env{t: t, dir: o.dir, events: &events{}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokensPath := filepath.Join(o.dir, "tokens.yml")
	if b, err := os.ReadFile(filepath.Join(o.dir, "tokens.json")); err == nil {
		require.NoError(t, json.Unmarshal(b, &e.tokens))
	} else {
		tokensPath, e.tokens = writeTokens(t, o.dir)
		b, _ := json.Marshal(e.tokens)
		require.NoError(t, os.WriteFile(filepath.Join(o.dir, "tokens.json"), b, 0o600))
	}
	st, err := store.Open(store.Config{Path: filepath.Join(o.dir, "watcher.db"), Hostname: "test-host"}, e.events, logger)
	require.NoError(t, err)
	e.store = st
	engine, err := decision.New(decision.Config{}, logger)
	require.NoError(t, err)
	e.sim, err = sim.New(sim.Config{Hosts: o.hosts, Instances: o.instances, Seed: 7, MigrationSpeedup: 10000}, nil, logger)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	deps := Deps{Store: st, Engine: engine, Models: audit.SnapshotModels(e.sim.Snapshot), Registerer: reg, Validator: o.validator}
	if !o.noApplier {
		nopA, err := nop.New(nop.Config{}, logger)
		require.NoError(t, err)
		sleepA, err := sleep.New(sleep.Config{Tick: 50 * time.Millisecond}, logger)
		require.NoError(t, err)
		simA, err := simmigrate.New(simmigrate.Config{}, simmigrate.Deps{Cluster: e.sim}, logger)
		require.NoError(t, err)
		e.applier, err = applier.New(applier.Config{ShutdownTimeout: time.Second}, applier.Deps{Store: st, Loader: st,
			Actuators: actuators.Registry{action.Nop: nopA, action.Sleep: sleepA, action.SimMigrate: simA,
				// The engine plans migrate; on the simulator it moves simulated VMs.
				action.Migrate: simA}, Registerer: reg}, logger)
		require.NoError(t, err)
		deps.Launcher = ApplierLauncher(st, e.applier)
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.applier.Run(ctx) }()
	}
	cfg := Config{TokensFile: tokensPath, MaxLimit: 1000,
		Audits: audit.Config{Hostname: "test-host", PollInterval: 50 * time.Millisecond, Workers: 2}}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e.api, err = New(cfg, deps, logger)
	require.NoError(t, err)
	wg.Add(1)
	go func() { defer wg.Done(); _ = e.api.Run(ctx) }()
	e.srv = newServer(t, e.api)
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			e.srv.Close()
			cancel()
			wg.Wait()
			require.NoError(t, st.Close())
		})
	}
	t.Cleanup(e.stop)
	return e
}

// newServer serves h on a loopback port that does not end in 1:
// watcherclient trims its endpoint with rstrip('/v1'), which eats trailing
// 1s of the port (:35021 becomes :3502), a client quirk worth knowing.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		if p := ln.Addr().String(); !strings.HasSuffix(p, "1") {
			srv := httptest.NewUnstartedServer(h)
			srv.Listener = ln
			srv.Start()
			return srv
		}
		ln.Close()
	}
	t.Fatal("no suitable port")
	return nil
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// fault returns the faultstring (or pecan description) of an error body.
func (r response) fault(t *testing.T) string {
	t.Helper()
	var outer map[string]string
	require.NoError(t, json.Unmarshal(r.body, &outer), "body: %s", r.body)
	var inner map[string]any
	require.NoError(t, json.Unmarshal([]byte(outer["error_message"]), &inner), "error_message: %s", outer["error_message"])
	if s, ok := inner["faultstring"].(string); ok {
		return s
	}
	s, _ := inner["description"].(string)
	return s
}

type reqOpt func(*http.Request)

func withVersion(v string) reqOpt {
	return func(r *http.Request) { r.Header.Set("OpenStack-API-Version", "infra-optim "+v) }
}

func withToken(tok string) reqOpt {
	return func(r *http.Request) {
		r.Header.Del("X-Auth-Token")
		if tok != "" {
			r.Header.Set("X-Auth-Token", tok)
		}
	}
}

func withBearer(tok string) reqOpt {
	return func(r *http.Request) {
		r.Header.Del("X-Auth-Token")
		r.Header.Set("Authorization", "Bearer "+tok)
	}
}

// do sends a request as the admin at microversion 1.7 unless opts say
// otherwise.
func (e *env) do(method, path string, body any, opts ...reqOpt) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Auth-Token", e.tokens[RoleAdmin])
	req.Header.Set("OpenStack-API-Version", "infra-optim 1.7")
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// ok requires a 2xx status and decodes the body.
func (e *env) ok(method, path string, body any, opts ...reqOpt) map[string]any {
	e.t.Helper()
	r := e.do(method, path, body, opts...)
	require.True(e.t, r.status >= 200 && r.status < 300, "%s %s: %d %s", method, path, r.status, r.body)
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// eventually polls cond.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// waitAudit waits for an audit to reach a state.
func (e *env) waitAudit(id, state string) map[string]any {
	e.t.Helper()
	return e.waitState("audits", id, state, time.Minute)
}

// waitPlan waits for a plan to reach a state.
func (e *env) waitPlan(id, state string) map[string]any {
	e.t.Helper()
	return e.waitState("action_plans", id, state, time.Minute)
}

func (e *env) waitState(resource, id, state string, timeout time.Duration) map[string]any {
	e.t.Helper()
	var got map[string]any
	eventually(e.t, resource+" "+id+" "+state, timeout, func() bool {
		got = e.ok("GET", "/v1/"+resource+"/"+id, nil)
		return got["state"] == state
	})
	return got
}

// plansOf lists an audit's plans.
func (e *env) plansOf(auditUUID string) []any {
	e.t.Helper()
	return e.ok("GET", "/v1/action_plans/detail?audit_uuid="+auditUUID, nil)["action_plans"].([]any)
}

// quiesce waits until no plan is being applied and no oneshot or event
// audit is running, so that a test compares stored data at rest.
func (e *env) quiesce() {
	e.t.Helper()
	// Without an applier, started plans stay PENDING for good.
	applying := "'PENDING', 'ONGOING', 'CANCELLING'"
	if e.applier == nil {
		applying = "'ONGOING', 'CANCELLING'"
	}
	eventually(e.t, "quiet", 30*time.Second, func() bool {
		var busy int
		err := e.store.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM action_plans WHERE deleted = 0 AND state IN
			(` + applying + `)) + (SELECT COUNT(*) FROM audits WHERE deleted = 0 AND state = 'ONGOING'
			AND audit_type <> 'CONTINUOUS')`).Scan(&busy)
		require.NoError(e.t, err)
		return busy == 0 && e.api.Runner().Busy() == 0
	})
}

// dump renders every table but the audit log (which records even refused
// requests), to prove that a refused request changed nothing.
func (e *env) dump() string {
	e.t.Helper()
	db := e.store.DB()
	var out []string
	for _, table := range []string{"goals", "strategies", "scoring_engines", "audit_templates", "audits", "action_plans",
		"actions", "tokens", "schema_migrations"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		require.NoError(e.t, err)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(e.t, rows.Scan(ptrs...))
			out = append(out, fmt.Sprintf("%s %v", table, vals))
		}
		require.NoError(e.t, rows.Err())
		rows.Close()
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// oneshot creates a ONESHOT audit of the dummy strategy and waits for its
// plan.
func (e *env) oneshot(params map[string]any) (auditUUID, planUUID string) {
	e.t.Helper()
	// force: another test's ONGOING plan must not cancel this audit.
	body := map[string]any{"audit_type": "ONESHOT", "goal": "dummy", "strategy": "dummy", "force": true}
	if params != nil {
		body["parameters"] = params
	}
	a := e.ok("POST", "/v1/audits", body)
	auditUUID = a["uuid"].(string)
	e.waitAudit(auditUUID, audit.StateSucceeded)
	plans := e.plansOf(auditUUID)
	require.Len(e.t, plans, 1)
	return auditUUID, plans[0].(map[string]any)["uuid"].(string)
}
