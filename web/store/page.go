package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Page asks for one page of a collection, validated by CheckPage.
type Page struct {
	// Marker is the UUID (the integer id for services) of the last item of
	// the previous page.
	Marker string
	// Limit is the page size (> 0).
	Limit int
	// SortKey is a field of the resource (default id); SortDir is asc
	// (default) or desc.
	SortKey string
	SortDir string
}

// collection describes how one resource is listed.
type collection struct {
	// kind names the resource in not-found messages (Watcher's class
	// names: Audit, ActionPlan, ...).
	kind string
	// alias is the main table's alias in from.
	alias string
	// columns and from are the SELECT list and FROM clause (with joins).
	columns, from string
	// sortable maps the API's sort keys to SQL expressions. Keys Watcher
	// sorts in Python after the page (goal_name, audit_uuid, ...) are
	// sorted here in SQL, so that pages stay consistent.
	sortable map[string]string
	// markerCol is matched against the marker (uuid, or id for services).
	markerCol string
}

// Collection names, the keys of collections.
const (
	CollectionGoals          = "goals"
	CollectionStrategies     = "strategies"
	CollectionScoringEngines = "scoring_engines"
	CollectionServices       = "services"
	CollectionAuditTemplates = "audit_templates"
	CollectionAudits         = "audits"
	CollectionActionPlans    = "action_plans"
	CollectionActions        = "actions"
)

func timestamps(alias string) map[string]string {
	return map[string]string{
		"id":         alias + ".id",
		"created_at": alias + ".created_at",
		"updated_at": "COALESCE(" + alias + ".updated_at, '')",
		"deleted_at": "COALESCE(" + alias + ".deleted_at, '')",
	}
}

func with(base map[string]string, more map[string]string) map[string]string {
	for k, v := range more {
		base[k] = v
	}
	return base
}

