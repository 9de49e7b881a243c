package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/web/store"
)

func indicatorsOrEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

func (a *API) planView(r *http.Request, p *audit.ActionPlan, detail bool) obj {
	o := obj{"uuid": p.UUID, "state": p.State, "efficacy_indicators": indicatorsOrEmpty(p.EfficacyIndicators),
		"global_efficacy": indicatorsOrEmpty(p.GlobalEfficacy), "updated_at": awareTime(p.UpdatedAt),
		"audit_uuid": p.AuditUUID, "strategy_uuid": nullable(p.StrategyUUID), "strategy_name": nullable(p.StrategyName),
		"links": a.links(r, "action_plans", p.UUID)}
	if detail {
		o["hostname"] = nullable(p.Hostname)
		o["created_at"], o["deleted_at"] = awareTime(&p.CreatedAt), awareTime(p.DeletedAt)
		if versionFrom(r.Context()).AtLeast(vSkipAction) {
			o["status_message"] = nullable(p.StatusMessage)
		}
	}
	return o
}

func (a *API) listPlans(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionActionPlans, filters: []string{"audit_uuid", "strategy"},
		uuidFilters: []string{"audit_uuid"}}, detail,
		func(r *http.Request, args listArgs) ([]audit.ActionPlan, error) {
			return a.deps.Store.ListActionPlans(r.Context(), store.PlanListFilter{AuditUUID: args.get("audit_uuid"),
				Strategy: args.get("strategy")}, args.page)
		}, a.planView, func(p *audit.ActionPlan) string { return p.UUID })
}

// planByRoute reads the plan a path names (a UUID, as WSME types it).
func (a *API) planByRoute(r *http.Request) (*audit.ActionPlan, error) {
	id, err := routeUUID("action_plan_uuid", chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	return a.deps.Store.GetActionPlan(r.Context(), id)
}

func (a *API) getPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := a.planByRoute(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.planView(r, p, true))
}

var planPatchRules = patchRules{internal: []string{"/status_message"}, allowed: []string{"/state"}}

func (a *API) patchPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := a.planByRoute(r)
	if err != nil {
		return err
	}
	ops, err := a.readPatch(r, planPatchRules)
	if err != nil {
		return err
	}
	for _, op := range ops {
		var s string
		if op.HasValue && json.Unmarshal(op.Value, &s) == nil && s != "" && !slices.Contains(audit.PlanStates, s) {
			return patchError([]PatchOp{op}, "Invalid state: "+s)
		}
	}
	out, err := ApplyPatch(obj{"state": p.State}, ops)
	if err != nil {
		return err
	}
	to, err := patchedString(ops, out, "state", false)
	if err != nil {
		return err
	}
	if to != p.State || slices.ContainsFunc(ops, func(op PatchOp) bool { return op.Path == "/state" }) {
		if !audit.PlanPatchAllowed(p.State, to) {
			return patchError(ops, fmt.Sprintf("State transition not allowed: (%s -> %s)", p.State, to))
		}
		if err := a.movePlan(r.Context(), p, to); err != nil {
			return err
		}
	}
	p, err = a.deps.Store.GetActionPlan(r.Context(), p.UUID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.planView(r, p, true))
}

// movePlan performs a transition PATCH or /start asked for: launch on
// PENDING, cascade to the actions on CANCELLED, tell the applier on
// CANCELLING.
func (a *API) movePlan(ctx context.Context, p *audit.ActionPlan, to string) error {
	var err error
	switch to {
	case audit.StateCancelled:
		err = a.deps.Store.CancelPlan(ctx, p.UUID, p.State)
	default:
		err = a.deps.Store.TransitionPlan(ctx, p.UUID, p.State, to, "")
	}
	if errors.Is(err, audit.ErrConflict) {
		return conflictErr("Action plan %s changed state meanwhile; read it again and retry", p.UUID)
	}
	if err != nil {
		return err
	}
	switch to {
	case audit.StatePending:
		a.runner.Launch(ctx, p.UUID)
	case audit.StateCancelled, audit.StateCancelling:
		if c, ok := a.deps.Launcher.(Canceller); ok && (to == audit.StateCancelling || p.State == audit.StatePending) {
			if err := c.Cancel(context.WithoutCancel(ctx), p.UUID); err != nil {
				a.logger.Warn("Applier did not take the cancellation; it will see it at its next state change",
					"action_plan", p.UUID, "err", err)
			}
		}
	}
	return nil
}

func (a *API) startPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := a.planByRoute(r)
	if err != nil {
		return err
	}
	// watcherclient sends {}; the body is not used.
	if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxBodyBytes)); err != nil {
		return badRequest("Cannot read the request body: %v", err)
	}
	if p.State != audit.StateRecommended {
		return badRequest("Couldn't start when state is '%s'.", p.State)
	}
	if err := a.movePlan(r.Context(), p, audit.StatePending); err != nil {
		return err
	}
	p, err = a.deps.Store.GetActionPlan(r.Context(), p.UUID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.planView(r, p, true))
}

