package applier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/planner"
	"github.com/ballast-cloud/ballast/decision/sim"
)

const waitFor = 20 * time.Second

// nextHost picks the host after the instance's, wrapping around.
func nextHost(c *model.Cluster, step int) func(int, *model.Instance) string {
	return func(_ int, in *model.Instance) string {
		for k, h := range c.Hosts {
			if h.Name == in.Host {
				return c.Hosts[(k+step)%len(c.Hosts)].Name
			}
		}
		return ""
	}
}

func TestDAGOrder(t *testing.T) {
	s := newSim(t, 12, 60)
	c := s.Snapshot()
	migs := moves(c, 24, nextHost(c, 1))
	built, err := planner.Build(append(append([]action.Action{action.NewNop("first")}, migs...),
		action.NewSleep(0), action.NewNop("last")), planner.Options{PerHost: 2, Global: 5})
	require.NoError(t, err)
	fromPlanner := applier.Plan{ID: "planner", State: actuators.StatePending, Limits: built.Limits}
	for _, a := range built.Actions {
		fromPlanner.Actions = append(fromPlanner.Actions, applier.Action{Action: a})
	}
	nop := func(m string) action.Action { return action.NewNop(m) }
	tests := []struct {
		name string
		plan applier.Plan
	}{
		{"chain", plan("chain", [2]int{2, 4}, []action.Action{nop("a"), nop("b"), nop("c"), nop("d")},
			map[int][]int{1: {0}, 2: {1}, 3: {2}})},
		{"diamond of migrations", plan("diamond", [2]int{2, 4}, []action.Action{nop("root"), migs[0], migs[1], migs[2], nop("join")},
			map[int][]int{1: {0}, 2: {0}, 3: {0}, 4: {1, 2, 3}})},
		{"reverse listed", plan("reverse", [2]int{1, 1}, []action.Action{nop("c"), nop("b"), nop("a")},
			map[int][]int{0: {1}, 1: {2}})},
		{"planner-built", fromPlanner},
	}
	// The diamond's migrations come from the same instances as the planner's
	// plan: give them their own simulator.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 12, 60)
			rec := newRecorder()
			store := memstate.New()
			ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
			res := apply(t, ap, store, tt.plan)
			require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
			require.Equal(t, len(tt.plan.Actions), res.Actions[actuators.StateSucceeded])
			for _, a := range tt.plan.Actions {
				require.Equal(t, 1, rec.count(a.ID), "action %s executions", a.ID)
				for _, p := range a.Parents {
					require.Greater(t, rec.started[a.ID], rec.finished[p], "%s started before its parent %s finished", a.ID, p)
				}
			}
			require.Empty(t, ongoingTwice(store))
			for _, a := range tt.plan.Actions {
				if a.Type == action.SimMigrate {
					require.Equal(t, a.Param("destination_node"), hostOf(s, a.Param("resource_id")))
				}
			}
		})
	}
}

func hostOf(s *sim.Sim, uuid string) string {
	for _, in := range s.Snapshot().Instances {
		if in.UUID == uuid {
			return in.Host
		}
	}
	return ""
}

// An action waiting on nothing runs while an unrelated long action runs:
// there is no barrier between DAG levels.
func TestNoBarriers(t *testing.T) {
	s := newSim(t, 6, 20)
	c := s.Snapshot()
	migs := moves(c, 1, nextHost(c, 1))
	p := plan("nobarrier", [2]int{2, 4}, []action.Action{migs[0], action.NewNop("a"), action.NewNop("b")},
		map[int][]int{2: {1}})
	rec := newRecorder()
	release := make(chan struct{})
	rec.beforeExecute = func(a action.Action) {
		if a.ID == p.Actions[0].ID {
			<-release
		}
	}
	store := memstate.New()
	ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	require.NoError(t, store.Add(p))
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, _ := store.ActionState(p.Actions[2].ID)
		return st == actuators.StateSucceeded
	}, waitFor, time.Millisecond, "the child of a finished action waited for an unrelated one")
	st, _ := store.ActionState(p.Actions[0].ID)
	require.Equal(t, actuators.StateOngoing, st)
	close(release)
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateSucceeded, res.State)
}

