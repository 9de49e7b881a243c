package watcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/web/store"
)

// resolveGoal finds a goal by UUID, id or name.
func (a *API) resolveGoal(r *http.Request, ref string) (*store.Goal, error) {
	g, err := a.deps.Store.GetGoal(r.Context(), ref)
	if errors.Is(err, audit.ErrNotFound) {
		return nil, nil
	}
	return g, err
}

// resolveStrategy finds a strategy by UUID, id or name.
func (a *API) resolveStrategy(r *http.Request, ref string) (*store.Strategy, error) {
	s, err := a.deps.Store.GetStrategy(r.Context(), ref)
	if errors.Is(err, audit.ErrNotFound) {
		return nil, nil
	}
	return s, err
}

// strategyMismatch is Watcher's message (its typo included) for a strategy
// that serves another goal.
func (a *API) strategyMismatch(r *http.Request, s *store.Strategy, g *store.Goal) error {
	all, err := a.deps.Store.ListStrategies(r.Context(), "", store.Page{Limit: 1 << 20})
	if err != nil {
		return err
	}
	choices := make([]string, len(all))
	for i, c := range all {
		choices[i] = fmt.Sprintf("'%s' (%s)", c.UUID, c.Name)
	}
	return badRequest("'%s' strategy does relate to the '%s' goal. Possible choices: %s", s.Name, g.Name,
		strings.Join(choices, ", "))
}

// parseScope validates a Watcher audit scope; a bare list of compute rules
// is wrapped in {"compute": ...} as Watcher does.
func parseScope(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("[]"), nil
	}
	var l []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, badRequest("Invalid scope: want a list of {\"compute\": [...]} or {\"storage\": [...]} objects")
	}
	if len(l) > 0 {
		first := ""
		for k := range l[0] {
			first = k
		}
		if first != "compute" && first != "storage" {
			wrapped, _ := json.Marshal([]map[string]json.RawMessage{{"compute": raw}})
			raw = wrapped
		}
	}
	if _, err := decision.ParseWatcherScope(raw); err != nil {
		return nil, badRequest("Invalid scope: %v", err)
	}
	var inc, exc bool
	var sections []map[string][]map[string]json.RawMessage
	if json.Unmarshal(raw, &sections) == nil {
		for _, sec := range sections {
			for _, rule := range sec["compute"] {
				if _, ok := rule["host_aggregates"]; ok {
					inc = true
				}
				if ex, ok := rule["exclude"]; ok && strings.Contains(string(ex), `"host_aggregates"`) {
					exc = true
				}
			}
		}
	}
	if inc && exc {
		return nil, badRequest("host_aggregates can't be included and excluded together")
	}
	return raw, nil
}

func (a *API) templateView(r *http.Request, t *store.AuditTemplate, detail bool) obj {
	o := obj{"uuid": t.UUID, "name": t.Name, "goal_uuid": t.GoalUUID, "goal_name": t.GoalName,
		"strategy_uuid": nullable(t.StrategyUUID), "strategy_name": nullable(t.StrategyName), "scope": t.Scope,
		"links": a.links(r, "audit_templates", t.UUID)}
	if detail {
		o["description"] = t.Description
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&t.CreatedAt), awareTime(t.UpdatedAt), awareTime(t.DeletedAt)
		if versionFrom(r.Context()).AtLeast(vDefaultParams) {
			if t.DefaultParameters == nil {
				o["default_parameters"] = nil
			} else {
				o["default_parameters"] = t.DefaultParameters
			}
		}
	}
	return o
}

func (a *API) listTemplates(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionAuditTemplates, filters: []string{"goal", "strategy"}}, detail,
		func(r *http.Request, args listArgs) ([]store.AuditTemplate, error) {
			return a.deps.Store.ListAuditTemplates(r.Context(), store.RefFilter{Goal: args.get("goal"), Strategy: args.get("strategy")}, args.page)
		}, a.templateView, func(t *store.AuditTemplate) string { return t.UUID })
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := a.deps.Store.GetAuditTemplate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.templateView(r, t, true))
}

// checkDefaults validates an audit template's default_parameters against
// its strategy's schema.
func (a *API) checkDefaults(goalName string, s *store.Strategy, defaults map[string]any) error {
	if len(defaults) == 0 {
		return nil
	}
	if s == nil {
		return badRequest("default_parameters requires a strategy to be specified")
	}
	if _, _, err := a.deps.Engine.ParametersFor(goalName, s.Name, defaults); err != nil {
		return badRequest("Invalid default_parameters for strategy: %v", err)
	}
	return nil
}

