package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision/audit"
)

// AuditTemplate is an audit template row.
type AuditTemplate struct {
	ID                         int64
	UUID                       string
	Name                       string
	Description                *string
	GoalUUID, GoalName         string
	StrategyUUID, StrategyName string
	Scope                      json.RawMessage
	// DefaultParameters is nil when unset (null in the API).
	DefaultParameters    map[string]any
	CreatedAt            time.Time
	UpdatedAt, DeletedAt *time.Time
}

// RefFilter filters audits, templates and plans by goal and strategy, each
// a UUID or a name.
type RefFilter struct {
	Goal, Strategy string
}

func (f RefFilter) where(goalAlias, strategyAlias string) ([]string, []any) {
	var where []string
	var args []any
	if f.Goal != "" {
		w, a := refFilter(goalAlias, f.Goal)
		where, args = append(where, w...), append(args, a...)
	}
	if f.Strategy != "" {
		w, a := refFilter(strategyAlias, f.Strategy)
		where, args = append(where, w...), append(args, a...)
	}
	return where, args
}

func jsonText(v any, empty string) (string, error) {
	if v == nil {
		return empty, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func scopeText(s json.RawMessage) string {
	if len(s) == 0 || string(s) == "null" {
		return "[]"
	}
	return string(s)
}

func scanTemplate(sc interface{ Scan(...any) error }) (AuditTemplate, error) {
	var t AuditTemplate
	var desc, stUUID, stName, defaults, updated, deleted sql.NullString
	var scope, created string
	err := sc.Scan(&t.ID, &t.UUID, &t.Name, &desc, &t.GoalUUID, &t.GoalName, &stUUID, &stName, &scope, &defaults,
		&created, &updated, &deleted)
	if err != nil {
		return t, err
	}
	if desc.Valid {
		t.Description = &desc.String
	}
	t.StrategyUUID, t.StrategyName, t.Scope = stUUID.String, stName.String, json.RawMessage(scope)
	if defaults.Valid {
		if err := json.Unmarshal([]byte(defaults.String), &t.DefaultParameters); err != nil {
			return t, fmt.Errorf("audit template %s: default_parameters: %w", t.UUID, err)
		}
	}
	t.CreatedAt, t.UpdatedAt, t.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return t, nil
}

const (
	goalIDByUUID     = "(SELECT id FROM goals WHERE uuid = ? AND deleted = 0)"
	strategyIDByUUID = "(SELECT id FROM strategies WHERE uuid = ? AND deleted = 0)"
)

// CreateAuditTemplate stores a new template; GoalUUID (and StrategyUUID if
// set) must name live rows. The name must be unused (ErrDuplicate).
func (s *Store) CreateAuditTemplate(ctx context.Context, at AuditTemplate) (*AuditTemplate, error) {
	at.UUID = uuid.NewString()
	defaults, err := jsonText(at.DefaultParameters, "")
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO audit_templates (uuid, name, description, goal_id, strategy_id, scope,
			default_parameters, created_at) VALUES (?, ?, ?, `+goalIDByUUID+`, `+strategyIDByUUID+`, ?, ?, ?)`,
			at.UUID, at.Name, at.Description, at.GoalUUID, nullString(at.StrategyUUID), scopeText(at.Scope),
			nullString(defaults), fmtTime(t.now))
		if isUnique(err) {
			return fmt.Errorf("audit template %s: %w", at.Name, ErrDuplicate)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.GetAuditTemplate(ctx, at.UUID)
}

// ListAuditTemplates lists templates.
func (s *Store) ListAuditTemplates(ctx context.Context, f RefFilter, p Page) ([]AuditTemplate, error) {
	where, args := f.where("g", "s")
	return list(s, ctx, CollectionAuditTemplates, where, args, p, scanTemplate)
}

// GetAuditTemplate returns a template by id, UUID or name.
func (s *Store) GetAuditTemplate(ctx context.Context, id string) (*AuditTemplate, error) {
	t, err := scanTemplate(s.one(ctx, CollectionAuditTemplates, id, true))
	return found(&t, err, "AuditTemplate", id)
}

// UpdateAuditTemplate saves a patched template.
func (s *Store) UpdateAuditTemplate(ctx context.Context, at AuditTemplate) (*AuditTemplate, error) {
	defaults, err := jsonText(at.DefaultParameters, "")
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE audit_templates SET name = ?, description = ?, goal_id = `+goalIDByUUID+`,
			strategy_id = `+strategyIDByUUID+`, scope = ?, default_parameters = ?, updated_at = ?
			WHERE uuid = ? AND deleted = 0`, at.Name, at.Description, at.GoalUUID, nullString(at.StrategyUUID),
			scopeText(at.Scope), nullString(defaults), fmtTime(t.now), at.UUID)
		if isUnique(err) {
			return fmt.Errorf("audit template %s: %w", at.Name, ErrDuplicate)
		}
		return affected(res, err, "AuditTemplate", at.UUID)
	})
	if err != nil {
		return nil, err
	}
	return s.GetAuditTemplate(ctx, at.UUID)
}

