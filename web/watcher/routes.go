package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/web/store"
)

// handler is an endpoint; a returned error is answered in Watcher's
// envelope.
type handler func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint with Watcher's policy name (for the 403 message)
// and the weakest role allowed.
type route struct {
	method, pattern string
	policy          string
	role            string
	h               handler
}

func (a *API) table() []route {
	get := func(pattern, policy string, h handler) route {
		return route{http.MethodGet, pattern, policy, RoleReader, h}
	}
	op := func(method, pattern, policy string, h handler) route {
		return route{method, pattern, policy, RoleOperator, h}
	}
	admin := func(method, pattern, policy string, h handler) route {
		return route{method, pattern, policy, RoleAdmin, h}
	}
	return []route{
		{http.MethodGet, "/", "", "", a.getRoot},
		{http.MethodGet, "/v1", "", "", a.getV1},

		get("/v1/goals", "goal:get_all", a.listGoals(false)),
		get("/v1/goals/detail", "goal:detail", a.listGoals(true)),
		get("/v1/goals/{id}", "goal:get", a.getGoal),

		get("/v1/strategies", "strategy:get_all", a.listStrategies(false)),
		get("/v1/strategies/detail", "strategy:detail", a.listStrategies(true)),
		get("/v1/strategies/{id}", "strategy:get", a.getStrategy),
		get("/v1/strategies/{id}/state", "strategy:state", a.getStrategyState),

		get("/v1/scoring_engines", "scoring_engine:get_all", a.listScoringEngines(false)),
		get("/v1/scoring_engines/detail", "scoring_engine:detail", a.listScoringEngines(true)),
		get("/v1/scoring_engines/{id}", "scoring_engine:get", a.getScoringEngine),

		get("/v1/services", "service:get_all", a.listServices(false)),
		get("/v1/services/detail", "service:detail", a.listServices(true)),
		get("/v1/services/{id}", "service:get", a.getService),

		get("/v1/audit_templates", "audit_template:get_all", a.listTemplates(false)),
		get("/v1/audit_templates/detail", "audit_template:detail", a.listTemplates(true)),
		get("/v1/audit_templates/{id}", "audit_template:get", a.getTemplate),
		op(http.MethodPost, "/v1/audit_templates", "audit_template:create", a.createTemplate),
		op(http.MethodPatch, "/v1/audit_templates/{id}", "audit_template:update", a.patchTemplate),
		op(http.MethodDelete, "/v1/audit_templates/{id}", "audit_template:delete", a.deleteTemplate),

		get("/v1/audits", "audit:get_all", a.listAudits(false)),
		get("/v1/audits/detail", "audit:detail", a.listAudits(true)),
		get("/v1/audits/{id}", "audit:get", a.getAudit),
		op(http.MethodPost, "/v1/audits", "audit:create", a.createAudit),
		op(http.MethodPatch, "/v1/audits/{id}", "audit:update", a.patchAudit),
		op(http.MethodDelete, "/v1/audits/{id}", "audit:delete", a.deleteAudit),

		get("/v1/action_plans", "action_plan:get_all", a.listPlans(false)),
		get("/v1/action_plans/detail", "action_plan:detail", a.listPlans(true)),
		get("/v1/action_plans/{id}", "action_plan:get", a.getPlan),
		op(http.MethodPatch, "/v1/action_plans/{id}", "action_plan:update", a.patchPlan),
		op(http.MethodDelete, "/v1/action_plans/{id}", "action_plan:delete", a.deletePlan),
		op(http.MethodPost, "/v1/action_plans/{id}/start", "action_plan:start", a.startPlan),

		get("/v1/actions", "action:get_all", a.listActions(false)),
		get("/v1/actions/detail", "action:detail", a.listActions(true)),
		get("/v1/actions/{id}", "action:get", a.getAction),
		op(http.MethodPatch, "/v1/actions/{id}", "action:update", a.patchAction),

		get("/v1/data_model", "data_model:get_all", a.getDataModel),
		op(http.MethodPost, "/v1/webhooks/{audit}", "webhook:trigger", a.postWebhook),

		// Ballast's additions: token management and the audit log.
		admin(http.MethodGet, "/v1/auth/tokens", "token:get_all", a.listTokens),
		admin(http.MethodPost, "/v1/auth/tokens", "token:create", a.createToken),
		admin(http.MethodDelete, "/v1/auth/tokens/{id}", "token:delete", a.deleteToken),
		admin(http.MethodGet, "/v1/audit_log", "audit_log:get_all", a.listAuditLog),
	}
}

func (a *API) routes() http.Handler {
	mux := chi.NewRouter()
	for _, rt := range a.table() {
		mux.Method(rt.method, rt.pattern, a.endpoint(rt))
	}
	mux.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeError(w, routeNotFound()) })
	mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		e := pecanError(http.StatusMethodNotAllowed, "The server could not comply with the request since it is either "+
			"malformed or otherwise incorrect.")
		writeError(w, e)
	})
	return a.middleware(mux)
}

type ctxKey int

const (
	keyVersion ctxKey = iota
	keyPrincipal
)

