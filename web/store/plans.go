package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/goal"
)

var (
	_ actuators.StateStore = (*Store)(nil)
	_ applier.PlanLoader   = (*Store)(nil)
	_ audit.Store          = (*Store)(nil)
)

func scanPlan(sc interface{ Scan(...any) error }) (audit.ActionPlan, error) {
	var p audit.ActionPlan
	var stUUID, stName, host, msg, updated, deleted sql.NullString
	var indicators, global, extra, created string
	err := sc.Scan(&p.ID, &p.UUID, &p.AuditUUID, &stUUID, &stName, &p.State, &indicators, &global, &host, &msg, &extra,
		&created, &updated, &deleted)
	if err != nil {
		return p, err
	}
	p.StrategyUUID, p.StrategyName, p.Hostname, p.StatusMessage = stUUID.String, stName.String, host.String, msg.String
	if err := json.Unmarshal([]byte(indicators), &p.EfficacyIndicators); err != nil {
		return p, fmt.Errorf("action plan %s: efficacy_indicators: %w", p.UUID, err)
	}
	if err := json.Unmarshal([]byte(global), &p.GlobalEfficacy); err != nil {
		return p, fmt.Errorf("action plan %s: global_efficacy: %w", p.UUID, err)
	}
	p.Extra = json.RawMessage(extra)
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return p, nil
}

func scanAction(sc interface{ Scan(...any) error }) (audit.Action, error) {
	var a audit.Action
	var typ, params, parents, created string
	var msg, updated, deleted sql.NullString
	err := sc.Scan(&a.ID, &a.UUID, &a.ActionPlanUUID, &typ, &params, &a.State, &parents, &a.Description, &msg, &created,
		&updated, &deleted)
	if err != nil {
		return a, err
	}
	a.Type = action.Type(typ)
	if err := json.Unmarshal([]byte(params), &a.InputParameters); err != nil {
		return a, fmt.Errorf("action %s: input_parameters: %w", a.UUID, err)
	}
	if err := json.Unmarshal([]byte(parents), &a.Parents); err != nil {
		return a, fmt.Errorf("action %s: parents: %w", a.UUID, err)
	}
	a.StatusMessage = msg.String
	a.CreatedAt, a.UpdatedAt, a.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return a, nil
}