// DeleteAuditTemplate soft-deletes a template.
func (s *Store) DeleteAuditTemplate(ctx context.Context, id string) error {
	return s.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE audit_templates SET deleted = id, deleted_at = ? WHERE uuid = ? AND deleted = 0`,
			fmtTime(t.now), id)
		return affected(res, err, "AuditTemplate", id)
	})
}

func affected(res sql.Result, err error, kind, id string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(kind, id)
	}
	return nil
}

func scanAudit(sc interface{ Scan(...any) error }) (audit.Audit, error) {
	var a audit.Audit
	var typ, params, scope, created string
	var stUUID, stName, interval, next, host, start, end, msg, updated, deleted sql.NullString
	var auto, force int
	err := sc.Scan(&a.ID, &a.UUID, &a.Name, &typ, &a.State, &a.GoalUUID, &a.GoalName, &stUUID, &stName, &params,
		&interval, &scope, &auto, &force, &next, &host, &start, &end, &msg, &created, &updated, &deleted)
	if err != nil {
		return a, err
	}
	a.Type = audit.Type(typ)
	a.StrategyUUID, a.StrategyName = stUUID.String, stName.String
	if err := json.Unmarshal([]byte(params), &a.Parameters); err != nil {
		return a, fmt.Errorf("audit %s: parameters: %w", a.UUID, err)
	}
	a.Interval, a.Scope = interval.String, json.RawMessage(scope)
	a.AutoTrigger, a.Force = auto != 0, force != 0
	a.NextRunTime, a.StartTime, a.EndTime = timePtr(next), timePtr(start), timePtr(end)
	a.Hostname, a.StatusMessage = host.String, msg.String
	a.CreatedAt, a.UpdatedAt, a.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return a, nil
}

// CreateAudit stores a new PENDING audit; GoalUUID (and StrategyUUID if
// set) must name live rows. The name must be unused (ErrDuplicate).
func (s *Store) CreateAudit(ctx context.Context, a audit.Audit) (*audit.Audit, error) {
	a.UUID = uuid.NewString()
	a.State = audit.StatePending
	params, err := jsonText(a.Parameters, "{}")
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO audits (uuid, name, audit_type, state, parameters, audit_interval, scope, goal_id,
			strategy_id, auto_trigger, force, start_time, end_time, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, `+goalIDByUUID+`, `+strategyIDByUUID+`, ?, ?, ?, ?, ?)`,
			a.UUID, a.Name, string(a.Type), a.State, params, nullString(a.Interval), scopeText(a.Scope), a.GoalUUID,
			nullString(a.StrategyUUID), boolInt(a.AutoTrigger), boolInt(a.Force), nullTime(a.StartTime),
			nullTime(a.EndTime), fmtTime(t.now))
		if isUnique(err) {
			return fmt.Errorf("audit %s: %w", a.Name, ErrDuplicate)
		}
		if err != nil {
			return err
		}
		return t.stateChanged(StateChange{Resource: ResourceAudit, UUID: a.UUID, State: a.State})
	})
	if err != nil {
		return nil, err
	}
	return s.GetAudit(ctx, a.UUID)
}

// AuditListFilter filters the audits collection.
type AuditListFilter = RefFilter

// ListAuditsPage lists audits for the API.
func (s *Store) ListAuditsPage(ctx context.Context, f AuditListFilter, p Page) ([]audit.Audit, error) {
	where, args := f.where("g", "s")
	return list(s, ctx, CollectionAudits, where, args, p, scanAudit)
}

// GetAudit returns an audit by id, UUID or name.
func (s *Store) GetAudit(ctx context.Context, id string) (*audit.Audit, error) {
	a, err := scanAudit(s.one(ctx, CollectionAudits, id, true))
	return found(&a, err, "Audit", id)
}