func versionFrom(ctx context.Context) Version {
	if v, ok := ctx.Value(keyVersion).(Version); ok {
		return v
	}
	return Version{1, minMinor}
}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(keyPrincipal).(*principal)
	return p
}

// statusWriter records the status for logs, metrics and the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// isPublic reports whether a request needs no token: the version
// documents, as in Watcher's acl_public_routes, and webhooks when
// enable_webhooks_auth is off.
func (a *API) isPublic(r *http.Request) bool {
	if r.URL.Path == "/" || r.URL.Path == "/v1" {
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return !*a.cfg.EnableWebhooksAuth && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/webhooks/")
}

// middleware is, outermost first: recovery, logging and metrics, the audit
// log of mutating requests, authentication (Watcher's keystonemiddleware
// sits outside its API too, so a 401 carries no version headers), then
// microversion negotiation for /v1.
func (a *API) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rctx := chi.RouteContext(r.Context())
		remote := remoteAddr(r)
		defer func() {
			if v := recover(); v != nil {
				a.logger.Error("Panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if sw.status == 0 {
					writeError(sw, errorf(http.StatusInternalServerError, "Internal Server Error"))
				}
			}
			pattern := "unmatched"
			if rctx != nil && rctx.RoutePattern() != "" {
				pattern = rctx.RoutePattern()
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			a.requests.WithLabelValues(pattern, r.Method, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
			actor := "anonymous"
			if p := principalFrom(r.Context()); p != nil {
				actor = p.name
			}
			a.logger.Debug("Request served", "method", r.Method, "path", r.URL.Path, "status", code, "actor", actor,
				"remote", remote, "seconds", time.Since(start).Seconds())
		}()
		var p *principal
		if !a.isPublic(r) {
			var err error
			p, err = a.auth.authenticate(r.Context(), bearer(r))
			if err != nil {
				a.logger.Error("Cannot authenticate", "err", err)
				writeError(sw, errorf(http.StatusInternalServerError, "Internal Server Error"))
				return
			}
			if p == nil {
				reason := "no token"
				if bearer(r) != "" {
					reason = "unknown token"
					a.auth.recordFailure(r.Context(), r, reason)
				}
				writeError(sw, unauthorized())
				if mutating(r.Method) {
					a.logRequest(r, nil, remote, http.StatusUnauthorized)
				}
				return
			}
			a.auth.recordUse(r.Context(), p, remote)
			ctx := context.WithValue(r.Context(), keyPrincipal, p)
			ctx = store.WithActor(ctx, store.Actor{Name: p.name, Role: p.role, Remote: remote})
			r = r.WithContext(ctx)
		}
		if r.URL.Path != "/" {
			v, err := ParseVersion(r.Header.Values(headerVersion))
			var ve *VersionError
			if errors.As(err, &ve) {
				if ve.Headers {
					setVersionHeaders(sw.Header())
				}
				writeError(sw, pecanError(http.StatusNotAcceptable, ve.Msg))
				if mutating(r.Method) {
					a.logRequest(r, p, remote, http.StatusNotAcceptable)
				}
				return
			}
			setVersionHeaders(sw.Header())
			sw.Header().Set(headerVersion, serviceType+" "+v.String())
			r = r.WithContext(context.WithValue(r.Context(), keyVersion, v))
		}
		next.ServeHTTP(sw, r)
		if mutating(r.Method) {
			a.logRequest(r, p, remote, sw.status)
		}
	})
}

// logRequest records a mutating request in the audit log.
func (a *API) logRequest(r *http.Request, p *principal, remote string, status int) {
	e := store.LogEntry{Kind: store.KindRequest, Actor: "anonymous", Remote: remote, Method: r.Method, Path: r.URL.Path,
		Status: status}
	if p != nil {
		e.Actor, e.Role = p.name, p.role
	}
	if status == 0 {
		e.Status = http.StatusOK
	}
	if err := a.deps.Store.AppendLog(context.WithoutCancel(r.Context()), e); err != nil {
		a.logger.Warn("Cannot record request in the audit log", "err", err)
	}
}

// endpoint checks the caller's role and runs the handler.
func (a *API) endpoint(rt route) http.HandlerFunc {
	rank := roleRank[rt.role]
	return func(w http.ResponseWriter, r *http.Request) {
		if rank > 0 && !a.isPublic(r) {
			p := principalFrom(r.Context())
			if p == nil || roleRank[p.role] < rank {
				writeError(w, forbidden(rt.policy))
				return
			}
		}
		if err := rt.h(w, r); err != nil {
			a.fail(w, r, err)
		}
	}
}

// fail answers an error: API errors as they are, store errors with
// Watcher's codes, anything else as a 500 whose detail stays in the log.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ie *store.InputError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae)
	case errors.As(err, &ie):
		writeError(w, badRequest("%s", ie.Msg))
	case errors.Is(err, audit.ErrNotFound):
		writeError(w, notFoundErr("%s", err.Error()))
	case errors.Is(err, audit.ErrConflict):
		writeError(w, conflictErr("%s", err.Error()))
	default:
		a.logger.Error("Request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, errorf(http.StatusInternalServerError, "Internal Server Error"))
	}
}

// writeJSON writes v as JSON (no HTML escaping, as Python's json).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