func TestConcurrencyLimits(t *testing.T) {
	tests := []struct {
		name    string
		perHost int
		global  int
		// pick chooses the migrations; want is the in-flight count the
		// applier must reach and hold while enough actions remain.
		pick func(c *model.Cluster) []action.Action
		want int
	}{
		{"global binds", 10, 4, func(c *model.Cluster) []action.Action { return moves(c, 40, nextHost(c, 1)) }, 4},
		{"per host binds", 2, 16, func(c *model.Cluster) []action.Action {
			src := c.Instances[0].Host
			return moves(c, 40, func(i int, in *model.Instance) string {
				if in.Host != src {
					return ""
				}
				return c.Hosts[1+i%(len(c.Hosts)-1)].Name
			})
		}, 2},
		{"per host of one", 1, 3, func(c *model.Cluster) []action.Action { return moves(c, 40, nextHost(c, 3)) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 40, 240)
			acts := tt.pick(s.Snapshot())
			require.GreaterOrEqual(t, len(acts), 4)
			p := plan(strings.ReplaceAll(tt.name, " ", "-"), [2]int{tt.perHost, tt.global}, acts, nil)
			rec := newRecorder()
			rec.gate = make(chan struct{})
			store := memstate.New()
			ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
			require.NoError(t, store.Add(p))
			ex, err := ap.Start(context.Background(), p)
			require.NoError(t, err)
			// Release one migration at a time, each time once the applier
			// has filled every slot it may.
			for done := 0; done < len(acts); done++ {
				if want := min(tt.want, len(acts)-done); want > 0 {
					require.Eventually(t, func() bool { return rec.running() == want }, waitFor, time.Millisecond,
						"in flight %d, want %d after %d done", rec.running(), want, done)
				} else {
					require.Eventually(t, func() bool { return rec.running() > 0 }, waitFor, time.Millisecond)
				}
				rec.gate <- struct{}{}
			}
			res, err := ex.Wait(context.Background())
			require.NoError(t, err)
			require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
			require.LessOrEqual(t, rec.maxGlobal, tt.global)
			require.LessOrEqual(t, rec.maxPerHost, tt.perHost)
			if tt.want > 0 {
				require.Equal(t, tt.want, rec.maxGlobal)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	s := newSim(t, 6, 20)
	c := s.Snapshot()
	in := c.Instances[0]
	wrong := c.Hosts[0].Name
	if wrong == in.Host {
		wrong = c.Hosts[1].Name
	}
	dst := nextHost(c, 2)(0, &in)
	stale := action.NewMigrate(action.MigrateParams{Live: true, Source: wrong, Destination: dst, InstanceID: in.UUID}, true)
	p := plan("skip", [2]int{2, 4}, []action.Action{stale, action.NewNop("child of skipped"), action.NewNop("user skipped"),
		action.NewNop("child of user skipped"), action.NewNop("skipped while running")}, map[int][]int{1: {0}, 3: {2}, 4: {3}})
	p.Actions[2].State = actuators.StateSkipped
	rec := newRecorder()
	store := memstate.New()
	// A user skips the last action while its parent runs.
	rec.beforeExecute = func(a action.Action) {
		if a.ID == p.Actions[3].ID {
			require.NoError(t, store.TransitionAction(context.Background(), p.Actions[4].ID, actuators.StatePending, actuators.StateSkipped, "by user"))
		}
	}
	ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	res := apply(t, ap, store, p)
	require.Equal(t, actuators.StateSucceeded, res.State)
	require.Equal(t, "One or more actions were skipped.", res.Message)
	_, msg, err := store.Plan("skip")
	require.NoError(t, err)
	require.Equal(t, "One or more actions were skipped.", msg)
	st, msg := store.ActionState(p.Actions[0].ID)
	require.Equal(t, actuators.StateSkipped, st)
	require.Equal(t, fmt.Sprintf("Action was skipped automatically: instance %s runs on %s, not on source_node %s", in.UUID, in.Host, wrong), msg)
	require.Equal(t, in.Host, hostOf(s, in.UUID))
	want := map[string]string{p.Actions[0].ID: actuators.StateSkipped, p.Actions[1].ID: actuators.StateSucceeded,
		p.Actions[2].ID: actuators.StateSkipped, p.Actions[3].ID: actuators.StateSucceeded, p.Actions[4].ID: actuators.StateSkipped}
	require.Equal(t, want, states(t, store, "skip"))
	for i, n := range []int{0, 1, 0, 1, 0} {
		require.Equal(t, n, rec.count(p.Actions[i].ID), "executions of action %d", i)
	}
}

func TestFailure(t *testing.T) {
	tests := []struct {
		name     string
		cfg      applier.Config
		wantLast string
	}{
		{"stop at first failure", applier.Config{}, actuators.StateCancelled},
		{"continue on failure", applier.Config{ContinueOnFailure: true}, actuators.StateSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 6, 20)
			c := s.Snapshot()
			migs := moves(c, 1, nextHost(c, 1))
			independent := action.NewNop("independent")
			independent.EstimatedStartSeconds = 10 // after the migration
			p := plan("fail", [2]int{2, 1}, []action.Action{migs[0], action.NewNop("child"), independent}, map[int][]int{1: {0}})
			rec := newRecorder()
			// The destination is disabled after the precondition passed:
			// the simulator refuses the migration.
			rec.beforeExecute = func(a action.Action) {
				if a.Type == action.SimMigrate {
					require.NoError(t, s.SetHostState(a.Param("destination_node"), model.HostDisabled, "test"))
				}
			}
			store := memstate.New()
			ap := newApplier(t, tt.cfg, store, registry(t, s, rec))
			res := apply(t, ap, store, p)
			require.Equal(t, actuators.StateFailed, res.State)
			require.Equal(t, "One or more actions failed.", res.Message)
			st, msg := store.ActionState(p.Actions[0].ID)
			require.Equal(t, actuators.StateFailed, st)
			require.Contains(t, msg, "rejected")
			st, msg = store.ActionState(p.Actions[1].ID)
			require.Equal(t, actuators.StateCancelled, st)
			require.Equal(t, "Not run: a parent action failed.", msg)
			require.Zero(t, rec.count(p.Actions[1].ID))
			st, _ = store.ActionState(p.Actions[2].ID)
			require.Equal(t, tt.wantLast, st)
		})
	}
}

func TestInvalidActionsFail(t *testing.T) {
	tests := []struct {
		name    string
		act     action.Action
		wantMsg string
	}{
		{"bad parameters", action.NewSleep(-1), "sleep: input_parameters.duration -1 must not be negative"},
		{"precondition error", action.NewSleep(7200), "Precondition: sleep: input_parameters.duration 7200s is outside [0, 1h0m0s] (sleep.max_duration)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			store := memstate.New()
			ap := newApplier(t, applier.Config{}, store, registry(t, newSim(t, 2, 2), rec))
			p := plan("invalid", [2]int{}, []action.Action{tt.act}, nil)
			res := apply(t, ap, store, p)
			require.Equal(t, actuators.StateFailed, res.State)
			st, msg := store.ActionState(p.Actions[0].ID)
			require.Equal(t, actuators.StateFailed, st)
			require.Equal(t, tt.wantMsg, msg)
			require.Zero(t, rec.count(p.Actions[0].ID))
		})
	}
}

