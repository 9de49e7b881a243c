// Command applier benchmarks the action-plan applier on the simulated
// cluster: how many actions per second it drives through its DAG
// scheduler, preconditions, actuators and state store, with the plan's
// per-host and global concurrency limits honoured, and how close a plan of
// timed migrations comes to the planner's ideal makespan under those limits.
//
//	go run ./bench/applier                 # 1000 sim_migrate actions over 100 hosts, per-host 2, global 16
//
// Four runs on fresh simulators, each the same plan:
//   - scheduler: the actuator does nothing at all (no simulator call): the
//     cost of the applier alone (DAG, limits, state transitions in memory);
//   - overhead: real sim_migrate actions whose migrations take no time, the
//     store in memory: applier plus simulator (each precondition reads a
//     fresh snapshot of the simulated cluster);
//   - journal: the same with the state store journaled to a file (one
//     append per transition);
//   - timed: migrations take the simulator's time (setup + memory /
//     bandwidth) divided by -speedup, so the limits, not the applier, bound
//     the run: achieved makespan against the planner's estimate.
//
// It prints the limits and the maximum in flight observed (globally and on
// any one host), measured inside the actuator.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/simmigrate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/planner"
	"github.com/ballast-cloud/ballast/decision/sim"
)

type options struct {
	hosts, instances, actions int
	perHost, global           int
	speedup                   float64
	seed                      int64
}

func main() {
	var o options
	flag.IntVar(&o.hosts, "hosts", 100, "simulated hosts")
	flag.IntVar(&o.instances, "instances", 1200, "simulated instances (at least -actions: each moves once)")
	flag.IntVar(&o.actions, "actions", 1000, "sim_migrate actions in the plan")
	flag.IntVar(&o.perHost, "per-host", 2, "per-host concurrency limit")
	flag.IntVar(&o.global, "global", 16, "global concurrency limit")
	flag.Float64Var(&o.speedup, "speedup", 200, "timed run: migration time divided by this")
	flag.Int64Var(&o.seed, "seed", 1, "simulator seed")
	flag.Parse()
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "applier bench:", err)
		os.Exit(1)
	}
}

// observer is the real sim_migrate actuator, measuring what runs at once.
type observer struct {
	actuators.Actuator
	mu        sync.Mutex
	inFlight  int
	perHost   map[string]int
	maxGlobal int
	maxHost   int
}

func (o *observer) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	hosts := a.Hosts()
	o.mu.Lock()
	o.inFlight++
	o.maxGlobal = max(o.maxGlobal, o.inFlight)
	for _, h := range hosts {
		o.perHost[h]++
		o.maxHost = max(o.maxHost, o.perHost[h])
	}
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.inFlight--
		for _, h := range hosts {
			o.perHost[h]--
		}
		o.mu.Unlock()
	}()
	return o.Actuator.Execute(ctx, a, progress)
}

// instant is the scheduler run's actuator: it does nothing, so the run
// measures the applier alone. It is never registered outside this
// benchmark.
type instant struct{}

func (instant) Precondition(context.Context, action.Action) error           { return nil }
func (instant) Execute(context.Context, action.Action, func(float64)) error { return nil }

type result struct {
	mode               string
	elapsed            time.Duration
	succeeded, other   int
	maxGlobal, maxHost int
	estimate           time.Duration
}

func run(w io.Writer, o options) error {
	if o.instances < o.actions {
		return fmt.Errorf("-instances %d must be at least -actions %d", o.instances, o.actions)
	}
	fmt.Fprintf(w, "applier throughput on the simulator: %d sim_migrate actions, %d hosts, %d instances; limits per-host %d, global %d; GOMAXPROCS %d\n",
		o.actions, o.hosts, o.instances, o.perHost, o.global, runtime.GOMAXPROCS(0))
	var results []result
	for _, mode := range []string{"scheduler", "overhead", "journal", "timed"} {
		r, err := runMode(mode, o)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		results = append(results, r)
	}
	fmt.Fprintf(w, "%-10s %8s %10s %12s %10s %14s %16s %10s\n", "run", "actions", "elapsed", "actions/s", "succeeded", "max in flight", "max on one host", "vs ideal")
	for _, r := range results {
		ideal := "-"
		if r.estimate > 0 {
			ideal = fmt.Sprintf("%.2fx", r.elapsed.Seconds()/r.estimate.Seconds())
		}
		fmt.Fprintf(w, "%-10s %8d %10s %12.0f %10d %14s %16s %10s\n", r.mode, r.succeeded+r.other, r.elapsed.Round(time.Millisecond),
			float64(r.succeeded+r.other)/r.elapsed.Seconds(), r.succeeded,
			fmt.Sprintf("%d (≤ %d)", r.maxGlobal, o.global), fmt.Sprintf("%d (≤ %d)", r.maxHost, o.perHost), ideal)
		if r.maxGlobal > o.global || r.maxHost > o.perHost {
			return fmt.Errorf("%s: a concurrency limit was exceeded", r.mode)
		}
		if r.other > 0 {
			return fmt.Errorf("%s: %d actions did not succeed", r.mode, r.other)
		}
	}
	for _, r := range results {
		if r.estimate > 0 {
			fmt.Fprintf(w, "timed: planner's estimated makespan under the limits %s, achieved %s (migration times / %g)\n",
				r.estimate.Round(time.Millisecond), r.elapsed.Round(time.Millisecond), o.speedup)
		}
	}
	return nil
}

