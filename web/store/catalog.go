package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/scoring"
)

// Goal is a goal row, synced from the decision engine.
type Goal struct {
	ID                    int64
	UUID                  string
	Name                  string
	DisplayName           string
	EfficacySpecification json.RawMessage
	CreatedAt             time.Time
	UpdatedAt, DeletedAt  *time.Time
}

// Strategy is a strategy row, synced from the decision engine.
type Strategy struct {
	ID                   int64
	UUID                 string
	Name                 string
	DisplayName          string
	GoalUUID, GoalName   string
	ParametersSpec       json.RawMessage
	CreatedAt            time.Time
	UpdatedAt, DeletedAt *time.Time
}

// ScoringEngine is a scoring engine row, synced from the decision engine.
type ScoringEngine struct {
	ID                   int64
	UUID                 string
	Name                 string
	Description          string
	Metainfo             string
	CreatedAt            time.Time
	UpdatedAt, DeletedAt *time.Time
}

// Service is a Watcher service (watcher-decision-engine, watcher-applier)
// with its last heartbeat.
type Service struct {
	ID                   int64
	Name                 string
	Host                 string
	LastSeenUp           *time.Time
	CreatedAt            time.Time
	UpdatedAt, DeletedAt *time.Time
}

// catalogNamespace derives stable UUIDs for goals, strategies and scoring
// engines from their names, so every database names them alike.
var catalogNamespace = uuid.MustParse("8a4f0c34-51a4-5d7e-9b0e-6c1d2b7f0e21")

// CatalogUUID is the UUID a goal, strategy or scoring engine gets.
func CatalogUUID(kind, name string) string {
	return uuid.NewSHA1(catalogNamespace, []byte(kind+":"+name)).String()
}

// SyncCatalog makes the goals, strategies and scoring engines tables match
// the engine's: new ones are inserted, changed ones updated, vanished ones
// soft-deleted (Watcher syncs its plugins into the DB at start the same
// way).
func (s *Store) SyncCatalog(ctx context.Context, goals []goal.Goal, strategies []decision.StrategyInfo, scorers []scoring.Info) error {
	return s.write(ctx, func(t *tx) error {
		goalIDs := map[string]int64{}
		var keep []string
		for _, g := range goals {
			spec, err := json.Marshal(g.EfficacySpecification)
			if err != nil {
				return err
			}
			if string(spec) == "null" {
				spec = []byte("[]")
			}
			id, err := t.upsert("goals", g.Name, CatalogUUID("goal", g.Name),
				[]string{"display_name", "efficacy_specification"}, []any{g.DisplayName, string(spec)})
			if err != nil {
				return fmt.Errorf("sync goal %s: %w", g.Name, err)
			}
			goalIDs[g.Name] = id
			keep = append(keep, g.Name)
		}
		if err := t.retire("goals", keep); err != nil {
			return err
		}
		keep = keep[:0]
		for _, st := range strategies {
			gid, ok := goalIDs[st.Goal]
			if !ok {
				return fmt.Errorf("sync strategy %s: unknown goal %q", st.Name, st.Goal)
			}
			spec := string(st.ParametersSpec)
			if spec == "" {
				spec = `{"properties":{}}`
			}
			if _, err := t.upsert("strategies", st.Name, CatalogUUID("strategy", st.Name),
				[]string{"display_name", "goal_id", "parameters_spec"}, []any{st.DisplayName, gid, spec}); err != nil {
				return fmt.Errorf("sync strategy %s: %w", st.Name, err)
			}
			keep = append(keep, st.Name)
		}
		if err := t.retire("strategies", keep); err != nil {
			return err
		}
		keep = keep[:0]
		for _, se := range scorers {
			if _, err := t.upsert("scoring_engines", se.Name, CatalogUUID("scoring_engine", se.Name),
				[]string{"description", "metainfo"}, []any{se.Description, se.Metainfo}); err != nil {
				return fmt.Errorf("sync scoring engine %s: %w", se.Name, err)
			}
			keep = append(keep, se.Name)
		}
		return t.retire("scoring_engines", keep)
	})
}