func TestCancel(t *testing.T) {
	long := action.NewSleep(3600)
	tests := []struct {
		name  string
		cfg   applier.Config
		abort bool
		// gated: the first two actions are held until released; otherwise
		// they are hour-long sleeps.
		gated       bool
		wantRunning string
	}{
		{"running actions finish", applier.Config{}, false, true, actuators.StateSucceeded},
		{"abort running actions", applier.Config{}, true, false, actuators.StateCancelled},
		{"abort by configuration", applier.Config{AbortOnCancel: true}, false, false, actuators.StateCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			first := []action.Action{long, long}
			if tt.gated {
				rec.gate = make(chan struct{})
				first = []action.Action{action.NewNop("held"), action.NewNop("held")}
			}
			acts := append(first, action.NewNop("c"), action.NewNop("d"), action.NewNop("e"))
			p := plan("cancel", [2]int{2, 2}, acts, map[int][]int{4: {2}})
			store := memstate.New()
			ap := newApplier(t, tt.cfg, store, registry(t, newSim(t, 2, 2), rec))
			require.NoError(t, store.Add(p))
			ex, err := ap.Start(context.Background(), p)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return rec.running() == 2 }, waitFor, time.Millisecond)
			require.NoError(t, ap.Cancel(context.Background(), "cancel", tt.abort))
			if tt.gated {
				pl, _, err := store.Plan("cancel")
				require.NoError(t, err)
				require.Equal(t, actuators.StateCancelling, pl.State)
				rec.gate <- struct{}{}
				rec.gate <- struct{}{}
			}
			res, err := ex.Wait(context.Background())
			require.NoError(t, err)
			require.Equal(t, actuators.StateCancelled, res.State)
			pl, msg, _ := store.Plan("cancel")
			require.Equal(t, actuators.StateCancelled, pl.State)
			require.Equal(t, "Action plan was cancelled.", msg)
			for i, a := range pl.Actions {
				if i < 2 {
					require.Equal(t, tt.wantRunning, a.State, "running action %d", i)
					continue
				}
				require.Equal(t, actuators.StateCancelled, a.State, "pending action %d", i)
				require.Zero(t, rec.count(a.ID))
			}
			require.ErrorIs(t, ap.Cancel(context.Background(), "cancel", false), applier.ErrNotRunning)
		})
	}
}