func (a *API) deletePlan(w http.ResponseWriter, r *http.Request) error {
	p, err := a.planByRoute(r)
	if err != nil {
		return err
	}
	if !audit.PlanDeletable(p.State) {
		return badRequest("Couldn't delete when state is '%s'.", p.State)
	}
	if err := a.deps.Store.DeletePlan(r.Context(), p.UUID, p.State); err != nil {
		if errors.Is(err, audit.ErrConflict) {
			return conflictErr("Action plan %s changed state meanwhile; read it again and retry", p.UUID)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) actionView(r *http.Request, ac *audit.Action, detail bool) obj {
	parents := ac.Parents
	if parents == nil {
		parents = []string{}
	}
	o := obj{"uuid": ac.UUID, "state": ac.State, "action_plan_uuid": ac.ActionPlanUUID, "action_type": string(ac.Type),
		"parents": parents, "links": a.links(r, "actions", ac.UUID)}
	if detail {
		params := ac.InputParameters
		if params == nil {
			params = map[string]any{}
		}
		o["description"], o["input_parameters"] = ac.Type.Description(), params
		o["created_at"], o["updated_at"], o["deleted_at"] = awareTime(&ac.CreatedAt), awareTime(ac.UpdatedAt), awareTime(ac.DeletedAt)
		if versionFrom(r.Context()).AtLeast(vSkipAction) {
			o["status_message"] = nullable(ac.StatusMessage)
		}
	}
	return o
}

func (a *API) listActions(detail bool) handler {
	return collectionHandler(a, listSpec{collection: store.CollectionActions, filters: []string{"action_plan_uuid", "audit_uuid"},
		uuidFilters: []string{"action_plan_uuid", "audit_uuid"}}, detail,
		func(r *http.Request, args listArgs) ([]audit.Action, error) {
			f := store.ActionListFilter{ActionPlanUUID: args.get("action_plan_uuid"), AuditUUID: args.get("audit_uuid")}
			if f.ActionPlanUUID != "" && f.AuditUUID != "" {
				return nil, badRequest("Filtering actions on both audit and action-plan is prohibited")
			}
			return a.deps.Store.ListActions(r.Context(), f, args.page)
		}, a.actionView, func(ac *audit.Action) string { return ac.UUID })
}

func (a *API) actionByRoute(r *http.Request) (*audit.Action, error) {
	id, err := routeUUID("action_uuid", chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	return a.deps.Store.GetAction(r.Context(), id)
}

func (a *API) getAction(w http.ResponseWriter, r *http.Request) error {
	ac, err := a.actionByRoute(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.actionView(r, ac, true))
}

// actionPatchRules: only state and status_message, and nothing may be
// removed (Watcher lists every field as mandatory).
var actionPatchRules = patchRules{
	allowed:        []string{"/state", "/status_message"},
	watcherAllowed: true,
	mandatory: []string{"/id", "/uuid", "/action_plan_id", "/action_type", "/input_parameters", "/state", "/parents",
		"/status_message", "/created_at", "/updated_at", "/deleted_at"},
}

// skippedByUser is the status message Watcher records on a user skip.
const skippedByUser = "Action skipped by user."

func (a *API) patchAction(w http.ResponseWriter, r *http.Request) error {
	if !versionFrom(r.Context()).AtLeast(vSkipAction) {
		return badRequest("API microversion 1.5 or higher is required.")
	}
	ac, err := a.actionByRoute(r)
	if err != nil {
		return err
	}
	ops, err := a.readPatch(r, actionPatchRules)
	if err != nil {
		return err
	}
	for _, op := range ops {
		var s string
		if op.Path == "/state" && op.HasValue && json.Unmarshal(op.Value, &s) == nil && s != "" && !slices.Contains(audit.ActionStates, s) {
			return patchError([]PatchOp{op}, "Invalid state: "+s)
		}
	}
	out, err := ApplyPatch(obj{"state": ac.State, "status_message": nullable(ac.StatusMessage)}, ops)
	if err != nil {
		return err
	}
	to, err := patchedString(ops, out, "state", false)
	if err != nil {
		return err
	}
	reason, err := patchedString(ops, out, "status_message", true)
	if err != nil {
		return err
	}
	message := skippedByUser
	if reason != ac.StatusMessage && reason != "" {
		if to == ac.State && ac.State != audit.StateSkipped {
			return conflictErr("status_message update only allowed when action state is SKIPPED")
		}
		message = fmt.Sprintf("%s Reason: %s", skippedByUser, reason)
	}
	switch {
	case to != ac.State:
		if to != audit.StateSkipped || ac.State != audit.StatePending {
			return conflictErr("State transition not allowed: (%s -> %s)", ac.State, to)
		}
		err = a.deps.Store.SkipAction(r.Context(), ac.UUID, message)
	case reason != ac.StatusMessage && reason != "":
		err = a.deps.Store.SetActionStatusMessage(r.Context(), ac.UUID, message)
	}
	switch {
	case errors.Is(err, store.ErrPlanState), errors.Is(err, audit.ErrConflict):
		return conflictErr("%s", err.Error())
	case err != nil:
		return err
	}
	ac, err = a.deps.Store.GetAction(r.Context(), ac.UUID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.actionView(r, ac, true))
}

// postWebhook triggers an EVENT audit (POST /v1/webhooks/{audit}); the
// body, whatever JSON it is, is ignored. 202 with no body.
func (a *API) postWebhook(w http.ResponseWriter, r *http.Request) error {
	b, err := readRaw(r)
	if err != nil {
		return err
	}
	if len(b) > 0 && !json.Valid(b) {
		return badRequest("Invalid JSON body")
	}
	err = a.runner.TriggerEvent(r.Context(), chi.URLParam(r, "audit"))
	var te *audit.TriggerError
	switch {
	case errors.As(err, &te):
		return badRequest("%s", te.Msg)
	case errors.Is(err, audit.ErrQueueFull):
		return errorf(http.StatusServiceUnavailable, "Too many audits waiting to run; retry later")
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// readRaw reads a body up to maxBodyBytes.
func readRaw(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest("Cannot read the request body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "Request body larger than %d bytes", maxBodyBytes)
	}
	return b, nil
}