// upsert inserts or updates the live row named name, returning its id.
func (t *tx) upsert(table, name, id string, cols []string, vals []any) (int64, error) {
	var rowID int64
	err := t.QueryRowContext(t.ctx, "SELECT id FROM "+table+" WHERE name = ? AND deleted = 0", name).Scan(&rowID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		q := "INSERT INTO " + table + " (uuid, name, created_at"
		ph := "?, ?, ?"
		for _, c := range cols {
			q += ", " + c
			ph += ", ?"
		}
		res, err := t.exec(q+") VALUES ("+ph+")", append([]any{id, name, fmtTime(t.now)}, vals...)...)
		if isUnique(err) {
			// The derived UUID belongs to a soft-deleted row: the plugin
			// came back, so revive it.
			if _, err := t.exec("UPDATE "+table+" SET deleted = 0, deleted_at = NULL, updated_at = ? WHERE uuid = ?",
				fmtTime(t.now), id); err != nil {
				return 0, err
			}
			if err := t.QueryRowContext(t.ctx, "SELECT id FROM "+table+" WHERE uuid = ?", id).Scan(&rowID); err != nil {
				return 0, err
			}
			return rowID, t.update(table, rowID, cols, vals)
		}
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	case err != nil:
		return 0, err
	}
	return rowID, t.update(table, rowID, cols, vals)
}

// update sets cols when any differs, touching updated_at only then (the
// catalog's columns are all NOT NULL, so <> compares them).
func (t *tx) update(table string, id int64, cols []string, vals []any) error {
	set, cond := "", ""
	for i, c := range cols {
		if i > 0 {
			set += ", "
			cond += " OR "
		}
		set += c + " = ?"
		cond += c + " <> ?"
	}
	args := append(append(append([]any{}, vals...), fmtTime(t.now), id), vals...)
	_, err := t.exec("UPDATE "+table+" SET "+set+", updated_at = ? WHERE id = ? AND ("+cond+")", args...)
	return err
}

// retire soft-deletes the live rows whose name is not in keep.
func (t *tx) retire(table string, keep []string) error {
	rows, err := t.QueryContext(t.ctx, "SELECT id, name FROM "+table+" WHERE deleted = 0")
	if err != nil {
		return err
	}
	var gone []int64
	set := map[string]bool{}
	for _, k := range keep {
		set[k] = true
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return err
		}
		if !set[name] {
			gone = append(gone, id)
		}
	}
	rows.Close()
	for _, id := range gone {
		if _, err := t.exec("UPDATE "+table+" SET deleted = id, deleted_at = ? WHERE id = ?", fmtTime(t.now), id); err != nil {
			return err
		}
	}
	return nil
}

func scanGoal(sc interface{ Scan(...any) error }) (Goal, error) {
	var g Goal
	var spec, created string
	var updated, deleted sql.NullString
	err := sc.Scan(&g.ID, &g.UUID, &g.Name, &g.DisplayName, &spec, &created, &updated, &deleted)
	g.EfficacySpecification = json.RawMessage(spec)
	g.CreatedAt, g.UpdatedAt, g.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return g, err
}

// ListGoals lists goals.
func (s *Store) ListGoals(ctx context.Context, p Page) ([]Goal, error) {
	return list(s, ctx, CollectionGoals, nil, nil, p, scanGoal)
}

// GetGoal returns a goal by id, UUID or name.
func (s *Store) GetGoal(ctx context.Context, id string) (*Goal, error) {
	g, err := scanGoal(s.one(ctx, CollectionGoals, id, true))
	return found(&g, err, "Goal", id)
}

func scanStrategy(sc interface{ Scan(...any) error }) (Strategy, error) {
	var st Strategy
	var spec, created string
	var updated, deleted sql.NullString
	err := sc.Scan(&st.ID, &st.UUID, &st.Name, &st.DisplayName, &st.GoalUUID, &st.GoalName, &spec, &created, &updated, &deleted)
	st.ParametersSpec = json.RawMessage(spec)
	st.CreatedAt, st.UpdatedAt, st.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return st, err
}