// Aborting a simulated migration rolls it back: the action is CANCELLED and
// the instance stays where it was.
func TestCancelAbortsMigration(t *testing.T) {
	s, err := sim.New(sim.Config{Hosts: 4, Instances: 8, Seed: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }}, nil, nil)
	require.NoError(t, err)
	c := s.Snapshot()
	migs := moves(c, 1, nextHost(c, 1))
	p := plan("abortmig", [2]int{}, migs, nil)
	rec := newRecorder()
	store := memstate.New()
	ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	require.NoError(t, store.Add(p))
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.running() == 1 }, waitFor, time.Millisecond)
	require.NoError(t, ap.Cancel(context.Background(), "abortmig", true))
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateCancelled, res.State)
	st, msg := store.ActionState(p.Actions[0].ID)
	require.Equal(t, actuators.StateCancelled, st)
	require.Contains(t, msg, "Aborted: ")
	require.Equal(t, migs[0].Param("source_node"), hostOf(s, migs[0].Param("resource_id")))
}

func TestDryRun(t *testing.T) {
	s := newSim(t, 6, 20)
	c := s.Snapshot()
	migs := moves(c, 2, nextHost(c, 1))
	stale := migs[1]
	stale.InputParameters["source_node"] = stale.Param("destination_node")
	p := plan("dry", [2]int{}, []action.Action{migs[0], stale, action.NewSleep(-1), action.NewSleep(7200), action.NewNop("done")}, map[int][]int{1: {0}})
	p.Actions[4].State = actuators.StateSucceeded
	rec := newRecorder()
	store := memstate.New()
	ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	checks, err := ap.DryRun(context.Background(), p)
	require.NoError(t, err)
	got := map[string]string{}
	for _, ch := range checks {
		got[ch.ActionID] = ch.Result
	}
	require.Equal(t, map[string]string{p.Actions[0].ID: applier.CheckOK, p.Actions[1].ID: applier.CheckSkip,
		p.Actions[2].ID: applier.CheckError, p.Actions[3].ID: applier.CheckError}, got)
	require.True(t, strings.HasPrefix(checks[1].Message, "Action was skipped automatically: "), checks[1].Message)
	require.Empty(t, store.History())
	require.Equal(t, migs[0].Param("source_node"), hostOf(s, migs[0].Param("resource_id")))
	for _, a := range p.Actions {
		require.Zero(t, rec.count(a.ID))
	}
	_, err = ap.DryRun(context.Background(), plan("dry-cycle", [2]int{}, []action.Action{action.NewNop("a"), action.NewNop("b")}, map[int][]int{0: {1}, 1: {0}}))
	require.ErrorContains(t, err, "cycle")
}

// noReconcile hides a real actuator's Reconciler.
type noReconcile struct{ actuators.Actuator }