var collections = map[string]*collection{
	CollectionGoals: {kind: "Goal", alias: "g", from: "goals g", markerCol: "g.uuid",
		columns: "g.id, g.uuid, g.name, g.display_name, g.efficacy_specification, g.created_at, g.updated_at, g.deleted_at",
		sortable: with(timestamps("g"), map[string]string{"uuid": "g.uuid", "name": "g.name", "display_name": "g.display_name",
			"efficacy_specification": "g.efficacy_specification"})},
	CollectionStrategies: {kind: "Strategy", alias: "s", markerCol: "s.uuid",
		from: "strategies s JOIN goals g ON g.id = s.goal_id",
		columns: "s.id, s.uuid, s.name, s.display_name, g.uuid, g.name, s.parameters_spec, s.created_at, s.updated_at, " +
			"s.deleted_at",
		sortable: with(timestamps("s"), map[string]string{"uuid": "s.uuid", "name": "s.name", "display_name": "s.display_name",
			"goal_id": "s.goal_id", "parameters_spec": "s.parameters_spec", "goal_uuid": "g.uuid", "goal_name": "g.name"})},
	CollectionScoringEngines: {kind: "ScoringEngine", alias: "se", from: "scoring_engines se", markerCol: "se.uuid",
		columns: "se.id, se.uuid, se.name, se.description, se.metainfo, se.created_at, se.updated_at, se.deleted_at",
		sortable: with(timestamps("se"), map[string]string{"uuid": "se.uuid", "name": "se.name",
			"description": "se.description", "metainfo": "se.metainfo"})},
	CollectionServices: {kind: "Service", alias: "sv", from: "services sv", markerCol: "sv.id",
		columns: "sv.id, sv.name, sv.host, sv.last_seen_up, sv.created_at, sv.updated_at, sv.deleted_at",
		sortable: with(timestamps("sv"), map[string]string{"name": "sv.name", "host": "sv.host",
			"last_seen_up": "COALESCE(sv.last_seen_up, '')"})},
	CollectionAuditTemplates: {kind: "AuditTemplate", alias: "t", markerCol: "t.uuid",
		from: "audit_templates t JOIN goals g ON g.id = t.goal_id LEFT JOIN strategies s ON s.id = t.strategy_id",
		columns: "t.id, t.uuid, t.name, t.description, g.uuid, g.name, s.uuid, s.name, t.scope, t.default_parameters, " +
			"t.created_at, t.updated_at, t.deleted_at",
		sortable: with(timestamps("t"), map[string]string{"uuid": "t.uuid", "name": "t.name",
			"description": "COALESCE(t.description, '')", "goal_id": "t.goal_id", "strategy_id": "COALESCE(t.strategy_id, 0)",
			"scope": "t.scope", "goal_uuid": "g.uuid", "goal_name": "g.name", "strategy_uuid": "COALESCE(s.uuid, '')",
			"strategy_name": "COALESCE(s.name, '')"})},
	CollectionAudits: {kind: "Audit", alias: "au", markerCol: "au.uuid",
		from: "audits au JOIN goals g ON g.id = au.goal_id LEFT JOIN strategies s ON s.id = au.strategy_id",
		columns: "au.id, au.uuid, au.name, au.audit_type, au.state, g.uuid, g.name, s.uuid, s.name, au.parameters, " +
			"au.audit_interval, au.scope, au.auto_trigger, au.force, au.next_run_time, au.hostname, au.start_time, " +
			"au.end_time, au.status_message, au.created_at, au.updated_at, au.deleted_at",
		sortable: with(timestamps("au"), map[string]string{"uuid": "au.uuid", "name": "au.name",
			"audit_type": "au.audit_type", "state": "au.state", "parameters": "au.parameters",
			"interval": "COALESCE(au.audit_interval, '')", "scope": "au.scope", "goal_id": "au.goal_id",
			"strategy_id": "COALESCE(au.strategy_id, 0)", "auto_trigger": "au.auto_trigger",
			"next_run_time": "COALESCE(au.next_run_time, '')", "hostname": "COALESCE(au.hostname, '')",
			"start_time": "COALESCE(au.start_time, '')", "end_time": "COALESCE(au.end_time, '')", "force": "au.force",
			"status_message": "COALESCE(au.status_message, '')", "goal_uuid": "g.uuid", "goal_name": "g.name",
			"strategy_uuid": "COALESCE(s.uuid, '')", "strategy_name": "COALESCE(s.name, '')"})},
	CollectionActionPlans: {kind: "ActionPlan", alias: "ap", markerCol: "ap.uuid",
		from: "action_plans ap JOIN audits au ON au.id = ap.audit_id LEFT JOIN strategies s ON s.id = ap.strategy_id",
		columns: "ap.id, ap.uuid, au.uuid, s.uuid, s.name, ap.state, ap.efficacy_indicators, ap.global_efficacy, " +
			"ap.hostname, ap.status_message, ap.extra, ap.created_at, ap.updated_at, ap.deleted_at",
		sortable: with(timestamps("ap"), map[string]string{"uuid": "ap.uuid", "audit_id": "ap.audit_id",
			"strategy_id": "COALESCE(ap.strategy_id, 0)", "state": "ap.state", "global_efficacy": "ap.global_efficacy",
			"hostname": "COALESCE(ap.hostname, '')", "status_message": "COALESCE(ap.status_message, '')",
			"audit_uuid": "au.uuid", "strategy_uuid": "COALESCE(s.uuid, '')", "strategy_name": "COALESCE(s.name, '')"})},
	CollectionActions: {kind: "Action", alias: "ac", markerCol: "ac.uuid",
		from: "actions ac JOIN action_plans ap ON ap.id = ac.action_plan_id",
		columns: "ac.id, ac.uuid, ap.uuid, ac.action_type, ac.input_parameters, ac.state, ac.parents, ac.description, " +
			"ac.status_message, ac.created_at, ac.updated_at, ac.deleted_at",
		sortable: with(timestamps("ac"), map[string]string{"uuid": "ac.uuid", "action_plan_id": "ac.action_plan_id",
			"action_type": "ac.action_type", "input_parameters": "ac.input_parameters", "state": "ac.state",
			"parents": "ac.parents", "status_message": "COALESCE(ac.status_message, '')", "action_plan_uuid": "ap.uuid"})},
}

