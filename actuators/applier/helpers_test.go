package applier_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/nop"
	"github.com/ballast-cloud/ballast/actuators/simmigrate"
	"github.com/ballast-cloud/ballast/actuators/sleep"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/sim"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

// newSim is a small simulated cluster whose migrations take no wall time.
func newSim(t testing.TB, hosts, instances int) *sim.Sim {
	t.Helper()
	s, err := sim.New(sim.Config{Hosts: hosts, Instances: instances, Seed: 7,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}, nil, nil)
	require.NoError(t, err)
	return s
}

// recorder wraps real actuators and observes them: the order of executions,
// how many run at once (globally and per host), and, when gated, holds each
// Execute until the test releases it.
type recorder struct {
	mu         sync.Mutex
	seq        int
	started    map[string]int
	finished   map[string]int
	executions map[string]int
	inFlight   int
	perHost    map[string]int
	maxGlobal  int
	maxPerHost int
	// gate, when set, holds every Execute until a value is received.
	gate chan struct{}
	// beforeExecute runs at the start of Execute (a world that changes
	// between precondition and execution).
	beforeExecute func(action.Action)
}

func newRecorder() *recorder {
	return &recorder{started: map[string]int{}, finished: map[string]int{}, executions: map[string]int{}, perHost: map[string]int{}}
}

type recorded struct {
	inner actuators.Actuator
	r     *recorder
}

func (r *recorder) wrap(inner actuators.Actuator) actuators.Actuator {
	return &recorded{inner: inner, r: r}
}

func (w *recorded) Precondition(ctx context.Context, a action.Action) error {
	return w.inner.Precondition(ctx, a)
}

func (w *recorded) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	r := w.r
	hosts := a.Hosts()
	r.mu.Lock()
	r.seq++
	r.started[a.ID] = r.seq
	r.executions[a.ID]++
	r.inFlight++
	r.maxGlobal = max(r.maxGlobal, r.inFlight)
	if a.Type == action.SimMigrate {
		for _, h := range hosts {
			r.perHost[h]++
			r.maxPerHost = max(r.maxPerHost, r.perHost[h])
		}
	}
	gate, before := r.gate, r.beforeExecute
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.seq++
		r.finished[a.ID] = r.seq
		r.inFlight--
		if a.Type == action.SimMigrate {
			for _, h := range hosts {
				r.perHost[h]--
			}
		}
		r.mu.Unlock()
	}()
	if before != nil {
		before(a)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return w.inner.Execute(ctx, a, progress)
}

func (w *recorded) Reconcile(ctx context.Context, a action.Action) (bool, error) {
	return w.inner.(actuators.Reconciler).Reconcile(ctx, a)
}

func (r *recorder) running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.executions[id]
}

// registry builds the real nop, sleep and sim_migrate actuators, wrapped
// by rec.
func registry(t testing.TB, s *sim.Sim, rec *recorder) actuators.Registry {
	t.Helper()
	n, err := nop.New(nop.Config{}, nil)
	require.NoError(t, err)
	sl, err := sleep.New(sleep.Config{}, nil)
	require.NoError(t, err)
	sm, err := simmigrate.New(simmigrate.Config{}, simmigrate.Deps{Cluster: s}, nil)
	require.NoError(t, err)
	return actuators.Registry{action.Nop: rec.wrap(n), action.Sleep: rec.wrap(sl), action.SimMigrate: rec.wrap(sm)}
}

func newApplier(t testing.TB, cfg applier.Config, store *memstate.Store, reg actuators.Registry) *applier.Applier {
	t.Helper()
	ap, err := applier.New(cfg, applier.Deps{Store: store, Loader: store, Actuators: reg}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	return ap
}

// moves returns n sim_migrate actions, each moving a distinct instance to
// a host chosen by pick (which sees the instance's current host).
func moves(c *model.Cluster, n int, pick func(i int, in *model.Instance) string) []action.Action {
	var out []action.Action
	for i := range c.Instances {
		if len(out) == n {
			break
		}
		in := &c.Instances[i]
		dst := pick(i, in)
		if dst == "" || dst == in.Host {
			continue
		}
		out = append(out, action.NewMigrate(action.MigrateParams{Live: true, Source: in.Host, Destination: dst, InstanceID: in.UUID}, true))
	}
	return out
}

// plan gives actions IDs and parents (edges[i] lists i's parents by index).
func plan(id string, limits [2]int, acts []action.Action, edges map[int][]int) applier.Plan {
	p := applier.Plan{ID: id, State: actuators.StatePending}
	p.Limits.PerHost, p.Limits.Global = limits[0], limits[1]
	for i, a := range acts {
		a.ID = fmt.Sprintf("%s-a%03d", id, i)
		for _, e := range edges[i] {
			a.Parents = append(a.Parents, fmt.Sprintf("%s-a%03d", id, e))
		}
		p.Actions = append(p.Actions, applier.Action{Action: a})
	}
	return p
}

// apply stores p, applies it and waits for the result.
func apply(t testing.TB, ap *applier.Applier, store *memstate.Store, p applier.Plan) applier.Result {
	t.Helper()
	require.NoError(t, store.Add(p))
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := ex.Wait(ctx)
	require.NoError(t, err, "plan %s did not finish", p.ID)
	return res
}

// states returns the stored state of each action of plan id, by action ID.
func states(t testing.TB, store *memstate.Store, id string) map[string]string {
	t.Helper()
	p, _, err := store.Plan(id)
	require.NoError(t, err)
	out := map[string]string{}
	for _, a := range p.Actions {
		out[a.ID] = a.State
	}
	return out
}

// ongoingTwice lists actions that went ONGOING more than once.
func ongoingTwice(store *memstate.Store) []string {
	n := map[string]int{}
	var out []string
	for _, tr := range store.History() {
		if tr.Kind == "action" && tr.To == actuators.StateOngoing {
			if n[tr.ID]++; n[tr.ID] == 2 {
				out = append(out, tr.ID)
			}
		}
	}
	slices.Sort(out)
	return out
}