func TestResumeReconciles(t *testing.T) {
	s := newSim(t, 6, 30)
	c := s.Snapshot()
	migs := moves(c, 2, nextHost(c, 1))
	p := plan("resume", [2]int{}, []action.Action{migs[0], migs[1], action.NewNop("after moved"), action.NewNop("after not moved"),
		action.NewNop("done before"), action.NewSleep(0)}, map[int][]int{2: {0}, 3: {1}})
	p.State = actuators.StateOngoing
	// The previous process recorded both migrations ONGOING and died; the
	// first had completed.
	p.Actions[0].State, p.Actions[1].State = actuators.StateOngoing, actuators.StateOngoing
	p.Actions[4].State = actuators.StateSucceeded
	require.NoError(t, s.Migrate(context.Background(), migs[0].Param("resource_id"), migs[0].Param("destination_node")))
	rec := newRecorder()
	store := memstate.New()
	require.NoError(t, store.Add(p))
	reg := prometheus.NewRegistry()
	ap, err := applier.New(applier.Config{ContinueOnFailure: true},
		applier.Deps{Store: store, Loader: store, Actuators: registry(t, s, rec), Registerer: reg}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	res := resumeOne(t, ap)
	require.Equal(t, actuators.StateFailed, res.State)
	for i, want := range []string{actuators.StateSucceeded, actuators.StateFailed, actuators.StateSucceeded,
		actuators.StateCancelled, actuators.StateSucceeded, actuators.StateSucceeded} {
		st, msg := store.ActionState(p.Actions[i].ID)
		require.Equal(t, want, st, "action %d: %s", i, msg)
	}
	_, msg := store.ActionState(p.Actions[0].ID)
	require.Equal(t, "The applier restarted while the action ran; it had taken effect.", msg)
	_, msg = store.ActionState(p.Actions[1].ID)
	require.Equal(t, "The applier restarted while the action ran; it had not taken effect and is not run again.", msg)
	require.Zero(t, rec.count(p.Actions[0].ID))
	require.Zero(t, rec.count(p.Actions[1].ID))
	require.Zero(t, rec.count(p.Actions[4].ID))
	require.Equal(t, migs[1].Param("source_node"), hostOf(s, migs[1].Param("resource_id")))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ballast_applier_reconciled_actions_total Actions found ONGOING after a restart and settled without running them again, by action type and the state recorded.
# TYPE ballast_applier_reconciled_actions_total counter
ballast_applier_reconciled_actions_total{action_type="sim_migrate",result="failed"} 1
ballast_applier_reconciled_actions_total{action_type="sim_migrate",result="succeeded"} 1
`), "ballast_applier_reconciled_actions_total"))
}

func TestResumeCancelling(t *testing.T) {
	rec := newRecorder()
	store := memstate.New()
	reg := registry(t, newSim(t, 2, 2), rec)
	reg[action.Sleep] = noReconcile{reg[action.Sleep]}
	p := plan("resume-cancel", [2]int{}, []action.Action{action.NewNop("was running"), action.NewSleep(0), action.NewNop("pending")}, nil)
	p.State = actuators.StateCancelling
	p.Actions[0].State, p.Actions[1].State = actuators.StateOngoing, actuators.StateOngoing
	require.NoError(t, store.Add(p))
	ap := newApplier(t, applier.Config{}, store, reg)
	exs, err := ap.Resume(context.Background())
	require.NoError(t, err)
	res, err := exs[0].Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateCancelled, res.State)
	require.Equal(t, map[string]string{p.Actions[0].ID: actuators.StateSucceeded, p.Actions[1].ID: actuators.StateFailed,
		p.Actions[2].ID: actuators.StateCancelled}, states(t, store, "resume-cancel"))
	_, msg := store.ActionState(p.Actions[1].ID)
	require.Contains(t, msg, "sleep actions cannot tell whether they took effect")
	for _, a := range p.Actions {
		require.Zero(t, rec.count(a.ID))
	}
}

// flakyStore is the in-memory store failing the first calls of every
// transition, as a database that is briefly locked does.
type flakyStore struct {
	*memstate.Store
	mu       sync.Mutex
	failures map[string]int
	each     int
}

var errLocked = errors.New("database is locked")

func (f *flakyStore) fail(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.each < 0 || f.failures[key] < f.each {
		f.failures[key]++
		return true
	}
	return false
}

func (f *flakyStore) TransitionAction(ctx context.Context, id, from, to, msg string) error {
	if f.fail(id + from + to) {
		return errLocked
	}
	return f.Store.TransitionAction(ctx, id, from, to, msg)
}

func (f *flakyStore) TransitionPlan(ctx context.Context, id, from, to, msg string) error {
	if f.fail(id + from + to) {
		return errLocked
	}
	return f.Store.TransitionPlan(ctx, id, from, to, msg)
}

func TestStoreFailures(t *testing.T) {
	t.Run("transient failures are retried", func(t *testing.T) {
		rec := newRecorder()
		store := &flakyStore{Store: memstate.New(), failures: map[string]int{}, each: 2}
		ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: registry(t, newSim(t, 2, 2), rec)}, nil)
		require.NoError(t, err)
		t.Cleanup(ap.Stop)
		p := plan("flaky", [2]int{}, []action.Action{action.NewNop("a"), action.NewNop("b")}, map[int][]int{1: {0}})
		require.NoError(t, store.Add(p))
		ex, err := ap.Start(context.Background(), p)
		require.NoError(t, err)
		res, err := ex.Wait(context.Background())
		require.NoError(t, err)
		require.Equal(t, actuators.StateSucceeded, res.State)
		require.Equal(t, 1, rec.count(p.Actions[0].ID))
	})
	t.Run("a store that stays down interrupts the plan", func(t *testing.T) {
		rec := newRecorder()
		rec.gate = make(chan struct{})
		mem := memstate.New()
		store := &flakyStore{Store: mem, failures: map[string]int{}}
		ap, err := applier.New(applier.Config{StoreTimeout: 300 * time.Millisecond},
			applier.Deps{Store: store, Actuators: registry(t, newSim(t, 2, 2), rec)}, nil)
		require.NoError(t, err)
		t.Cleanup(ap.Stop)
		p := plan("down", [2]int{}, []action.Action{action.NewNop("a"), action.NewNop("b")}, map[int][]int{1: {0}})
		require.NoError(t, store.Add(p))
		ex, err := ap.Start(context.Background(), p)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return rec.running() == 1 }, waitFor, time.Millisecond)
		store.mu.Lock()
		store.each = -1 // from now on every write fails
		store.mu.Unlock()
		rec.gate <- struct{}{}
		res, err := ex.Wait(context.Background())
		require.NoError(t, err)
		require.Empty(t, res.State)
		require.ErrorContains(t, res.Err, "interrupted")
		pl, _, err := mem.Plan("down")
		require.NoError(t, err)
		require.Equal(t, actuators.StateOngoing, pl.State, "an interrupted plan is left for the next start")
		require.Equal(t, actuators.StateOngoing, pl.Actions[0].State, "its end could not be recorded: the next start reconciles it")
		require.Equal(t, actuators.StatePending, pl.Actions[1].State)
	})
}

func TestStartErrors(t *testing.T) {
	nop := action.NewNop
	tests := []struct {
		name string
		plan applier.Plan
		want string
	}{
		{"no uuid", applier.Plan{}, "action plan has no uuid"},
		{"bad state", applier.Plan{ID: "x", State: actuators.StateSucceeded}, "only PENDING, ONGOING and CANCELLING plans can be applied"},
		{"unknown parent", plan("p", [2]int{}, []action.Action{nop("a")}, map[int][]int{0: {3}}), "unknown parent p-a003"},
		{"cycle", plan("p", [2]int{}, []action.Action{nop("a"), nop("b")}, map[int][]int{0: {1}, 1: {0}}), "cycle"},
		{"no actuator", plan("p", [2]int{}, []action.Action{action.NewPowerState("h", "h", false)}, nil),
			`no actuator for action type "change_node_power_state" (configured: nop, sim_migrate, sleep)`},
		{"duplicate action", func() applier.Plan {
			p := plan("p", [2]int{}, []action.Action{nop("a"), nop("b")}, nil)
			p.Actions[1].ID = p.Actions[0].ID
			return p
		}(), "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := newApplier(t, applier.Config{}, memstate.New(), registry(t, newSim(t, 2, 2), newRecorder()))
			_, err := ap.Start(context.Background(), tt.plan)
			require.ErrorContains(t, err, tt.want)
		})
	}
	t.Run("state conflict", func(t *testing.T) {
		store := memstate.New()
		ap := newApplier(t, applier.Config{}, store, registry(t, newSim(t, 2, 2), newRecorder()))
		p := plan("conflict", [2]int{}, []action.Action{nop("a")}, nil)
		require.NoError(t, store.Add(p))
		require.NoError(t, store.TransitionPlan(context.Background(), "conflict", actuators.StatePending, actuators.StateCancelled, ""))
		_, err := ap.Start(context.Background(), p)
		require.ErrorIs(t, err, actuators.ErrStateConflict)
	})
	t.Run("already running and stopped", func(t *testing.T) {
		rec := newRecorder()
		rec.gate = make(chan struct{})
		store := memstate.New()
		ap := newApplier(t, applier.Config{}, store, registry(t, newSim(t, 2, 2), rec))
		p := plan("twice", [2]int{}, []action.Action{nop("a")}, nil)
		require.NoError(t, store.Add(p))
		ex, err := ap.Start(context.Background(), p)
		require.NoError(t, err)
		_, err = ap.Start(context.Background(), p)
		require.ErrorIs(t, err, applier.ErrAlreadyRunning)
		require.Equal(t, []string{"twice"}, ap.Running())
		rec.gate <- struct{}{}
		res, err := ex.Wait(context.Background())
		require.NoError(t, err)
		require.Equal(t, actuators.StateSucceeded, res.State)
		ap.Stop()
		_, err = ap.Start(context.Background(), plan("late", [2]int{}, []action.Action{nop("a")}, nil))
		require.ErrorIs(t, err, applier.ErrStopped)
	})
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		cfg  applier.Config
		want string
	}{
		{applier.Config{PerHost: -1}, "applier.per_host: -1 must not be negative"},
		{applier.Config{Global: -2}, "applier.global: -2 must not be negative"},
		{applier.Config{ReconcileTimeout: -time.Second}, "applier.reconcile_timeout: -1s must not be negative"},
	}
	for _, tt := range tests {
		_, err := applier.New(tt.cfg, applier.Deps{Store: memstate.New(), Actuators: registry(t, newSim(t, 2, 2), newRecorder())}, nil)
		require.EqualError(t, err, tt.want)
	}
	_, err := applier.New(applier.Config{}, applier.Deps{Actuators: actuators.Registry{}}, nil)
	require.ErrorContains(t, err, "state store is required")
	_, err = applier.New(applier.Config{}, applier.Deps{Store: memstate.New()}, nil)
	require.ErrorContains(t, err, "no actuators")
}

func TestEmptyPlanAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := memstate.New()
	var progressed sync.Map
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: registry(t, newSim(t, 2, 2), newRecorder()), Registerer: reg,
		Progress: func(_, actionID string, f float64) { progressed.Store(actionID, f) }}, nil)
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	res := apply(t, ap, store, applier.Plan{ID: "empty"})
	require.Equal(t, actuators.StateSucceeded, res.State)
	p := plan("metrics", [2]int{}, []action.Action{action.NewNop("a"), action.NewSleep(0), action.NewSleep(-1)}, nil)
	res = apply(t, ap, store, p)
	require.Equal(t, actuators.StateFailed, res.State)
	f, ok := progressed.Load(p.Actions[1].ID)
	require.True(t, ok)
	require.Equal(t, 1.0, f)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ballast_applier_actions_total Actions the applier finished, by action type and final state (succeeded, failed, skipped, cancelled; interrupted: aborted by a shutdown before taking effect, run again on resume).
# TYPE ballast_applier_actions_total counter
ballast_applier_actions_total{action_type="nop",result="succeeded"} 1
ballast_applier_actions_total{action_type="sleep",result="failed"} 1
ballast_applier_actions_total{action_type="sleep",result="succeeded"} 1
# HELP ballast_applier_plans_total Action plan executions that ended, by final state (interrupted: left for the next start to resume).
# TYPE ballast_applier_plans_total counter
ballast_applier_plans_total{result="failed"} 1
ballast_applier_plans_total{result="succeeded"} 1
# HELP ballast_applier_actions_in_flight Actions launched and not yet finished, by action type.
# TYPE ballast_applier_actions_in_flight gauge
ballast_applier_actions_in_flight{action_type="nop"} 0
ballast_applier_actions_in_flight{action_type="sleep"} 0
`), "ballast_applier_actions_total", "ballast_applier_plans_total", "ballast_applier_actions_in_flight"))
	require.Equal(t, 3, testutil.CollectAndCount(reg, "ballast_applier_action_duration_seconds"))
	_, err = applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: registry(t, newSim(t, 2, 2), newRecorder()), Registerer: reg}, nil)
	require.ErrorContains(t, err, "register metrics")
}