// CheckSortKey returns Watcher's 400 message for a sort key the collection
// does not have ("" sorts by id).
func CheckSortKey(collectionName, key string) error {
	c, ok := collections[collectionName]
	if !ok {
		return fmt.Errorf("unknown collection %q", collectionName)
	}
	if key == "" {
		return nil
	}
	if _, ok := c.sortable[key]; !ok {
		return inputErr("Invalid sort key: %s", key)
	}
	return nil
}

// SortKeys lists a collection's sort keys, for documentation and errors.
func SortKeys(collectionName string) []string {
	c := collections[collectionName]
	if c == nil {
		return nil
	}
	keys := make([]string, 0, len(c.sortable))
	for k := range c.sortable {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// query runs a page of a collection: live rows matching where, after the
// marker, ordered by the sort key then id, at most p.Limit of them.
func (s *Store) query(ctx context.Context, name string, where []string, args []any, p Page) (*sql.Rows, error) {
	c := collections[name]
	if err := CheckSortKey(name, p.SortKey); err != nil {
		return nil, err
	}
	key := p.SortKey
	if key == "" {
		key = "id"
	}
	expr := c.sortable[key]
	dir := strings.ToUpper(p.SortDir)
	switch dir {
	case "":
		dir = "ASC"
	case "ASC", "DESC":
	default:
		return nil, inputErr("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", p.SortDir)
	}
	if p.Limit <= 0 {
		return nil, inputErr("Limit must be positive")
	}
	conds := append([]string{c.alias + ".deleted = 0"}, where...)
	if p.Marker != "" {
		var mv any
		var mid int64
		err := s.db.QueryRowContext(ctx, "SELECT "+expr+", "+c.alias+".id FROM "+c.from+" WHERE "+c.markerCol+
			" = ? AND "+c.alias+".deleted = 0", markerValue(c, p.Marker)).Scan(&mv, &mid)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound(c.kind, p.Marker)
		}
		if err != nil {
			return nil, err
		}
		cmp := ">"
		if dir == "DESC" {
			cmp = "<"
		}
		// Row values (SQLite ≥ 3.15, PostgreSQL) say "after the marker in
		// (key, id) order" in a form the planner can use; sorting by id
		// needs only the primary key.
		if expr == c.alias+".id" {
			conds = append(conds, fmt.Sprintf("%s.id %s ?", c.alias, cmp))
			args = append(args, mid)
		} else {
			conds = append(conds, fmt.Sprintf("(%s, %s.id) %s (?, ?)", expr, c.alias, cmp))
			args = append(args, mv, mid)
		}
	}
	q := "SELECT " + c.columns + " FROM " + c.from + " WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY " + expr + " " + dir + ", " + c.alias + ".id " + dir + " LIMIT ?"
	return s.db.QueryContext(ctx, q, append(args, p.Limit)...)
}

func markerValue(c *collection, marker string) any {
	if c.markerCol == c.alias+".id" {
		n, err := strconv.ParseInt(marker, 10, 64)
		if err != nil {
			return marker
		}
		return n
	}
	if u, err := uuid.Parse(marker); err == nil {
		return u.String()
	}
	return marker
}

// IsUUIDLike is oslo's is_uuid_like: any form uuid.Parse accepts.
func IsUUIDLike(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// IsIntLike is Watcher's is_int_like: str(int(s)) == s.
func IsIntLike(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == s
}

// ident turns a resource identifier into a WHERE condition on its integer
// id, UUID or name, as Watcher's get_resource does.
func ident(alias, id string, byName bool) (string, any) {
	switch {
	case IsIntLike(id):
		n, _ := strconv.ParseInt(id, 10, 64)
		return alias + ".id = ?", n
	case IsUUIDLike(id):
		u, _ := uuid.Parse(id)
		return alias + ".uuid = ?", u.String()
	case byName:
		return alias + ".name = ?", id
	}
	return alias + ".uuid = ?", id
}

// one reads a single live row of a collection by identifier.
func (s *Store) one(ctx context.Context, name, id string, byName bool) *sql.Row {
	c := collections[name]
	cond, arg := ident(c.alias, id, byName)
	return s.db.QueryRowContext(ctx, "SELECT "+c.columns+" FROM "+c.from+" WHERE "+cond+" AND "+c.alias+".deleted = 0", arg)
}