func (a *API) createTemplate(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, "audit_template_postdata", false)
	if err != nil {
		return err
	}
	if err := checkKnown(body, "audit_template_postdata", "name", "description", "goal", "strategy", "scope", "default_parameters"); err != nil {
		return err
	}
	name, ok, err := strArg(body, "name")
	if err != nil {
		return err
	}
	if !ok {
		return invalidInput("name", "None", "Mandatory field missing.")
	}
	goalRef, ok, err := strArg(body, "goal")
	if err != nil {
		return err
	}
	if !ok {
		return invalidInput("goal", "None", "Mandatory field missing.")
	}
	desc, hasDesc, err := strArg(body, "description")
	if err != nil {
		return err
	}
	strategyRef, _, err := strArg(body, "strategy")
	if err != nil {
		return err
	}
	defaults, _, err := objArg(body, "default_parameters")
	if err != nil {
		return err
	}
	if !versionFrom(r.Context()).AtLeast(vDefaultParams) && len(defaults) > 0 {
		return notAcceptable()
	}
	g, err := a.resolveGoal(r, goalRef)
	if err != nil {
		return err
	}
	if g == nil {
		return badRequest("Goal %s is invalid", goalRef)
	}
	scope, err := parseScope(body["scope"])
	if err != nil {
		return err
	}
	var s *store.Strategy
	if strategyRef != "" {
		if s, err = a.resolveStrategy(r, strategyRef); err != nil {
			return err
		}
		if s == nil {
			return badRequest("Strategy %s is invalid", strategyRef)
		}
		if s.GoalUUID != g.UUID {
			return a.strategyMismatch(r, s, g)
		}
	}
	if err := a.checkDefaults(g.Name, s, defaults); err != nil {
		return err
	}
	at := store.AuditTemplate{Name: name, GoalUUID: g.UUID, Scope: scope, DefaultParameters: defaults}
	if hasDesc {
		at.Description = &desc
	}
	if s != nil {
		at.StrategyUUID = s.UUID
	}
	created, err := a.deps.Store.CreateAuditTemplate(r.Context(), at)
	if errors.Is(err, store.ErrDuplicate) {
		return conflictErr("An audit_template with UUID or name %s already exists", name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", a.baseURL(r)+"/v1/audit_templates/"+created.UUID)
	return writeJSON(w, http.StatusCreated, a.templateView(r, created, true))
}

var templatePatchRules = patchRules{
	allowed: []string{"/name", "/description", "/goal", "/strategy", "/scope", "/default_parameters"},
}

func (a *API) patchTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := a.deps.Store.GetAuditTemplate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	ops, err := a.readPatch(r, templatePatchRules)
	if err != nil {
		return err
	}
	v := versionFrom(r.Context())
	for _, op := range ops {
		switch {
		case op.Path == "/goal" && op.Op == "remove":
			return badRequest("Cannot remove 'goal' attribute from an audit template")
		case strings.HasPrefix(op.Path, "/default_parameters") && !v.AtLeast(vDefaultParams):
			return notAcceptable()
		}
	}
	var defaults any
	if t.DefaultParameters != nil {
		defaults = jsonValue(t.DefaultParameters)
	}
	var desc any
	if t.Description != nil {
		desc = *t.Description
	}
	doc := obj{"name": t.Name, "description": desc, "goal": t.GoalName, "strategy": nullable(t.StrategyName),
		"scope": jsonValue(t.Scope), "default_parameters": defaults}
	out, err := ApplyPatch(doc, ops)
	if err != nil {
		return err
	}
	next := *t
	name, ok := out["name"].(string)
	if !ok || name == "" {
		return patchError(ops, "name must be a non-empty string")
	}
	next.Name = name
	switch d := out["description"].(type) {
	case nil:
		next.Description = nil
	case string:
		next.Description = &d
	default:
		return patchError(ops, "description must be a string")
	}
	goalRef, _ := out["goal"].(string)
	g, err := a.resolveGoal(r, goalRef)
	if err != nil {
		return err
	}
	if g == nil {
		return badRequest("Goal %v is invalid", out["goal"])
	}
	next.GoalUUID, next.GoalName = g.UUID, g.Name
	next.StrategyUUID, next.StrategyName = "", ""
	var s *store.Strategy
	if ref, ok := out["strategy"].(string); ok && ref != "" {
		if s, err = a.resolveStrategy(r, ref); err != nil {
			return err
		}
		if s == nil {
			return badRequest("Strategy %s is invalid", ref)
		}
		if s.GoalUUID != g.UUID {
			return a.strategyMismatch(r, s, g)
		}
		next.StrategyUUID, next.StrategyName = s.UUID, s.Name
	} else if out["strategy"] != nil {
		return patchError(ops, "strategy must be a strategy name or UUID")
	}
	scopeRaw, _ := json.Marshal(out["scope"])
	if next.Scope, err = parseScope(scopeRaw); err != nil {
		return err
	}
	switch d := out["default_parameters"].(type) {
	case nil:
		next.DefaultParameters = nil
	case map[string]any:
		next.DefaultParameters = d
	default:
		return patchError(ops, "default_parameters must be an object")
	}
	if err := a.checkDefaults(g.Name, s, next.DefaultParameters); err != nil {
		return err
	}
	updated, err := a.deps.Store.UpdateAuditTemplate(r.Context(), next)
	if errors.Is(err, store.ErrDuplicate) {
		return conflictErr("An audit_template with UUID or name %s already exists", next.Name)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.templateView(r, updated, true))
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := a.deps.Store.GetAuditTemplate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := a.deps.Store.DeleteAuditTemplate(r.Context(), t.UUID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readPatch parses a PATCH body and checks each operation against the
// resource's rules.
func (a *API) readPatch(r *http.Request, rules patchRules) ([]PatchOp, error) {
	b, err := readRaw(r)
	if err != nil {
		return nil, err
	}
	ops, err := ParsePatch(b)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if err := rules.check(op); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// jsonValue turns a typed value into plain JSON values for patching.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

func (a *API) auditView(r *http.Request, au *audit.Audit, detail bool) obj {
	o := obj{"uuid": au.UUID, "name": au.Name, "audit_type": string(au.Type), "state": au.State,
		"goal_uuid": au.GoalUUID, "goal_name": au.GoalName, "strategy_uuid": nullable(au.StrategyUUID),
		"strategy_name": nullable(au.StrategyName), "interval": nullable(au.Interval), "scope": au.Scope,
		"auto_trigger": au.AutoTrigger, "next_run_time": naiveTime(au.NextRunTime), "links": a.links(r, "audits", au.UUID)}
	if !detail {
		return o
	}
	params := au.Parameters
	if params == nil {
		params = map[string]any{}
	}
	o["parameters"], o["hostname"] = params, nullable(au.Hostname)
	o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&au.CreatedAt), awareTime(au.UpdatedAt), awareTime(au.DeletedAt)
	v := versionFrom(r.Context())
	if v.AtLeast(vStartEndTime) {
		o["start_time"], o["end_time"] = naiveTime(au.StartTime), naiveTime(au.EndTime)
	}
	if v.AtLeast(vForce) {
		o["force"] = au.Force
	}
	if v.AtLeast(vSkipAction) {
		o["status_message"] = nullable(au.StatusMessage)
	}
	return o
}

func (a *API) listAudits(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionAudits, filters: []string{"goal", "strategy"}}, detail,
		func(r *http.Request, args listArgs) ([]audit.Audit, error) {
			return a.deps.Store.ListAuditsPage(r.Context(), store.RefFilter{Goal: args.get("goal"), Strategy: args.get("strategy")}, args.page)
		}, a.auditView, func(au *audit.Audit) string { return au.UUID })
}