// An applier stopping while it still cannot tell whether an interrupted
// action took effect (the simulated migration is still in flight) records
// nothing: the action stays ONGOING for the next start.
func TestStopWhileReconciling(t *testing.T) {
	s, err := sim.New(sim.Config{Hosts: 4, Instances: 8, Seed: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }}, nil, nil)
	require.NoError(t, err)
	c := s.Snapshot()
	migs := moves(c, 1, nextHost(c, 1))
	// The previous process started this migration; it is still running.
	mctx, stopMigration := context.WithCancel(context.Background())
	migrated := make(chan error, 1)
	go func() { migrated <- s.Execute(mctx, migs[0]) }()
	require.Eventually(t, func() bool {
		for _, in := range s.Snapshot().Instances {
			if in.UUID == migs[0].Param("resource_id") {
				return in.State == model.InstanceMigrating
			}
		}
		return false
	}, waitFor, time.Millisecond)
	p := plan("stopping", [2]int{}, migs, nil)
	p.State, p.Actions[0].State = actuators.StateOngoing, actuators.StateOngoing
	store := memstate.New()
	require.NoError(t, store.Add(p))
	ap, err := applier.New(applier.Config{ShutdownTimeout: time.Millisecond}, applier.Deps{Store: store,
		Actuators: registry(t, s, newRecorder())}, nil)
	require.NoError(t, err)
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	ap.Stop()
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Empty(t, res.State)
	require.ErrorContains(t, res.Err, "interrupted")
	st, _ := store.ActionState(p.Actions[0].ID)
	require.Equal(t, actuators.StateOngoing, st)
	pl, _, err := store.Plan("stopping")
	require.NoError(t, err)
	require.Equal(t, actuators.StateOngoing, pl.State)
	stopMigration()
	require.ErrorIs(t, <-migrated, context.Canceled)
}

