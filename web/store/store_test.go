package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/planner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu  sync.Mutex
	evs []bus.Event
}

func (r *recorder) PublishEvents(_ context.Context, evs ...bus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
	return nil
}

func (r *recorder) types() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, e := range r.evs {
		out[e.Type]++
	}
	return out
}

func open(t *testing.T, path string, ev bus.EventPublisher) *Store {
	t.Helper()
	s, err := Open(Config{Path: path, Hostname: "h1"}, ev, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// seed syncs the catalog and returns the engine.
func seed(t *testing.T, s *Store) *decision.Engine {
	t.Helper()
	e, err := decision.New(decision.Config{}, nil)
	require.NoError(t, err)
	require.NoError(t, s.SyncCatalog(t.Context(), e.Goals(), e.Strategies(), e.ScoringEngines()))
	return e
}

func newAudit(t *testing.T, s *Store, name string, typ audit.Type) *audit.Audit {
	t.Helper()
	g, err := s.GetGoal(t.Context(), "dummy")
	require.NoError(t, err)
	st, err := s.GetStrategy(t.Context(), "dummy")
	require.NoError(t, err)
	a, err := s.CreateAudit(t.Context(), audit.Audit{Name: name, Type: typ, GoalUUID: g.UUID, StrategyUUID: st.UUID,
		Parameters: map[string]any{"para1": 1.0}})
	require.NoError(t, err)
	return a
}

// plan is a three-action DAG: a → b, a → c.
func plan() *decision.Plan {
	return &decision.Plan{ID: "engine-plan", Strategy: "dummy", Concurrency: planner.Limits{PerHost: 3, Global: 7},
		Actions: []action.Action{
			{ID: "a", Type: action.Nop, InputParameters: map[string]any{"message": "a"}},
			{ID: "b", Type: action.Nop, InputParameters: map[string]any{"message": "b"}, Parents: []string{"a"}},
			{ID: "c", Type: action.Sleep, InputParameters: map[string]any{"duration": 1.0}, Parents: []string{"a"}},
		}}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path, nil)
	applied, err := s.AppliedMigrations(t.Context())
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, applied)
	// Re-running is a no-op.
	require.NoError(t, s.MigrateTo(t.Context(), -1))
	applied, _ = s.AppliedMigrations(t.Context())
	require.Equal(t, []int{1, 2, 3}, applied)
	// A database left at version 1 gets version 2 at the next start.
	_, err = s.DB().Exec(`DROP TABLE host_states; DROP TABLE audit_log; DROP TABLE tokens;
		DELETE FROM schema_migrations WHERE version >= 2`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s = open(t, path, nil)
	applied, _ = s.AppliedMigrations(t.Context())
	require.Equal(t, []int{1, 2, 3}, applied)
	require.NoError(t, s.AppendLog(t.Context(), LogEntry{Kind: KindLogin, Actor: "x", Remote: "y"}))
	// A database from a newer binary is refused, naming both versions.
	_, err = s.DB().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(Config{Path: path}, nil, nil)
	require.ErrorContains(t, err, "database schema version 99 is newer than this binary's 3")
	ms, err := Migrations()
	require.NoError(t, err)
	require.Equal(t, "watcher", ms[0].Name)
	require.Equal(t, "auth", ms[1].Name)
	require.Equal(t, "host_states", ms[2].Name)
}

func TestCatalogSync(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"), nil)
	e := seed(t, s)
	g, err := s.GetGoal(t.Context(), "dummy")
	require.NoError(t, err)
	require.Equal(t, CatalogUUID("goal", "dummy"), g.UUID)
	same, err := s.GetGoal(t.Context(), g.UUID)
	require.NoError(t, err)
	require.Equal(t, g.ID, same.ID)
	byID, err := s.GetGoal(t.Context(), fmt.Sprint(g.ID))
	require.NoError(t, err)
	require.Equal(t, "dummy", byID.Name)
	// A strategy that disappears is soft-deleted; when it comes back it
	// keeps its UUID.
	strategies := e.Strategies()
	require.NoError(t, s.SyncCatalog(t.Context(), e.Goals(), strategies[1:], e.ScoringEngines()))
	_, err = s.GetStrategy(t.Context(), strategies[0].Name)
	require.ErrorIs(t, err, audit.ErrNotFound)
	require.NoError(t, s.SyncCatalog(t.Context(), e.Goals(), strategies, e.ScoringEngines()))
	st, err := s.GetStrategy(t.Context(), strategies[0].Name)
	require.NoError(t, err)
	require.Equal(t, CatalogUUID("strategy", strategies[0].Name), st.UUID)
	list, err := s.ListStrategies(t.Context(), "dummy", Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestStateTransitions(t *testing.T) {
	rec := &recorder{}
	s := open(t, filepath.Join(t.TempDir(), "w.db"), rec)
	seed(t, s)
	ctx := WithActor(t.Context(), Actor{Name: "alice", Role: "operator", Remote: "10.0.0.1"})
	a := newAudit(t, s, "a1", audit.Oneshot)
	// SavePlan needs the audit ONGOING: a cancelled run is discarded.
	_, err := s.SavePlan(ctx, audit.SaveRequest{AuditUUID: a.UUID, Plan: plan(), State: audit.StateRecommended})
	require.ErrorIs(t, err, audit.ErrConflict)
	require.NoError(t, s.TransitionAudit(ctx, a.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "engine-1"))
	err = s.TransitionAudit(ctx, a.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "")
	require.ErrorIs(t, err, audit.ErrConflict)
	p, err := s.SavePlan(ctx, audit.SaveRequest{AuditUUID: a.UUID, Plan: plan(), State: audit.StateRecommended,
		AuditState: audit.StateSucceeded})
	require.NoError(t, err)
	require.NotEqual(t, "engine-plan", p.UUID, "stored plans get their own UUID")
	got, err := s.GetAudit(t.Context(), a.UUID)
	require.NoError(t, err)
	require.Equal(t, audit.StateSucceeded, got.State)
	require.Equal(t, "engine-1", got.Hostname)

	// The applier's view: stored UUIDs, remapped parents, limits.
	ap, err := s.ApplierPlan(t.Context(), p.UUID)
	require.NoError(t, err)
	require.Equal(t, planner.Limits{PerHost: 3, Global: 7}, ap.Limits)
	require.Len(t, ap.Actions, 3)
	require.Equal(t, []string{ap.Actions[0].ID}, ap.Actions[1].Parents)
	require.Equal(t, []string{ap.Actions[0].ID}, ap.Actions[2].Parents)
	require.Equal(t, audit.StatePending, ap.Actions[0].State)

	// Compare-and-set as the applier uses it.
	first := ap.Actions[0].ID
	err = s.TransitionAction(ctx, first, audit.StateOngoing, audit.StateSucceeded, "")
	require.ErrorIs(t, err, actuators.ErrStateConflict)
	require.ErrorIs(t, err, audit.ErrConflict)
	require.ErrorIs(t, s.TransitionAction(ctx, "8d4cbb7e-4bc1-4f1d-a0b3-0c0c7a4a0d9e", "PENDING", "ONGOING", ""), audit.ErrNotFound)
	require.ErrorIs(t, s.TransitionPlan(ctx, p.UUID, audit.StatePending, audit.StateOngoing, ""), actuators.ErrStateConflict)
	require.NoError(t, s.TransitionPlan(ctx, p.UUID, audit.StateRecommended, audit.StatePending, ""))
	unfinished, err := s.UnfinishedPlans(t.Context())
	require.NoError(t, err)
	require.Len(t, unfinished, 1)
	require.Equal(t, audit.StatePending, unfinished[0].State)
	require.NoError(t, s.TransitionPlan(ctx, p.UUID, audit.StatePending, audit.StateOngoing, ""))
	require.NoError(t, s.TransitionAction(ctx, first, audit.StatePending, audit.StateOngoing, ""))
	require.NoError(t, s.TransitionAction(ctx, first, audit.StateOngoing, audit.StateSucceeded, "done"))
	// A skip needs the plan RECOMMENDED or PENDING.
	require.ErrorIs(t, s.SkipAction(ctx, ap.Actions[1].ID, "x"), ErrPlanState)
	ongoing, err := s.OngoingPlan(t.Context())
	require.NoError(t, err)
	require.Equal(t, p.UUID, ongoing)
	rp, err := s.GetActionPlan(t.Context(), p.UUID)
	require.NoError(t, err)
	require.Equal(t, "h1", rp.Hostname, "ONGOING records the applier's host")

	// Every change is in the audit log with its actor, and published.
	entries, err := s.ListLog(t.Context(), LogFilter{Kind: KindStateChange, ResourceUUID: first})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "alice", entries[0].Actor)
	require.Equal(t, "10.0.0.1", entries[0].Remote)
	require.Equal(t, audit.StateSucceeded, entries[0].To)
	require.NoError(t, s.Close())
	types := rec.types()
	// Refused compare-and-sets publish nothing.
	require.Equal(t, 3, types[bus.TypeAudit], "created, ONGOING, SUCCEEDED: %v", types)
	require.Equal(t, 3, types[bus.TypeActionPlan], "created, PENDING, ONGOING")
	require.Equal(t, 2, types[bus.TypeAction], "ONGOING, SUCCEEDED")
	require.Equal(t, 8, types[bus.TypeAuditLog], "one per state change")
}

func TestSupersedeAndExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := Open(Config{Path: filepath.Join(t.TempDir(), "w.db"), Now: clock}, nil, nil)
	require.NoError(t, err)
	defer s.Close()
	seed(t, s)
	a := newAudit(t, s, "c1", audit.Continuous)
	require.NoError(t, s.TransitionAudit(t.Context(), a.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "h"))
	var ids []string
	for range 3 {
		p, err := s.SavePlan(t.Context(), audit.SaveRequest{AuditUUID: a.UUID, Plan: plan(), State: audit.StateRecommended, Supersede: true})
		require.NoError(t, err)
		ids = append(ids, p.UUID)
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
	}
	for i, id := range ids {
		p, err := s.GetActionPlan(t.Context(), id)
		require.NoError(t, err)
		if i < 2 {
			require.Equal(t, audit.StateSuperseded, p.State)
			require.Equal(t, "Superseded by a newer run of the continuous audit.", p.StatusMessage)
		} else {
			require.Equal(t, audit.StateRecommended, p.State)
		}
	}
	expired, err := s.ExpirePlans(t.Context(), now.Add(-30*time.Minute))
	require.NoError(t, err)
	require.Equal(t, []string{ids[2]}, expired)
	expired, err = s.ExpirePlans(t.Context(), now)
	require.NoError(t, err)
	require.Empty(t, expired)
}

func TestSoftDeleteAndPages(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"), nil)
	seed(t, s)
	g, _ := s.GetGoal(t.Context(), "dummy")
	var uuids []string
	for i := range 25 {
		tm, err := s.CreateAuditTemplate(t.Context(), AuditTemplate{Name: fmt.Sprintf("t%02d", i), GoalUUID: g.UUID})
		require.NoError(t, err)
		uuids = append(uuids, tm.UUID)
	}
	_, err := s.CreateAuditTemplate(t.Context(), AuditTemplate{Name: "t03", GoalUUID: g.UUID})
	require.ErrorIs(t, err, ErrDuplicate)
	require.NoError(t, s.DeleteAuditTemplate(t.Context(), uuids[3]))
	require.ErrorIs(t, s.DeleteAuditTemplate(t.Context(), uuids[3]), audit.ErrNotFound)
	_, err = s.CreateAuditTemplate(t.Context(), AuditTemplate{Name: "t03", GoalUUID: g.UUID})
	require.NoError(t, err, "a soft-deleted name can be used again")

	// Walk by name descending, 4 at a time.
	var got []string
	marker := ""
	for {
		page, err := s.ListAuditTemplates(t.Context(), RefFilter{Goal: "dummy"}, Page{Limit: 4, SortKey: "name", SortDir: "desc", Marker: marker})
		require.NoError(t, err)
		for _, p := range page {
			got = append(got, p.Name)
		}
		if len(page) < 4 {
			break
		}
		marker = page[len(page)-1].UUID
	}
	require.Len(t, got, 25)
	require.Equal(t, "t24", got[0])
	require.Equal(t, "t00", got[24])
	_, err = s.ListAuditTemplates(t.Context(), RefFilter{}, Page{Limit: 4, Marker: uuids[3]})
	require.ErrorIs(t, err, audit.ErrNotFound, "a deleted marker is not found")
	var ie *InputError
	_, err = s.ListAuditTemplates(t.Context(), RefFilter{}, Page{Limit: 4, SortKey: "colour"})
	require.True(t, errors.As(err, &ie))
	require.Equal(t, "Invalid sort key: colour", ie.Msg)
	_, err = s.ListAuditTemplates(t.Context(), RefFilter{}, Page{Limit: 0})
	require.ErrorAs(t, err, &ie)
}

// TestConcurrentWriters: the applier, the runner and the API write at
// once; immediate transactions and busy_timeout keep every write.
func TestConcurrentWriters(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"), nil)
	seed(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				a := newAudit(t, s, fmt.Sprintf("w%d-%d", w, i), audit.Event)
				if err := s.TransitionAudit(t.Context(), a.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "h"); err != nil {
					errs <- err
					return
				}
				if _, err := s.SavePlan(t.Context(), audit.SaveRequest{AuditUUID: a.UUID, Plan: plan(), State: audit.StateRecommended,
					AuditState: audit.StateSucceeded}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	plans, err := s.ListActionPlans(t.Context(), PlanListFilter{}, Page{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, plans, 80)
}
