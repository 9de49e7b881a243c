package audit_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/web/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// planner wraps the real engine so a test can hold a plan mid-way.
type planner struct {
	engine *decision.Engine
	hold   chan struct{}
	calls  sync.WaitGroup
}

func (p *planner) Plan(ctx context.Context, req decision.Request) (*decision.Plan, error) {
	if p.hold != nil {
		p.calls.Done()
		<-p.hold
	}
	return p.engine.Plan(ctx, req)
}

type launcher struct {
	mu      sync.Mutex
	started []string
	err     error
}

func (l *launcher) Start(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started = append(l.started, id)
	return l.err
}

type fixture struct {
	t      *testing.T
	store  *store.Store
	clock  *clock
	plan   *planner
	launch *launcher
	runner *audit.Runner
	models audit.ModelSource
	reg    *prometheus.Registry
}

func newFixture(t *testing.T, models audit.ModelSource) *fixture {
	t.Helper()
	st, err := store.Open(store.Config{Path: filepath.Join(t.TempDir(), "w.db")}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	engine, err := decision.New(decision.Config{}, nil)
	require.NoError(t, err)
	require.NoError(t, st.SyncCatalog(t.Context(), engine.Goals(), engine.Strategies(), engine.ScoringEngines()))
	if models == nil {
		s, err := sim.New(sim.Config{Hosts: 6, Instances: 40, Seed: 3}, nil, nil)
		require.NoError(t, err)
		models = audit.SnapshotModels(s.Snapshot)
	}
	f := &fixture{t: t, store: st, clock: &clock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
		plan: &planner{engine: engine}, launch: &launcher{}, models: models, reg: prometheus.NewRegistry()}
	f.runner, err = audit.New(audit.Config{Hostname: "engine-1", PollInterval: 10 * time.Millisecond, Now: f.clock.Now},
		audit.Deps{Store: st, Planner: f.plan, Models: models, Launcher: f.launch, Registerer: f.reg}, nil)
	require.NoError(t, err)
	return f
}

// run runs the runner until the test ends.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.runner.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
}

func (f *fixture) audit(typ audit.Type, mutate func(*audit.Audit)) *audit.Audit {
	f.t.Helper()
	g, err := f.store.GetGoal(f.t.Context(), "dummy")
	require.NoError(f.t, err)
	s, err := f.store.GetStrategy(f.t.Context(), "dummy")
	require.NoError(f.t, err)
	a := audit.Audit{Name: string(typ) + time.Now().Format("150405.000000000"), Type: typ, GoalUUID: g.UUID, StrategyUUID: s.UUID,
		Parameters: map[string]any{"para1": 1.0, "para2": "x"}}
	if mutate != nil {
		mutate(&a)
	}
	created, err := f.store.CreateAudit(f.t.Context(), a)
	require.NoError(f.t, err)
	return created
}

func (f *fixture) get(id string) *audit.Audit {
	f.t.Helper()
	a, err := f.store.GetAudit(f.t.Context(), id)
	require.NoError(f.t, err)
	return a
}

func (f *fixture) plans(auditUUID string) []audit.ActionPlan {
	f.t.Helper()
	p, err := f.store.ListActionPlans(f.t.Context(), store.PlanListFilter{AuditUUID: auditUUID}, store.Page{Limit: 100})
	require.NoError(f.t, err)
	return p
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneshot(t *testing.T) {
	f := newFixture(t, nil)
	a := f.audit(audit.Oneshot, nil)
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	got := f.get(a.UUID)
	require.Equal(t, audit.StateSucceeded, got.State)
	require.Equal(t, "engine-1", got.Hostname)
	plans := f.plans(a.UUID)
	require.Len(t, plans, 1)
	require.Equal(t, audit.StateRecommended, plans[0].State)
	require.Equal(t, "dummy", plans[0].StrategyName)
	// A finished oneshot does not run again.
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	require.Len(t, f.plans(a.UUID), 1)
	require.Empty(t, f.launch.started)
	require.Equal(t, 1.0, counter(t, f.reg, "ballast_audit_runs_total", map[string]string{"type": "ONESHOT", "result": "planned"}))
	require.Equal(t, 1.0, counter(t, f.reg, "ballast_audit_runs_total", map[string]string{"type": "ONESHOT", "result": "skipped"}))
}

// counter reads a counter by its labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func TestFailureAndAutoTrigger(t *testing.T) {
	broken := audit.ModelFunc(func(context.Context, collect.Window) (*model.Cluster, error) {
		return nil, errors.New("datasource unreachable")
	})
	f := newFixture(t, broken)
	a := f.audit(audit.Oneshot, nil)
	require.Error(t, f.runner.Execute(t.Context(), a.UUID))
	got := f.get(a.UUID)
	require.Equal(t, audit.StateFailed, got.State)
	require.Equal(t, "cluster model: datasource unreachable", got.StatusMessage)

	f = newFixture(t, nil)
	a = f.audit(audit.Oneshot, func(a *audit.Audit) { a.AutoTrigger = true })
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	p := f.plans(a.UUID)[0]
	require.Equal(t, audit.StatePending, p.State, "auto_trigger plans are stored PENDING and launched")
	require.Equal(t, []string{p.UUID}, f.launch.started)

	f.launch.err = errors.New("no actuator for action type nop")
	a = f.audit(audit.Oneshot, func(a *audit.Audit) { a.AutoTrigger = true; a.Force = true })
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	p = f.plans(a.UUID)[0]
	require.Equal(t, audit.StateFailed, p.State)
	require.Equal(t, "The applier could not start the plan: no actuator for action type nop", p.StatusMessage)
}