func TestShutdownRequeuesAbortedMigration(t *testing.T) {
	// A migration still running when the shutdown's grace period ends is
	// aborted (the simulator rolls it back); it is not a user's cancel, so
	// it returns to PENDING and the resumed plan runs it and its child.
	var block atomic.Bool
	block.Store(true)
	s, err := sim.New(sim.Config{Hosts: 4, Instances: 8, Seed: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			if block.Load() {
				<-ctx.Done()
			}
			return ctx.Err()
		}}, nil, nil)
	require.NoError(t, err)
	c := s.Snapshot()
	migs := moves(c, 1, nextHost(c, 1))
	p := plan("requeue", [2]int{}, []action.Action{migs[0], action.NewNop("after")}, map[int][]int{1: {0}})
	rec := newRecorder()
	store := memstate.New()
	reg := prometheus.NewRegistry()
	ap, err := applier.New(applier.Config{ShutdownTimeout: time.Millisecond},
		applier.Deps{Store: store, Loader: store, Actuators: registry(t, s, rec), Registerer: reg}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, store.Add(p))
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.running() == 1 }, waitFor, time.Millisecond)
	ap.Stop()
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Empty(t, res.State, "the plan is left for the next start")
	pl, _, err := store.Plan("requeue")
	require.NoError(t, err)
	require.Equal(t, actuators.StateOngoing, pl.State)
	st, msg := store.ActionState(p.Actions[0].ID)
	require.Equal(t, actuators.StatePending, st)
	require.Equal(t, "Aborted by the applier's shutdown before it took effect; it runs again when the plan resumes.", msg)
	st, _ = store.ActionState(p.Actions[1].ID)
	require.Equal(t, actuators.StatePending, st)
	require.Equal(t, migs[0].Param("source_node"), hostOf(s, migs[0].Param("resource_id")))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ballast_applier_plans_total Action plan executions that ended, by final state (interrupted: left for the next start to resume).