func (a *API) getAudit(w http.ResponseWriter, r *http.Request) error {
	au, err := a.deps.Store.GetAudit(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.auditView(r, au, true))
}

// maxAuditName is Watcher's truncation of generated audit names.
const maxAuditName = 63

// auditRequest is a validated POST /v1/audits body.
type auditRequest struct {
	audit    audit.Audit
	goal     *store.Goal
	strategy *store.Strategy
	template *store.AuditTemplate
	hasName  bool
}

func (a *API) parseAuditPost(r *http.Request) (*auditRequest, error) {
	body, err := readBody(r, "audit_p", false)
	if err != nil {
		return nil, err
	}
	if err := checkKnown(body, "audit_p", "name", "audit_template_uuid", "goal", "strategy", "audit_type", "state",
		"parameters", "interval", "scope", "auto_trigger", "hostname", "start_time", "end_time", "force"); err != nil {
		return nil, err
	}
	req := &auditRequest{}
	au := &req.audit
	typ, ok, err := strArg(body, "audit_type")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalidInput("audit_type", "None", "Mandatory field missing.")
	}
	au.Type = audit.Type(typ)
	if au.Name, req.hasName, err = strArg(body, "name"); err != nil {
		return nil, err
	}
	tmplRef, _, err := strArg(body, "audit_template_uuid")
	if err != nil {
		return nil, err
	}
	if tmplRef != "" {
		if _, err := routeUUID("audit_template_uuid", tmplRef); err != nil {
			return nil, err
		}
	}
	goalRef, _, err := strArg(body, "goal")
	if err != nil {
		return nil, err
	}
	strategyRef, _, err := strArg(body, "strategy")
	if err != nil {
		return nil, err
	}
	params, _, err := objArg(body, "parameters")
	if err != nil {
		return nil, err
	}
	if raw, ok := body["interval"]; ok && string(raw) != "null" {
		// Watcher's interval is text; watcherclient sends "3600", a
		// number is accepted too.
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var n json.Number
			if json.Unmarshal(raw, &n) != nil {
				return nil, wrongType("interval", raw, "<class 'str'>")
			}
			s = n.String()
		}
		au.Interval = s
	}
	if au.AutoTrigger, _, err = boolArg(body, "auto_trigger"); err != nil {
		return nil, err
	}
	if au.Force, _, err = boolArg(body, "force"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"start_time", &au.StartTime}, {"end_time", &au.EndTime}} {
		s, ok, err := strArg(body, f.name)
		if err != nil {
			return nil, err
		}
		if ok {
			t, err := parseTimeValue(f.name, s)
			if err != nil {
				return nil, err
			}
			*f.dst = &t
		}
	}
	// AuditPostType._validate, in Watcher's order.
	if !slices.Contains(audit.Types, au.Type) {
		return nil, badRequest("Audit type %s could not be found", typ)
	}
	if tmplRef == "" && goalRef == "" {
		return nil, badRequest("A valid goal or audit_template_id must be provided")
	}
	if tmplRef != "" && goalRef != "" {
		return nil, badRequest("Either audit_template_uuid or goal should be provided.")
	}
	if au.Type == audit.Oneshot && au.Interval != "" {
		return nil, badRequest("Interval of audit must not be set for %s.", au.Type)
	}
	if au.Type == audit.Continuous && au.Interval == "" {
		return nil, badRequest("Interval of audit must be specified for %s.", au.Type)
	}
	if au.Type == audit.Oneshot && (au.StartTime != nil || au.EndTime != nil) {
		return nil, badRequest("Start or End time of audit must not be set for %s.", au.Type)
	}
	if !versionFrom(r.Context()).AtLeast(vStartEndTime) && (au.StartTime != nil || au.EndTime != nil) {
		return nil, notAcceptable()
	}
	if au.StartTime != nil && au.EndTime != nil && !au.EndTime.After(*au.StartTime) {
		return nil, badRequest("end_time %s must be after start_time %s", isoTime(*au.EndTime, false), isoTime(*au.StartTime, false))
	}
	if au.Interval != "" {
		if _, err := audit.ParseInterval(au.Interval); err != nil {
			return nil, invalidInput("interval", au.Interval, "Expected an interval or cron syntax but received "+au.Interval+": "+err.Error())
		}
	}
	scope := body["scope"]
	if tmplRef != "" {
		t, err := a.deps.Store.GetAuditTemplate(r.Context(), tmplRef)
		if errors.Is(err, audit.ErrNotFound) {
			return nil, badRequest("The audit template UUID or name specified is invalid")
		}
		if err != nil {
			return nil, err
		}
		req.template = t
		goalRef = t.GoalUUID
		if strategyRef == "" {
			strategyRef = t.StrategyUUID
		}
		if len(scope) == 0 || string(scope) == "null" || string(scope) == "[]" {
			scope = t.Scope
		}
		if len(t.DefaultParameters) > 0 {
			merged := map[string]any{}
			for k, v := range t.DefaultParameters {
				merged[k] = v
			}
			for k, v := range params {
				merged[k] = v
			}
			params = merged
		}
	}
	if req.goal, err = a.resolveGoal(r, goalRef); err != nil {
		return nil, err
	}
	if req.goal == nil {
		return nil, notFoundErr("Goal %s could not be found", goalRef)
	}
	if strategyRef != "" {
		if req.strategy, err = a.resolveStrategy(r, strategyRef); err != nil {
			return nil, err
		}
		if req.strategy == nil {
			return nil, notFoundErr("Strategy %s could not be found", strategyRef)
		}
		if req.strategy.GoalUUID != req.goal.UUID {
			return nil, a.strategyMismatch(r, req.strategy, req.goal)
		}
	}
	if au.Scope, err = parseScope(scope); err != nil {
		return nil, err
	}
	au.GoalUUID, au.GoalName = req.goal.UUID, req.goal.Name
	if req.strategy == nil {
		if len(params) > 0 {
			return nil, badRequest("Specify parameters but no predefined strategy for audit, or no parameter spec in predefined strategy")
		}
		au.Parameters = map[string]any{}
	} else {
		au.StrategyUUID, au.StrategyName = req.strategy.UUID, req.strategy.Name
		_, filled, err := a.deps.Engine.ParametersFor(req.goal.Name, req.strategy.Name, params)
		if err != nil {
			return nil, badRequest("Invalid parameters for strategy: %v", err)
		}
		au.Parameters = filled
	}
	return req, nil
}