// ListAudits lists the live audits of the given types and states, oldest
// first (the runner's view).
func (s *Store) ListAudits(ctx context.Context, f audit.AuditFilter) ([]audit.Audit, error) {
	c := collections[CollectionAudits]
	where := []string{"au.deleted = 0"}
	var args []any
	if len(f.Types) > 0 {
		where = append(where, "au.audit_type IN ("+placeholders(len(f.Types))+")")
		for _, t := range f.Types {
			args = append(args, string(t))
		}
	}
	if len(f.States) > 0 {
		where = append(where, "au.state IN ("+placeholders(len(f.States))+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+c.columns+" FROM "+c.from+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY au.id", args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, scanAudit)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// UpdateAudit saves a patched audit. The state moves only if it is still
// before.State (ErrConflict otherwise); a changed interval reschedules the
// audit.
func (s *Store) UpdateAudit(ctx context.Context, before, after audit.Audit) (*audit.Audit, error) {
	params, err := jsonText(after.Parameters, "{}")
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(t *tx) error {
		next := nullTime(after.NextRunTime)
		if after.Interval != before.Interval {
			next = nil
		}
		res, err := t.exec(`UPDATE audits SET name = ?, state = ?, parameters = ?, audit_interval = ?, scope = ?,
			auto_trigger = ?, force = ?, start_time = ?, end_time = ?, next_run_time = ?, updated_at = ?
			WHERE uuid = ? AND state = ? AND deleted = 0`,
			after.Name, after.State, params, nullString(after.Interval), scopeText(after.Scope),
			boolInt(after.AutoTrigger), boolInt(after.Force), nullTime(after.StartTime), nullTime(after.EndTime), next,
			fmtTime(t.now), before.UUID, before.State)
		if isUnique(err) {
			return fmt.Errorf("audit %s: %w", after.Name, ErrDuplicate)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return t.auditMissingOr(before.UUID, before.State)
		}
		if after.State != before.State {
			return t.stateChanged(StateChange{Resource: ResourceAudit, UUID: before.UUID, State: after.State,
				PreviousState: before.State})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetAudit(ctx, before.UUID)
}

// auditMissingOr explains why a compare-and-set on an audit changed
// nothing: it is gone, or its state is no longer from.
func (t *tx) auditMissingOr(id, from string) error {
	var state string
	err := t.QueryRowContext(t.ctx, "SELECT state FROM audits WHERE uuid = ? AND deleted = 0", id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("Audit", id)
	}
	if err != nil {
		return err
	}
	return conflict("audit %s is %s, not %s", id, state, from)
}

// DeleteAudit soft-deletes an audit whose state is still from, moving it
// to DELETED.
func (s *Store) DeleteAudit(ctx context.Context, id, from string) error {
	return s.write(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE audits SET state = ?, deleted = id, deleted_at = ?, updated_at = ?
			WHERE uuid = ? AND state = ? AND deleted = 0`, audit.StateDeleted, fmtTime(t.now), fmtTime(t.now), id, from)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return t.auditMissingOr(id, from)
		}
		return t.stateChanged(StateChange{Resource: ResourceAudit, UUID: id, State: audit.StateDeleted, PreviousState: from})
	})
}

// TransitionAudit implements audit.AuditStore.
func (s *Store) TransitionAudit(ctx context.Context, id string, from []string, to, message, hostname string) error {
	return s.write(ctx, func(t *tx) error {
		var state string
		err := t.QueryRowContext(t.ctx, "SELECT state FROM audits WHERE uuid = ? AND deleted = 0", id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("Audit", id)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(from, state) {
			return conflict("audit %s is %s, not one of %v", id, state, from)
		}
		q := "UPDATE audits SET state = ?, updated_at = ?, status_message = ?"
		args := []any{to, fmtTime(t.now), nullString(message)}
		if hostname != "" {
			q += ", hostname = ?"
			args = append(args, hostname)
		}
		if _, err := t.exec(q+" WHERE uuid = ? AND state = ? AND deleted = 0", append(args, id, state)...); err != nil {
			return err
		}
		if state == to {
			return nil
		}
		return t.stateChanged(StateChange{Resource: ResourceAudit, UUID: id, State: to, PreviousState: state,
			StatusMessage: message})
	})
}

// SetNextRunTime implements audit.AuditStore.
func (s *Store) SetNextRunTime(ctx context.Context, id string, next time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE audits SET next_run_time = ? WHERE uuid = ? AND deleted = 0", fmtTime(next), id)
	return affected(res, err, "Audit", id)
}