# TYPE ballast_applier_plans_total counter
ballast_applier_plans_total{result="interrupted"} 1
`), "ballast_applier_plans_total"))

	block.Store(false)
	ap2 := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	res = resumeOne(t, ap2)
	require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
	require.Equal(t, map[string]string{p.Actions[0].ID: actuators.StateSucceeded, p.Actions[1].ID: actuators.StateSucceeded},
		states(t, store, "requeue"))
	require.Equal(t, migs[0].Param("destination_node"), hostOf(s, migs[0].Param("resource_id")))
}

func TestResumeAfterFailureLaunchesNothing(t *testing.T) {
	// The previous process stopped launching at a failure (the default) and
	// was then stopped: the resumed plan does not launch the rest.
	s := newSim(t, 4, 8)
	p := plan("failed-before", [2]int{}, []action.Action{action.NewNop("failed"), action.NewNop("never")}, nil)
	p.State = actuators.StateOngoing
	p.Actions[0].State = actuators.StateFailed
	rec := newRecorder()
	store := memstate.New()
	require.NoError(t, store.Add(p))
	ap := newApplier(t, applier.Config{}, store, registry(t, s, rec))
	res := resumeOne(t, ap)
	require.Equal(t, actuators.StateFailed, res.State)
	require.Equal(t, "One or more actions failed.", res.Message)
	st, msg := store.ActionState(p.Actions[1].ID)
	require.Equal(t, actuators.StateCancelled, st)
	require.Equal(t, "Not run: the action plan stopped at a failure.", msg)
	require.Zero(t, rec.count(p.Actions[1].ID))
}

// resumeOne resumes the one unfinished plan of ap's store and waits for it.
func resumeOne(t *testing.T, ap *applier.Applier) applier.Result {
	t.Helper()
	exs, err := ap.Resume(context.Background())
	require.NoError(t, err)
	require.Len(t, exs, 1)
	res, err := exs[0].Wait(context.Background())
	require.NoError(t, err)
	return res
}