func indicatorsText(l []goal.Indicator) (string, error) {
	if l == nil {
		l = []goal.Indicator{}
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// SavePlan implements audit.PlanStore. The engine's plan and action IDs are
// derived from the request and so repeat between runs on an unchanged
// cluster; stored plans get a fresh UUID and their actions UUIDs derived
// from it.
func (s *Store) SavePlan(ctx context.Context, req audit.SaveRequest) (*audit.ActionPlan, error) {
	p := req.Plan
	planUUID := uuid.New()
	ids := make(map[string]string, len(p.Actions))
	for _, a := range p.Actions {
		ids[a.ID] = uuid.NewSHA1(planUUID, []byte(a.ID)).String()
	}
	extraPlan := *p
	extraPlan.Actions, extraPlan.Moves = nil, nil
	extra, err := json.Marshal(extraPlan)
	if err != nil {
		return nil, err
	}
	indicators, err := indicatorsText(p.EfficacyIndicators)
	if err != nil {
		return nil, err
	}
	global, err := indicatorsText(p.GlobalEfficacy)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(t *tx) error {
		var auditID int64
		var state string
		err := t.QueryRowContext(t.ctx, "SELECT id, state FROM audits WHERE uuid = ? AND deleted = 0", req.AuditUUID).Scan(&auditID, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("Audit", req.AuditUUID)
		}
		if err != nil {
			return err
		}
		if state != audit.StateOngoing {
			return conflict("audit %s is %s, not ONGOING", req.AuditUUID, state)
		}
		if req.Supersede {
			if err := t.supersede(auditID, req.AuditUUID); err != nil {
				return err
			}
		}
		res, err := t.exec(`INSERT INTO action_plans (uuid, audit_id, strategy_id, state, efficacy_indicators,
			global_efficacy, hostname, extra, created_at)
			VALUES (?, ?, (SELECT id FROM strategies WHERE name = ? AND deleted = 0), ?, ?, ?, ?, ?, ?)`,
			planUUID.String(), auditID, p.Strategy, req.State, indicators, global, nil, string(extra),
			fmtTime(t.now))
		if err != nil {
			return err
		}
		planID, err := res.LastInsertId()
		if err != nil {
			return err
		}
		stmt, err := t.PrepareContext(t.ctx, `INSERT INTO actions (uuid, action_plan_id, action_type, input_parameters,
			state, parents, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, a := range p.Actions {
			parents := make([]string, 0, len(a.Parents))
			for _, pid := range a.Parents {
				np, ok := ids[pid]
				if !ok {
					return fmt.Errorf("action %s: parent %s is not in the plan", a.ID, pid)
				}
				parents = append(parents, np)
			}
			params, err := jsonText(a.InputParameters, "{}")
			if err != nil {
				return err
			}
			pj, _ := json.Marshal(parents)
			if _, err := stmt.ExecContext(t.ctx, ids[a.ID], planID, string(a.Type), params, audit.StatePending, string(pj),
				a.Description, fmtTime(t.now)); err != nil {
				return err
			}
		}
		if err := t.stateChanged(StateChange{Resource: ResourceActionPlan, UUID: planUUID.String(), State: req.State,
			AuditUUID: req.AuditUUID}); err != nil {
			return err
		}
		if req.AuditState != "" {
			if _, err := t.exec("UPDATE audits SET state = ?, updated_at = ? WHERE id = ?", req.AuditState, fmtTime(t.now), auditID); err != nil {
				return err
			}
			return t.stateChanged(StateChange{Resource: ResourceAudit, UUID: req.AuditUUID, State: req.AuditState,
				PreviousState: audit.StateOngoing})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The plan is committed: reading it back must not fail because the
	// caller's context ended in between (a shutdown would otherwise report
	// a stored plan as lost).
	return s.GetActionPlan(context.WithoutCancel(ctx), planUUID.String())
}

// Status messages of plans the store supersedes.
const (
	msgSuperseded = "Superseded by a newer run of the continuous audit."
	msgExpired    = "Expired: recommended for longer than action_plan_expiry."
)

// supersede moves an audit's RECOMMENDED plans to SUPERSEDED.
func (t *tx) supersede(auditID int64, auditUUID string) error {
	rows, err := t.QueryContext(t.ctx, "SELECT uuid FROM action_plans WHERE audit_id = ? AND state = ? AND deleted = 0",
		auditID, audit.StateRecommended)
	if err != nil {
		return err
	}
	var old []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		old = append(old, id)
	}
	rows.Close()
	for _, id := range old {
		if err := t.setPlanState(id, audit.StateRecommended, audit.StateSuperseded, msgSuperseded); err != nil {
			return err
		}
		if err := t.stateChanged(StateChange{Resource: ResourceActionPlan, UUID: id, State: audit.StateSuperseded,
			PreviousState: audit.StateRecommended, AuditUUID: auditUUID, StatusMessage: msgSuperseded}); err != nil {
			return err
		}
	}
	return nil
}

// PlanListFilter filters the action plans collection.
type PlanListFilter struct {
	AuditUUID string
	// Strategy is a UUID or a name.
	Strategy string
}

// ListActionPlans lists action plans.
func (s *Store) ListActionPlans(ctx context.Context, f PlanListFilter, p Page) ([]audit.ActionPlan, error) {
	where, args := RefFilter{Strategy: f.Strategy}.where("", "s")
	if f.AuditUUID != "" {
		where = append(where, "au.uuid = ?")
		args = append(args, canonical(f.AuditUUID))
	}
	return list(s, ctx, CollectionActionPlans, where, args, p, scanPlan)
}

func canonical(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}

// GetActionPlan returns a plan by id or UUID.
func (s *Store) GetActionPlan(ctx context.Context, id string) (*audit.ActionPlan, error) {
	p, err := scanPlan(s.one(ctx, CollectionActionPlans, id, false))
	return found(&p, err, "ActionPlan", id)
}

// OngoingPlan implements audit.PlanStore.
func (s *Store) OngoingPlan(ctx context.Context) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, "SELECT uuid FROM action_plans WHERE state = ? AND deleted = 0 ORDER BY id LIMIT 1",
		audit.StateOngoing).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// planState reads a live plan's state and audit inside a transaction.
func (t *tx) planState(id string) (planID int64, state, auditUUID string, err error) {
	err = t.QueryRowContext(t.ctx, `SELECT ap.id, ap.state, au.uuid FROM action_plans ap JOIN audits au ON au.id = ap.audit_id
		WHERE ap.uuid = ? AND ap.deleted = 0`, id).Scan(&planID, &state, &auditUUID)
	if errors.Is(err, sql.ErrNoRows) {
		err = notFound("ActionPlan", id)
	}
	return planID, state, auditUUID, err
}

// TransitionPlan implements actuators.StateStore and audit.PlanStore: a
// compare-and-set of a plan's state; a non-empty message becomes its
// status_message.
func (s *Store) TransitionPlan(ctx context.Context, planID, from, to, message string) error {
	return s.transition(ctx, ResourceActionPlan, planID, from, to, message)
}

// transition is the compare-and-set of a plan's or an action's state, with
// its audit log entry and event.
func (s *Store) transition(ctx context.Context, resource, id, from, to, message string) error {
	return s.write(ctx, func(t *tx) error {
		sc := StateChange{Resource: resource, UUID: id, State: to, PreviousState: from, StatusMessage: message}
		var state, table string
		var err error
		if resource == ResourceActionPlan {
			table = "action_plans"
			_, state, sc.AuditUUID, err = t.planState(id)
		} else {
			table = "actions"
			state, sc.ActionPlanUUID, _, err = t.actionState(id)
		}
		if err != nil {
			return err
		}
		if state != from {
			return conflict("%s %s is %s, not %s", strings.ReplaceAll(resource, "_", " "), id, state, from)
		}
		if err := t.setState(table, id, from, to, message); err != nil {
			return err
		}
		return t.stateChanged(sc)
	})
}

// setState is the compare-and-set UPDATE of a plan's or an action's state
// (table action_plans or actions); a non-empty message becomes the
// status_message.
func (t *tx) setState(table, id, from, to, message string) error {
	q := "UPDATE " + table + " SET state = ?, updated_at = ?"
	args := []any{to, fmtTime(t.now)}
	if message != "" {
		q += ", status_message = ?"
		args = append(args, message)
	}
	if table == "action_plans" && to == audit.StateOngoing {
		// Watcher's hostname of a plan is the applier's host.
		q += ", hostname = ?"
		args = append(args, t.s.cfg.Hostname)
	}
	res, err := t.exec(q+" WHERE uuid = ? AND state = ? AND deleted = 0", append(args, id, from)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conflict("%s %s is no longer %s", strings.TrimSuffix(table, "s"), id, from)
	}
	return nil
}

func (t *tx) setPlanState(id, from, to, message string) error {
	return t.setState("action_plans", id, from, to, message)
}

// CancelPlan moves a RECOMMENDED or PENDING plan (still in state from) to
// CANCELLED and its PENDING actions with it, as Watcher's PATCH does.
func (s *Store) CancelPlan(ctx context.Context, id, from string) error {
	return s.write(ctx, func(t *tx) error {
		planID, state, auditUUID, err := t.planState(id)
		if err != nil {
			return err
		}
		if state != from {
			return conflict("action plan %s is %s, not %s", id, state, from)
		}
		if err := t.setPlanState(id, from, audit.StateCancelled, ""); err != nil {
			return err
		}
		if err := t.stateChanged(StateChange{Resource: ResourceActionPlan, UUID: id, State: audit.StateCancelled,
			PreviousState: from, AuditUUID: auditUUID}); err != nil {
			return err
		}
		return t.cascadeActions(planID, id, audit.StatePending, audit.StateCancelled, false)
	})
}

// cascadeActions moves a plan's actions in state from to state to (and
// soft-deletes them when del).
func (t *tx) cascadeActions(planID int64, planUUID, from, to string, del bool) error {
	q := "SELECT uuid, state FROM actions WHERE action_plan_id = ? AND deleted = 0"
	args := []any{planID}
	if from != "" {
		q += " AND state = ?"
		args = append(args, from)
	}
	rows, err := t.QueryContext(t.ctx, q, args...)
	if err != nil {
		return err
	}
	type row struct{ id, state string }
	var moved []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.state); err != nil {
			rows.Close()
			return err
		}
		moved = append(moved, r)
	}
	rows.Close()
	upd := "UPDATE actions SET state = ?, updated_at = ?"
	if del {
		upd += ", deleted = id, deleted_at = ?"
	}
	stmt, err := t.PrepareContext(t.ctx, upd+" WHERE uuid = ?")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range moved {
		args := []any{to, fmtTime(t.now)}
		if del {
			args = append(args, fmtTime(t.now))
		}
		if _, err := stmt.ExecContext(t.ctx, append(args, r.id)...); err != nil {
			return err
		}
		if err := t.stateChanged(StateChange{Resource: ResourceAction, UUID: r.id, State: to, PreviousState: r.state,
			ActionPlanUUID: planUUID}); err != nil {
			return err
		}
	}
	return nil
}

// DeletePlan soft-deletes a plan still in state from, with its actions,
// moving both to DELETED (Watcher cascades the same way).
func (s *Store) DeletePlan(ctx context.Context, id, from string) error {
	return s.write(ctx, func(t *tx) error {
		planID, state, auditUUID, err := t.planState(id)
		if err != nil {
			return err
		}
		if state != from {
			return conflict("action plan %s is %s, not %s", id, state, from)
		}
		if _, err := t.exec(`UPDATE action_plans SET state = ?, deleted = id, deleted_at = ?, updated_at = ?
			WHERE id = ?`, audit.StateDeleted, fmtTime(t.now), fmtTime(t.now), planID); err != nil {
			return err
		}
		if err := t.stateChanged(StateChange{Resource: ResourceActionPlan, UUID: id, State: audit.StateDeleted,
			PreviousState: from, AuditUUID: auditUUID}); err != nil {
			return err
		}
		return t.cascadeActions(planID, id, "", audit.StateDeleted, true)
	})
}

// ExpirePlans implements audit.PlanStore.
func (s *Store) ExpirePlans(ctx context.Context, createdBefore time.Time) ([]string, error) {
	var out []string
	err := s.write(ctx, func(t *tx) error {
		rows, err := t.QueryContext(t.ctx, `SELECT ap.uuid, au.uuid FROM action_plans ap JOIN audits au ON au.id = ap.audit_id
			WHERE ap.state = ? AND ap.created_at < ? AND ap.deleted = 0`, audit.StateRecommended, fmtTime(createdBefore))
		if err != nil {
			return err
		}
		var ids, audits []string
		for rows.Next() {
			var id, au string
			if err := rows.Scan(&id, &au); err != nil {
				rows.Close()
				return err
			}
			ids, audits = append(ids, id), append(audits, au)
		}
		rows.Close()
		for i, id := range ids {
			if err := t.setPlanState(id, audit.StateRecommended, audit.StateSuperseded, msgExpired); err != nil {
				return err
			}
			if err := t.stateChanged(StateChange{Resource: ResourceActionPlan, UUID: id, State: audit.StateSuperseded,
				PreviousState: audit.StateRecommended, AuditUUID: audits[i], StatusMessage: msgExpired}); err != nil {
				return err
			}
		}
		out = ids
		return nil
	})
	return out, err
}

// ActionListFilter filters the actions collection.
type ActionListFilter struct {
	ActionPlanUUID string
	AuditUUID      string
}

// ListActions lists actions.
func (s *Store) ListActions(ctx context.Context, f ActionListFilter, p Page) ([]audit.Action, error) {
	var where []string
	var args []any
	if f.ActionPlanUUID != "" {
		where = append(where, "ap.uuid = ?")
		args = append(args, canonical(f.ActionPlanUUID))
	}
	if f.AuditUUID != "" {
		where = append(where, "ap.audit_id = (SELECT id FROM audits WHERE uuid = ?)")
		args = append(args, canonical(f.AuditUUID))
	}
	return list(s, ctx, CollectionActions, where, args, p, scanAction)
}

// GetAction returns an action by id or UUID.
func (s *Store) GetAction(ctx context.Context, id string) (*audit.Action, error) {
	a, err := scanAction(s.one(ctx, CollectionActions, id, false))
	return found(&a, err, "Action", id)
}

// actionState reads a live action's state and plan inside a transaction.
func (t *tx) actionState(id string) (state, planUUID, planState string, err error) {
	err = t.QueryRowContext(t.ctx, `SELECT ac.state, ap.uuid, ap.state FROM actions ac
		JOIN action_plans ap ON ap.id = ac.action_plan_id WHERE ac.uuid = ? AND ac.deleted = 0`, id).Scan(&state, &planUUID, &planState)
	if errors.Is(err, sql.ErrNoRows) {
		err = notFound("Action", id)
	}
	return state, planUUID, planState, err
}

// TransitionAction implements actuators.StateStore: a compare-and-set of an
// action's state; a non-empty message becomes its status_message.
func (s *Store) TransitionAction(ctx context.Context, actionID, from, to, message string) error {
	return s.transition(ctx, ResourceAction, actionID, from, to, message)
}

func (t *tx) setActionState(id, from, to, message string) error {
	return t.setState("actions", id, from, to, message)
}

// ErrPlanState is returned by SkipAction when the action's plan is no longer
// RECOMMENDED or PENDING.
var ErrPlanState = errors.New("action plan state does not allow the update")

type planStateError struct{ state string }

func (e *planStateError) Error() string {
	return "State update not allowed for actionplan state: " + e.state
}

func (e *planStateError) Is(target error) bool { return target == ErrPlanState }

// SkipAction moves a PENDING action to SKIPPED while its plan is
// RECOMMENDED or PENDING (ErrPlanState otherwise), recording message.
func (s *Store) SkipAction(ctx context.Context, id, message string) error {
	return s.write(ctx, func(t *tx) error {
		state, planUUID, planState, err := t.actionState(id)
		if err != nil {
			return err
		}
		stateOK, planOK := audit.ActionSkipAllowed(state, planState)
		if !stateOK {
			return conflict("State transition not allowed: (%s -> %s)", state, audit.StateSkipped)
		}
		if !planOK {
			return &planStateError{state: planState}
		}
		if err := t.setActionState(id, state, audit.StateSkipped, message); err != nil {
			return err
		}
		return t.stateChanged(StateChange{Resource: ResourceAction, UUID: id, State: audit.StateSkipped,
			PreviousState: state, StatusMessage: message, ActionPlanUUID: planUUID})
	})
}

// SetActionStatusMessage changes the status message of a SKIPPED action.
func (s *Store) SetActionStatusMessage(ctx context.Context, id, message string) error {
	return s.write(ctx, func(t *tx) error {
		res, err := t.exec("UPDATE actions SET status_message = ?, updated_at = ? WHERE uuid = ? AND state = ? AND deleted = 0",
			message, fmtTime(t.now), id, audit.StateSkipped)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return conflict("status_message update only allowed when action state is SKIPPED")
		}
		return nil
	})
}

// PlanActions returns a plan's live actions in their stored order (parents
// first), for the applier to resume a plan after a restart.
func (s *Store) PlanActions(ctx context.Context, planUUID string) ([]audit.Action, error) {
	c := collections[CollectionActions]
	rows, err := s.db.QueryContext(ctx, "SELECT "+c.columns+" FROM "+c.from+" WHERE ap.uuid = ? AND ac.deleted = 0 ORDER BY ac.id",
		canonical(planUUID))
	if err != nil {
		return nil, err
	}
	return collectRows(rows, scanAction)
}

// ApplierPlan returns a stored plan as the applier runs it: its actions
// (IDs are the stored UUIDs, parents first) with their current states and
// the planner's concurrency limits.
func (s *Store) ApplierPlan(ctx context.Context, planUUID string) (applier.Plan, error) {
	rec, err := s.GetActionPlan(ctx, planUUID)
	if err != nil {
		return applier.Plan{}, err
	}
	var extra decision.Plan
	if err := json.Unmarshal(rec.Extra, &extra); err != nil {
		return applier.Plan{}, fmt.Errorf("action plan %s: %w", planUUID, err)
	}
	acts, err := s.PlanActions(ctx, rec.UUID)
	if err != nil {
		return applier.Plan{}, err
	}
	p := applier.Plan{ID: rec.UUID, State: rec.State, Limits: extra.Concurrency, Actions: make([]applier.Action, 0, len(acts))}
	for _, a := range acts {
		p.Actions = append(p.Actions, applier.Action{State: a.State, Action: action.Action{ID: a.UUID, Type: a.Type,
			Description: a.Description, InputParameters: a.InputParameters, Parents: a.Parents}})
	}
	return p, nil
}

// UnfinishedPlans implements applier.PlanLoader: the live plans PENDING,
// ONGOING or CANCELLING, oldest first, with their actions' states.
func (s *Store) UnfinishedPlans(ctx context.Context) ([]applier.Plan, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT uuid FROM action_plans WHERE deleted = 0 AND state IN (?, ?, ?) ORDER BY id",
		audit.StatePending, audit.StateOngoing, audit.StateCancelling)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]applier.Plan, 0, len(ids))
	for _, id := range ids {
		p, err := s.ApplierPlan(ctx, id)
		if errors.Is(err, audit.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