func runMode(mode string, o options) (result, error) {
	cfg := sim.Config{Hosts: o.hosts, Instances: o.instances, Seed: o.seed}
	if mode == "timed" {
		cfg.MigrationSpeedup = o.speedup
	} else {
		cfg.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	}
	s, err := sim.New(cfg, nil, nil)
	if err != nil {
		return result{}, err
	}
	acts, err := migrations(s, o.actions)
	if err != nil {
		return result{}, err
	}
	built, err := planner.Build(acts, planner.Options{PerHost: o.perHost, Global: o.global})
	if err != nil {
		return result{}, err
	}
	p := applier.Plan{ID: "bench-" + mode, Limits: built.Limits}
	for _, a := range built.Actions {
		p.Actions = append(p.Actions, applier.Action{Action: a})
	}

	store := memstate.New()
	if mode == "journal" {
		dir, err := os.MkdirTemp("", "applier-bench")
		if err != nil {
			return result{}, err
		}
		defer os.RemoveAll(dir)
		if store, err = memstate.Open(filepath.Join(dir, "journal")); err != nil {
			return result{}, err
		}
		defer store.Close()
	}
	if err := store.Add(p); err != nil {
		return result{}, err
	}
	sm, err := simmigrate.New(simmigrate.Config{}, simmigrate.Deps{Cluster: s}, nil)
	if err != nil {
		return result{}, err
	}
	var act actuators.Actuator = sm
	if mode == "scheduler" {
		act = instant{}
	}
	obs := &observer{Actuator: act, perHost: map[string]int{}}
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: actuators.Registry{action.SimMigrate: obs}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		return result{}, err
	}
	defer ap.Stop()

	start := time.Now()
	ex, err := ap.Start(context.Background(), p)
	if err != nil {
		return result{}, err
	}
	res, err := ex.Wait(context.Background())
	if err != nil {
		return result{}, err
	}
	r := result{mode: mode, elapsed: time.Since(start), succeeded: res.Actions[actuators.StateSucceeded],
		maxGlobal: obs.maxGlobal, maxHost: obs.maxHost}
	r.other = len(p.Actions) - r.succeeded
	if mode == "timed" {
		r.estimate = time.Duration(built.EstimatedSeconds * float64(time.Second))
	}
	return r, nil
}

// migrations picks n distinct instances and, for each, a destination with
// room for it even if every migration onto it lands before any leaves, so
// the simulator accepts every one; durations are the simulator's.
func migrations(s *sim.Sim, n int) ([]action.Action, error) {
	c := s.Snapshot()
	type room struct{ vcpu, mem, disk float64 }
	free := make([]room, len(c.Hosts))
	idx := map[string]int{}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		idx[h.Name] = i
		lim := h.Allocatable()
		free[i] = room{lim.VCPUs, lim.MemoryMB, lim.DiskGB}
	}
	for _, in := range c.Instances {
		f := &free[idx[in.Host]]
		f.vcpu -= float64(in.Flavor.VCPUs)
		f.mem -= float64(in.Flavor.MemoryMB)
		f.disk -= float64(in.Flavor.DiskGB)
	}
	var out []action.Action
	next := 0
	for _, in := range c.Instances {
		if len(out) == n {
			break
		}
		fits := func(f room) bool {
			return f.vcpu >= float64(in.Flavor.VCPUs) && f.mem >= float64(in.Flavor.MemoryMB) &&
				(c.Hosts[0].Capacity.DiskGB == 0 || f.disk >= float64(in.Flavor.DiskGB))
		}
		for k := 0; k < len(c.Hosts); k++ {
			d := (next + k) % len(c.Hosts)
			if c.Hosts[d].Name == in.Host || !fits(free[d]) {
				continue
			}
			free[d].vcpu -= float64(in.Flavor.VCPUs)
			free[d].mem -= float64(in.Flavor.MemoryMB)
			free[d].disk -= float64(in.Flavor.DiskGB)
			next = d + 1
			a := action.NewMigrate(action.MigrateParams{Live: in.State == model.InstanceActive, Source: in.Host,
				Destination: c.Hosts[d].Name, InstanceID: in.UUID}, true)
			t, err := s.MigrationTime(in.UUID)
			if err != nil {
				return nil, err
			}
			a.EstimatedDurationSeconds = t.Seconds()
			out = append(out, a)
			break
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d of %d migrations fit the simulated cluster", len(out), n)
	}
	return out, nil
}