// TestRefusedWhileOngoing: without force, a ONESHOT audit is CANCELLED and
// an EVENT audit skipped while any plan is ONGOING (Watcher's pre_execute).
func TestRefusedWhileOngoing(t *testing.T) {
	f := newFixture(t, nil)
	first := f.audit(audit.Oneshot, nil)
	require.NoError(t, f.runner.Execute(t.Context(), first.UUID))
	p := f.plans(first.UUID)[0]
	require.NoError(t, f.store.TransitionPlan(t.Context(), p.UUID, audit.StateRecommended, audit.StatePending, ""))
	require.NoError(t, f.store.TransitionPlan(t.Context(), p.UUID, audit.StatePending, audit.StateOngoing, ""))

	a := f.audit(audit.Oneshot, nil)
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	got := f.get(a.UUID)
	require.Equal(t, audit.StateCancelled, got.State)
	require.Equal(t, "Action Plan "+p.UUID+" is currently running.", got.StatusMessage)
	ev := f.audit(audit.Event, nil)
	require.NoError(t, f.runner.Execute(t.Context(), ev.UUID))
	require.Equal(t, audit.StatePending, f.get(ev.UUID).State)
	forced := f.audit(audit.Oneshot, func(a *audit.Audit) { a.Force = true })
	require.NoError(t, f.runner.Execute(t.Context(), forced.UUID))
	require.Equal(t, audit.StateSucceeded, f.get(forced.UUID).State)
}

// TestCancelledWhilePlanning: a user cancels the audit while its strategy
// runs: the plan is discarded, the audit stays CANCELLED.
func TestCancelledWhilePlanning(t *testing.T) {
	f := newFixture(t, nil)
	f.plan.hold = make(chan struct{})
	f.plan.calls.Add(1)
	a := f.audit(audit.Oneshot, nil)
	done := make(chan error)
	go func() { done <- f.runner.Execute(context.Background(), a.UUID) }()
	f.plan.calls.Wait()
	require.NoError(t, f.store.TransitionAudit(t.Context(), a.UUID, []string{audit.StateOngoing}, audit.StateCancelled, "", ""))
	close(f.plan.hold)
	require.NoError(t, <-done)
	require.Equal(t, audit.StateCancelled, f.get(a.UUID).State)
	require.Empty(t, f.plans(a.UUID))
}

// TestShutdownWhilePlanning: a shutdown is not a failure. An audit whose
// run a shutdown stops stays ONGOING, and the next start runs it again.
func TestShutdownWhilePlanning(t *testing.T) {
	for _, typ := range []audit.Type{audit.Oneshot, audit.Continuous} {
		t.Run(string(typ), func(t *testing.T) {
			f := newFixture(t, nil)
			f.plan.hold = make(chan struct{})
			f.plan.calls.Add(1)
			a := f.audit(typ, func(a *audit.Audit) { a.Interval = "3600" })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- f.runner.Run(ctx) }()
			f.plan.calls.Wait()
			cancel()
			close(f.plan.hold)
			require.NoError(t, <-done)
			got := f.get(a.UUID)
			require.Equal(t, audit.StateOngoing, got.State)
			require.Empty(t, got.StatusMessage)
			require.Empty(t, f.plans(a.UUID))

			// The next start (a new runner on the same store) runs it.
			f.plan.hold = nil
			next, err := audit.New(audit.Config{Hostname: "engine-1", PollInterval: 10 * time.Millisecond, Now: f.clock.Now},
				audit.Deps{Store: f.store, Planner: f.plan, Models: f.models, Launcher: f.launch, Registerer: prometheus.NewRegistry()}, nil)
			require.NoError(t, err)
			f.runner = next
			f.run()
			wait(t, "the run after restart", func() bool { return len(f.plans(a.UUID)) == 1 })
		})
	}
}