// ListStrategies lists strategies, for one goal (UUID or name) when goal is
// set.
func (s *Store) ListStrategies(ctx context.Context, goalRef string, p Page) ([]Strategy, error) {
	var where []string
	var args []any
	if goalRef != "" {
		where, args = refFilter("g", goalRef)
	}
	return list(s, ctx, CollectionStrategies, where, args, p, scanStrategy)
}

// refFilter filters on a joined goal or strategy by UUID (if UUID-like) or
// name, as Watcher's goal= and strategy= filters do.
func refFilter(alias, ref string) ([]string, []any) {
	if u, err := uuid.Parse(ref); err == nil {
		return []string{alias + ".uuid = ?"}, []any{u.String()}
	}
	return []string{alias + ".name = ?"}, []any{ref}
}

// GetStrategy returns a strategy by id, UUID or name.
func (s *Store) GetStrategy(ctx context.Context, id string) (*Strategy, error) {
	st, err := scanStrategy(s.one(ctx, CollectionStrategies, id, true))
	return found(&st, err, "Strategy", id)
}

func scanScoringEngine(sc interface{ Scan(...any) error }) (ScoringEngine, error) {
	var se ScoringEngine
	var created string
	var updated, deleted sql.NullString
	err := sc.Scan(&se.ID, &se.UUID, &se.Name, &se.Description, &se.Metainfo, &created, &updated, &deleted)
	se.CreatedAt, se.UpdatedAt, se.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return se, err
}

// ListScoringEngines lists scoring engines.
func (s *Store) ListScoringEngines(ctx context.Context, p Page) ([]ScoringEngine, error) {
	return list(s, ctx, CollectionScoringEngines, nil, nil, p, scanScoringEngine)
}

// GetScoringEngine returns a scoring engine by id, UUID or name.
func (s *Store) GetScoringEngine(ctx context.Context, id string) (*ScoringEngine, error) {
	se, err := scanScoringEngine(s.one(ctx, CollectionScoringEngines, id, true))
	return found(&se, err, "ScoringEngine", id)
}

func scanService(sc interface{ Scan(...any) error }) (Service, error) {
	var sv Service
	var created string
	var seen, updated, deleted sql.NullString
	err := sc.Scan(&sv.ID, &sv.Name, &sv.Host, &seen, &created, &updated, &deleted)
	sv.LastSeenUp = timePtr(seen)
	sv.CreatedAt, sv.UpdatedAt, sv.DeletedAt = parseTime(created), timePtr(updated), timePtr(deleted)
	return sv, err
}

// ListServices lists services.
func (s *Store) ListServices(ctx context.Context, p Page) ([]Service, error) {
	return list(s, ctx, CollectionServices, nil, nil, p, scanService)
}

// GetService returns a service by integer id or name.
func (s *Store) GetService(ctx context.Context, id string) (*Service, error) {
	sv, err := scanService(s.one(ctx, CollectionServices, id, true))
	return found(&sv, err, "Service", id)
}

// Heartbeat records that the service name on host is up now.
func (s *Store) Heartbeat(ctx context.Context, name, host string) error {
	now := fmtTime(s.now())
	// Heartbeats are frequent and not state changes: one statement, no
	// audit log entry.
	_, err := s.db.ExecContext(ctx, `INSERT INTO services (name, host, last_seen_up, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name, host, deleted) DO UPDATE SET last_seen_up = excluded.last_seen_up, updated_at = excluded.last_seen_up`,
		name, host, now, now)
	return err
}

// list runs a page of a collection and scans its rows.
func list[T any](s *Store, ctx context.Context, name string, where []string, args []any, p Page,
	scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := s.query(ctx, name, where, args, p)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, scan)
}

func collectRows[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func found[T any](v *T, err error, kind, id string) (*T, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(kind, id)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}