func (a *API) createAudit(w http.ResponseWriter, r *http.Request) error {
	req, err := a.parseAuditPost(r)
	if err != nil {
		return err
	}
	au := req.audit
	if !req.hasName {
		prefix := au.GoalName
		switch {
		case req.strategy != nil:
			prefix = req.strategy.Name
		case req.template != nil:
			prefix = req.template.Name
		}
		au.Name = prefix + "-" + isoTime(a.cfg.Now(), false)
	}
	if len(au.Name) > maxAuditName {
		au.Name = au.Name[:maxAuditName]
	}
	created, err := a.deps.Store.CreateAudit(r.Context(), au)
	// A generated name can repeat within a clock tick: number it.
	for n := 2; errors.Is(err, store.ErrDuplicate) && !req.hasName && n < 100; n++ {
		name := fmt.Sprintf("%s-%d", au.Name, n)
		if len(name) > maxAuditName {
			name = name[len(name)-maxAuditName:]
		}
		numbered := au
		numbered.Name = name
		created, err = a.deps.Store.CreateAudit(r.Context(), numbered)
	}
	if errors.Is(err, store.ErrDuplicate) {
		return conflictErr("An audit with UUID or name %s already exists", au.Name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", a.baseURL(r)+"/v1/audits/"+created.UUID)
	if created.Type == audit.Oneshot {
		// A full queue is not an error: the runner's poll picks up
		// PENDING oneshot audits.
		if err := a.runner.Trigger(created.UUID); err != nil {
			a.logger.Warn("Audit queued for the next poll", "audit", created.UUID, "err", err)
		}
	}
	return writeJSON(w, http.StatusCreated, a.auditView(r, created, true))
}

var auditPatchRules = patchRules{
	internal: []string{"/status_message"},
	allowed: []string{"/name", "/state", "/parameters", "/interval", "/scope", "/auto_trigger", "/start_time",
		"/end_time", "/force", "/audit_template_uuid", "/type"},
}

func (a *API) patchAudit(w http.ResponseWriter, r *http.Request) error {
	au, err := a.deps.Store.GetAudit(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	ops, err := a.readPatch(r, auditPatchRules)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.Path == "/audit_template_uuid" || op.Path == "/type" || (op.Path == "/state" && op.Op == "replace" && string(op.Value) == "null") {
			return patchError([]PatchOp{op}, fmt.Sprintf("%s can't be updated.", op.Path))
		}
	}
	for _, op := range ops {
		if op.Path != "/state" || op.Op != "replace" {
			continue
		}
		var to string
		_ = json.Unmarshal(op.Value, &to)
		if !audit.AuditTransitionAllowed(au.State, to) {
			return patchError(ops, fmt.Sprintf("State transition not allowed: (%s -> %s)", au.State, to))
		}
	}
	doc := obj{"name": au.Name, "state": au.State, "parameters": jsonValue(au.Parameters), "interval": nullable(au.Interval),
		"scope": jsonValue(au.Scope), "auto_trigger": au.AutoTrigger, "start_time": naiveTime(au.StartTime),
		"end_time": naiveTime(au.EndTime), "force": au.Force}
	out, err := ApplyPatch(doc, ops)
	if err != nil {
		return err
	}
	next := *au
	if next.Name, err = patchedString(ops, out, "name", false); err != nil {
		return err
	}
	if next.State, err = patchedString(ops, out, "state", false); err != nil {
		return err
	}
	if next.State != au.State && !audit.AuditTransitionAllowed(au.State, next.State) {
		return patchError(ops, fmt.Sprintf("State transition not allowed: (%s -> %s)", au.State, next.State))
	}
	if next.Interval, err = patchedString(ops, out, "interval", true); err != nil {
		return err
	}
	switch {
	case au.Type == audit.Continuous && next.Interval == "":
		return badRequest("Interval of audit must be specified for %s.", au.Type)
	case au.Type == audit.Oneshot && next.Interval != "":
		return badRequest("Interval of audit must not be set for %s.", au.Type)
	}
	if next.Interval != "" {
		if _, err := audit.ParseInterval(next.Interval); err != nil {
			return invalidInput("interval", next.Interval, "Expected an interval or cron syntax but received "+next.Interval+": "+err.Error())
		}
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"auto_trigger", &next.AutoTrigger}, {"force", &next.Force}} {
		b, ok := out[f.name].(bool)
		if !ok {
			return patchError(ops, f.name+" must be a boolean")
		}
		*f.dst = b
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"start_time", &next.StartTime}, {"end_time", &next.EndTime}} {
		s, err := patchedString(ops, out, f.name, true)
		if err != nil {
			return err
		}
		*f.dst = nil
		if s != "" {
			t, err := parseTimeValue(f.name, s)
			if err != nil {
				return err
			}
			*f.dst = &t
		}
	}
	if au.Type == audit.Oneshot && (next.StartTime != nil || next.EndTime != nil) {
		return badRequest("Start or End time of audit must not be set for %s.", au.Type)
	}
	params, ok := out["parameters"].(map[string]any)
	if !ok && out["parameters"] != nil {
		return patchError(ops, "parameters must be an object")
	}
	if next.StrategyName != "" {
		if _, next.Parameters, err = a.deps.Engine.ParametersFor(au.GoalName, au.StrategyName, params); err != nil {
			return badRequest("Invalid parameters for strategy: %v", err)
		}
	} else if len(params) > 0 {
		return badRequest("Specify parameters but no predefined strategy for audit, or no parameter spec in predefined strategy")
	}
	scopeRaw, _ := json.Marshal(out["scope"])
	if next.Scope, err = parseScope(scopeRaw); err != nil {
		return err
	}
	updated, err := a.deps.Store.UpdateAudit(r.Context(), *au, next)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return conflictErr("An audit with UUID or name %s already exists", next.Name)
	case errors.Is(err, audit.ErrConflict):
		return conflictErr("Audit %s changed state meanwhile; read it again and retry", au.UUID)
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, a.auditView(r, updated, true))
}

// patchedString reads a string field of a patched document; nullable
// fields may be null or absent (removed).
func patchedString(ops []PatchOp, out obj, field string, nullOK bool) (string, error) {
	v, ok := out[field]
	if !ok || v == nil {
		if nullOK {
			return "", nil
		}
		return "", patchError(ops, field+" is mandatory")
	}
	s, isStr := v.(string)
	if !isStr || (!nullOK && s == "") {
		return "", patchError(ops, field+" must be a non-empty string")
	}
	return s, nil
}

func (a *API) deleteAudit(w http.ResponseWriter, r *http.Request) error {
	au, err := a.deps.Store.GetAudit(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if !audit.AuditTransitionAllowed(au.State, audit.StateDeleted) {
		return badRequest("Couldn't delete when state is '%s'.", au.State)
	}
	if err := a.deps.Store.DeleteAudit(r.Context(), au.UUID, au.State); err != nil {
		if errors.Is(err, audit.ErrConflict) {
			return conflictErr("Audit %s changed state meanwhile; read it again and retry", au.UUID)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
