package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// Audit log entry kinds.
const (
	// KindLogin is a token's first successful authentication in a while
	// (see the API's login_window), KindLoginFailed a refused token.
	KindLogin       = "login"
	KindLoginFailed = "login_failed"
	// KindRequest is a mutating request (method, path, status).
	KindRequest = "request"
	// KindStateChange is a resource's state change, whoever made it.
	KindStateChange = "state_change"
)

// Resource types named in the log and in state-change events.
const (
	ResourceAudit         = "audit"
	ResourceActionPlan    = "action_plan"
	ResourceAction        = "action"
	ResourceAuditTemplate = "audit_template"
	ResourceToken         = "token"
)

// LogEntry is one audit log entry: who (actor, role, remote address) did
// what (kind, method and path or resource and states), when.
type LogEntry struct {
	ID           int64     `json:"id"`
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Actor        string    `json:"actor"`
	Role         string    `json:"role"`
	Remote       string    `json:"remote"`
	Method       string    `json:"method,omitempty"`
	Path         string    `json:"path,omitempty"`
	Status       int       `json:"status,omitempty"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceUUID string    `json:"resource_uuid,omitempty"`
	From         string    `json:"from_state,omitempty"`
	To           string    `json:"to_state,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

// StateChange is the data of io.ballast.audit.v1, io.ballast.actionplan.v1
// and io.ballast.action.v1 events.
type StateChange struct {
	Resource       string    `json:"resource"`
	UUID           string    `json:"uuid"`
	State          string    `json:"state"`
	PreviousState  string    `json:"previous_state,omitempty"`
	StatusMessage  string    `json:"status_message,omitempty"`
	AuditUUID      string    `json:"audit_uuid,omitempty"`
	ActionPlanUUID string    `json:"action_plan_uuid,omitempty"`
	Actor          string    `json:"actor"`
	Time           time.Time `json:"time"`
}

var eventTypes = map[string]string{
	ResourceAudit:      bus.TypeAudit,
	ResourceActionPlan: bus.TypeActionPlan,
	ResourceAction:     bus.TypeAction,
}

// AppendLog records an entry made outside a state change (a login, a
// request) and publishes it. The actor comes from the entry, not ctx.
func (s *Store) AppendLog(ctx context.Context, e LogEntry) error {
	return s.write(ctx, func(t *tx) error { return t.appendLog(&e) })
}

func (t *tx) appendLog(e *LogEntry) error {
	if e.Time.IsZero() {
		e.Time = t.now
	}
	res, err := t.exec(`INSERT INTO audit_log (at, kind, actor, role, remote, method, path, status, resource_type,
		resource_uuid, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		fmtTime(e.Time), e.Kind, e.Actor, e.Role, e.Remote, nullString(e.Method), nullString(e.Path),
		nullInt(e.Status), nullString(e.ResourceType), nullString(e.ResourceUUID), nullString(e.From),
		nullString(e.To), nullString(e.Detail))
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	t.event(bus.TypeAuditLog, e.ResourceUUID, e)
	return nil
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

// event queues an event for publication after commit.
func (t *tx) event(typ, subject string, data any) {
	if t.s.events.pub == nil {
		return
	}
	ev, err := bus.NewEvent(EventSource, typ, subject, data)
	if err != nil {
		t.s.logger.Warn("Cannot build event", "type", typ, "err", err)
		return
	}
	t.events = append(t.events, ev)
}

// stateChanged logs a state change by the context's actor and queues its
// event.
func (t *tx) stateChanged(c StateChange) error {
	a := ActorFrom(t.ctx)
	c.Actor, c.Time = a.Name, t.now
	if err := t.appendLog(&LogEntry{Kind: KindStateChange, Actor: a.Name, Role: a.Role, Remote: a.Remote,
		ResourceType: c.Resource, ResourceUUID: c.UUID, From: c.PreviousState, To: c.State, Detail: c.StatusMessage}); err != nil {
		return err
	}
	t.event(eventTypes[c.Resource], c.UUID, c)
	return nil
}

// LogFilter selects audit log entries; empty fields select everything.
// Entries come newest first; Marker is the id of the last entry of the
// previous page.
type LogFilter struct {
	Actor        string
	Kind         string
	ResourceUUID string
	Since, Until time.Time
	Marker       int64
	Limit        int
}

// ListLog returns audit log entries, newest first.
func (s *Store) ListLog(ctx context.Context, f LogFilter) ([]LogEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if f.ResourceUUID != "" {
		add("resource_uuid = ?", f.ResourceUUID)
	}
	if !f.Since.IsZero() {
		add("at >= ?", fmtTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", fmtTime(f.Until))
	}
	if f.Marker > 0 {
		add("id < ?", f.Marker)
	}
	q := `SELECT id, at, kind, actor, role, remote, method, path, status, resource_type, resource_uuid, from_state,
		to_state, detail FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		var at string
		var method, path, rtype, ruuid, from, to, detail sql.NullString
		var status sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Actor, &e.Role, &e.Remote, &method, &path, &status, &rtype,
			&ruuid, &from, &to, &detail); err != nil {
			return nil, err
		}
		e.Time = parseTime(at)
		e.Method, e.Path, e.Status = method.String, path.String, int(status.Int64)
		e.ResourceType, e.ResourceUUID, e.From, e.To, e.Detail = rtype.String, ruuid.String, from.String, to.String, detail.String
		out = append(out, e)
	}
	return out, rows.Err()
}