// TestContinuous drives the scheduler with a fake clock: an interval in
// seconds runs at once then every interval, each run superseding the last
// recommendation; a cron runs on its boundaries; end_time finishes it.
func TestContinuous(t *testing.T) {
	f := newFixture(t, nil)
	f.run()
	a := f.audit(audit.Continuous, func(a *audit.Audit) { a.Interval = "60"; a.Force = true })
	wait(t, "first run", func() bool { return len(f.plans(a.UUID)) == 1 })
	wait(t, "rescheduled", func() bool {
		n := f.get(a.UUID).NextRunTime
		return n != nil && n.Equal(f.clock.Now().Add(time.Minute))
	})
	require.Equal(t, audit.StateOngoing, f.get(a.UUID).State, "continuous audits stay ONGOING between runs")
	f.clock.Add(30 * time.Second)
	time.Sleep(50 * time.Millisecond)
	require.Len(t, f.plans(a.UUID), 1)
	f.clock.Add(31 * time.Second)
	wait(t, "second run", func() bool { return len(f.plans(a.UUID)) == 2 })
	plans := f.plans(a.UUID)
	wait(t, "superseded", func() bool {
		p, _ := f.store.GetActionPlan(t.Context(), plans[0].UUID)
		return p.State == audit.StateSuperseded
	})

	cron := f.audit(audit.Continuous, func(a *audit.Audit) { a.Interval = "0 * * * *"; a.Force = true })
	wait(t, "cron scheduled", func() bool { return f.get(cron.UUID).NextRunTime != nil })
	next := *f.get(cron.UUID).NextRunTime
	require.Zero(t, next.Minute())
	require.True(t, next.After(f.clock.Now()))
	require.Empty(t, f.plans(cron.UUID))
	end := f.clock.Now().Add(2 * time.Hour)
	require.NoError(t, f.store.SetNextRunTime(t.Context(), cron.UUID, next))
	f.clock.Add(next.Sub(f.clock.Now()))
	wait(t, "cron run", func() bool { return len(f.plans(cron.UUID)) == 1 })

	// Past its end_time the audit is SUCCEEDED and no longer runs.
	bounded := f.audit(audit.Continuous, func(a *audit.Audit) { a.Interval = "60"; a.EndTime = &end; a.Force = true })
	wait(t, "bounded first run", func() bool { return len(f.plans(bounded.UUID)) == 1 })
	f.clock.Add(3 * time.Hour)
	wait(t, "bounded finished", func() bool { return f.get(bounded.UUID).State == audit.StateSucceeded })
	require.Len(t, f.plans(bounded.UUID), 1)
}

// TestResume: after a crash, ONESHOT audits left PENDING or ONGOING run.
func TestResume(t *testing.T) {
	f := newFixture(t, nil)
	pending := f.audit(audit.Oneshot, nil)
	interrupted := f.audit(audit.Oneshot, nil)
	require.NoError(t, f.store.TransitionAudit(t.Context(), interrupted.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "old"))
	event := f.audit(audit.Event, nil)
	f.run()
	wait(t, "resumed", func() bool {
		return f.get(pending.UUID).State == audit.StateSucceeded && f.get(interrupted.UUID).State == audit.StateSucceeded
	})
	require.Equal(t, audit.StatePending, f.get(event.UUID).State, "EVENT audits wait for their trigger")
	require.NoError(t, f.runner.Trigger(event.UUID))
	wait(t, "triggered", func() bool { return f.get(event.UUID).State == audit.StateSucceeded })
	require.NoError(t, f.runner.Trigger(event.UUID))
	wait(t, "triggered again", func() bool { return len(f.plans(event.UUID)) == 2 })
}

func TestExpire(t *testing.T) {
	f := newFixture(t, nil)
	a := f.audit(audit.Oneshot, nil)
	require.NoError(t, f.runner.Execute(t.Context(), a.UUID))
	n, err := f.runner.Expire(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "plans are stored with the real clock, younger than a day")
	f.clock.Add(time.Now().Add(25 * time.Hour).Sub(f.clock.Now()))
	n, err = f.runner.Expire(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, audit.StateSuperseded, f.plans(a.UUID)[0].State)
}
