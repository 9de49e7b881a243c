package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/roadef"
)

// planFlags are the flags of `ballast plan`, whose first argument chooses
// what it does: plan a cluster model (default), solve a ROADEF instance, or
// generate a synthetic cluster model.
type planFlags struct {
	mode      string
	model     string
	goal      string
	strategy  string
	params    []string
	scope     string
	timeLimit time.Duration
	seed      int64
	output    string
	// roadef
	assignment string
	out        string
	workers    int
	iterations int64
	// generate
	hosts, vms, zones, cephHosts int
	groups                       float64
}

func planCommand(app *kingpin.Application) command {
	c := app.Command("plan", "Plan offline: compute an action plan for a cluster model, solve a ROADEF/EURO 2012 instance, or generate a synthetic cluster model.\n\n"+
		"  ballast plan --model cluster.json --goal G [--strategy S] [--param k=v]... [--time-limit D] [--seed N] [--output json|text]\n"+
		"  ballast plan roadef --model model_x.txt --assignment assignment_x.txt [--time-limit 300s] [--seed N] --out solution.txt\n"+
		"  ballast plan generate --hosts N --vms M [--seed S] [--out cluster.json]")
	f := bindPlanFlags(c)
	return command{clause: c, run: func(ctx context.Context, logger *slog.Logger) error {
		return f.run(ctx, logger, os.Stdout, os.Stderr)
	}}
}

// bindPlanFlags defines the arguments and flags of `ballast plan` on c.
func bindPlanFlags(c *kingpin.CmdClause) *planFlags {
	f := &planFlags{}
	c.Arg("mode", "What to do: run (plan a model, the default), roadef or generate.").Default("run").EnumVar(&f.mode, "run", "roadef", "generate")
	c.Flag("model", "Cluster model JSON (run) or ROADEF instance file (roadef).").StringVar(&f.model)
	c.Flag("goal", "Goal to plan for (run); list them with --goal=help.").StringVar(&f.goal)
	c.Flag("strategy", "Strategy (run; default: the goal's first).").StringVar(&f.strategy)
	c.Flag("param", "Strategy parameter k=v (run; repeatable; v is typed by the strategy's schema, JSON for arrays and objects).").StringsVar(&f.params)
	c.Flag("scope", "Watcher audit scope JSON file (run).").StringVar(&f.scope)
	c.Flag("time-limit", "Search time budget (run default 10s; roadef default 300s).").DurationVar(&f.timeLimit)
	c.Flag("seed", "Random seed: the same seed gives the same plan.").Default("0").Int64Var(&f.seed)
	c.Flag("output", "run: json (plan on stdout, summary on stderr) or text.").Default("json").EnumVar(&f.output, "json", "text")
	c.Flag("assignment", "ROADEF original assignment file (roadef).").StringVar(&f.assignment)
	c.Flag("out", "Output file: the ROADEF solution (roadef) or the model (generate; default stdout).").StringVar(&f.out)
	c.Flag("workers", "Parallel searches (roadef; default: CPUs).").Default("0").IntVar(&f.workers)
	c.Flag("iterations", "Stop after this many moves tried (roadef; 0: the time limit only). Without --time-limit the result then depends only on --seed and --workers.").Default("0").Int64Var(&f.iterations)
	c.Flag("hosts", "Hosts (generate).").Default("100").IntVar(&f.hosts)
	c.Flag("vms", "Instances (generate; default 10 per host).").Default("0").IntVar(&f.vms)
	c.Flag("zones", "Availability zones (generate).").Default("1").IntVar(&f.zones)
	c.Flag("ceph-hosts", "Ceph storage hosts, 4 OSDs each (generate; 0: no Ceph).").Default("0").IntVar(&f.cephHosts)
	c.Flag("anti-affinity", "Fraction of instances in anti-affinity groups (generate).").Default("0").Float64Var(&f.groups)
	return f
}

// run does what the mode asks, writing results to stdout and progress and
// summaries to stderr.
func (f *planFlags) run(ctx context.Context, logger *slog.Logger, stdout, stderr io.Writer) error {
	switch f.mode {
	case "roadef":
		return runRoadef(ctx, f, stdout, stderr)
	case "generate":
		return runGenerate(f, stdout)
	}
	return runPlan(ctx, f, logger, stdout, stderr)
}

// onlyFor rejects flags set for another mode, naming them.
func (f *planFlags) onlyFor(mode string, set map[string]bool) error {
	allowed := map[string][]string{
		"run":      {"model", "goal", "strategy", "param", "scope", "time-limit", "seed", "output"},
		"roadef":   {"model", "assignment", "out", "time-limit", "seed", "workers", "iterations"},
		"generate": {"hosts", "vms", "zones", "ceph-hosts", "anti-affinity", "seed", "out"},
	}[mode]
	var bad []string
	for name, ok := range set {
		if ok && !contains(allowed, name) {
			bad = append(bad, "--"+name)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return usageError{fmt.Errorf("%s does not apply to 'ballast plan %s' (its flags: --%s)", strings.Join(bad, ", "), mode, strings.Join(allowed, ", --"))}
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (f *planFlags) setFlags() map[string]bool {
	return map[string]bool{
		"model": f.model != "", "goal": f.goal != "", "strategy": f.strategy != "", "param": len(f.params) > 0,
		"scope": f.scope != "", "time-limit": f.timeLimit != 0, "output": f.output != "json",
		"assignment": f.assignment != "", "out": f.out != "", "workers": f.workers != 0, "iterations": f.iterations != 0,
		"hosts": f.hosts != 100, "vms": f.vms != 0, "zones": f.zones != 1, "ceph-hosts": f.cephHosts != 0, "anti-affinity": f.groups != 0,
	}
}

func runPlan(ctx context.Context, f *planFlags, logger *slog.Logger, stdout, stderr io.Writer) error {
	if err := f.onlyFor("run", f.setFlags()); err != nil {
		return err
	}
	engine, err := decision.New(decision.Config{}, logger)
	if err != nil {
		return err
	}
	if f.goal == "" || f.goal == "help" {
		var b strings.Builder
		for _, g := range engine.Goals() {
			var names []string
			for _, s := range engine.Strategies() {
				if s.Goal == g.Name {
					names = append(names, s.Name)
				}
			}
			fmt.Fprintf(&b, "\n  %-22s strategies: %s", g.Name, strings.Join(names, ", "))
		}
		if f.goal == "help" {
			fmt.Fprintf(stdout, "goals:%s\n", b.String())
			return nil
		}
		return usageError{fmt.Errorf("--goal is required; goals:%s", b.String())}
	}
	if f.model == "" {
		return usageError{errors.New("--model is required: a cluster model JSON file (make one with 'ballast plan generate')")}
	}
	m, err := model.ReadFile(f.model)
	if err != nil {
		return usageError{fmt.Errorf("--model: %w", err)}
	}
	stratName, _, err := engine.ParametersFor(f.goal, f.strategy, nil)
	if err != nil {
		return usageError{err}
	}
	params, err := parseParams(engine, stratName, f.params)
	if err != nil {
		return usageError{err}
	}
	req := decision.Request{Goal: f.goal, Strategy: stratName, Params: params, Model: m, TimeLimit: f.timeLimit, Seed: f.seed}
	if f.scope != "" {
		raw, err := os.ReadFile(f.scope)
		if err != nil {
			return usageError{fmt.Errorf("--scope: %w", err)}
		}
		if req.Scope, err = decision.ParseWatcherScope(raw); err != nil {
			return usageError{fmt.Errorf("--scope: %w", err)}
		}
	}
	plan, err := engine.Plan(ctx, req)
	var inv *decision.InvalidRequestError
	if errors.As(err, &inv) {
		return usageError{inv}
	}
	if err != nil {
		return err
	}
	if f.output == "text" {
		writeSummary(stdout, plan)
		writeActions(stdout, plan)
		return nil
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(plan); err != nil {
		return err
	}
	writeSummary(stderr, plan)
	return nil
}

// parseParams turns --param k=v flags into typed parameters.
func parseParams(engine *decision.Engine, strategyName string, flags []string) (map[string]any, error) {
	out := map[string]any{}
	spec, ok := engine.ParameterSchema(strategyName)
	if !ok {
		return nil, fmt.Errorf("strategy %q is unknown", strategyName)
	}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		val, err := spec.Coerce(k, v)
		if err != nil {
			return nil, fmt.Errorf("--param %s", err)
		}
		out[k] = val
	}
	return out, nil
}

func writeSummary(w io.Writer, p *decision.Plan) {
	fmt.Fprintf(w, "plan %s: goal %s, strategy %s, %d hosts, %d instances\n", p.ID, p.Goal, p.Strategy, p.Hosts, p.Instances)
	counts := map[string]int{}
	for _, a := range p.Actions {
		counts[string(a.Type)]++
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "  actions: %d (%s); DAG depth %d; estimated %s (serial %s) with %d per host, %d at once\n",
		len(p.Actions), strings.Join(kinds, ", "), p.Depth, dur(p.EstimatedDurationSeconds), dur(p.SerialDurationSeconds),
		p.Concurrency.PerHost, p.Concurrency.Global)
	for _, i := range p.EfficacyIndicators {
		fmt.Fprintf(w, "  %-34s %g\n", i.Name, i.Value)
	}
	for _, i := range p.GlobalEfficacy {
		fmt.Fprintf(w, "  %-34s %.2f %%\n", i.Name, i.Value)
	}
	if b := p.Bounds; b != nil {
		if h := b.ActiveHosts; h != nil {
			fmt.Fprintf(w, "  bound: active hosts %d vs L2 %d (L1 %d), ratio %.3f\n", h.After, h.L2, h.L1, h.Ratio)
		}
		var names []string
		for n := range b.Balance {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			x := b.Balance[n]
			fmt.Fprintf(w, "  bound: %s std-dev %.4f -> %.4f (floor %.4f, mean %.3f)\n", n, x.Before, x.After, x.StdDevFloor, x.Mean)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, "  planned in %.3fs\n", p.PlanningSeconds)
}

func writeActions(w io.Writer, p *decision.Plan) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tstart\tduration\tparents\taction")
	pos := map[string]int{}
	for i, a := range p.Actions {
		pos[a.ID] = i + 1
		var parents []string
		for _, id := range a.Parents {
			parents = append(parents, fmt.Sprint(pos[id]))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, dur(a.EstimatedStartSeconds), dur(a.EstimatedDurationSeconds), strings.Join(parents, ","), a.Description)
	}
	tw.Flush()
}

func dur(s float64) string {
	return (time.Duration(s*1000) * time.Millisecond).Round(time.Second).String()
}

func runRoadef(ctx context.Context, f *planFlags, stdout, stderr io.Writer) error {
	if err := f.onlyFor("roadef", f.setFlags()); err != nil {
		return err
	}
	if f.model == "" || f.assignment == "" || f.out == "" {
		return usageError{errors.New("--model (model_x.txt), --assignment (assignment_x.txt) and --out (solution file) are required")}
	}
	in, err := readRoadef(f.model, roadef.Parse)
	if err != nil {
		return usageError{fmt.Errorf("--model: %w", err)}
	}
	orig, err := readRoadef(f.assignment, func(r io.Reader) ([]int, error) { return roadef.ParseAssignment(r, in) })
	if err != nil {
		return usageError{fmt.Errorf("--assignment: %w", err)}
	}
	ev0, err := roadef.Evaluate(in, orig, orig)
	if err != nil {
		return usageError{fmt.Errorf("--assignment: %w", err)}
	}
	if !ev0.Feasible {
		return usageError{fmt.Errorf("--assignment: the original assignment is infeasible: %v", ev0.Violations)}
	}
	workers := f.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// A move count alone bounds the search without a clock, so the result
	// depends on the seed only; a time limit (given, or the challenge's
	// 300 s by default) also drives the cooling schedule.
	limit := f.timeLimit
	if limit == 0 && f.iterations == 0 {
		limit = 300 * time.Second
	}
	budget := fmt.Sprintf("%d moves", f.iterations)
	switch {
	case limit > 0 && f.iterations > 0:
		budget = fmt.Sprintf("%s or %d moves", limit, f.iterations)
	case limit > 0:
		budget = limit.String()
	}
	fmt.Fprintf(stderr, "roadef: %d machines, %d processes, %d resources; original cost %d; solving for %s on %d workers\n",
		len(in.Machines), len(in.Processes), len(in.Resources), ev0.Total, budget, workers)
	sctx, cancel := context.WithCancel(ctx)
	if limit > 0 {
		sctx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	last := time.Now()
	res, err := roadef.Solve(sctx, in, orig, roadef.SolveOptions{Seed: f.seed, Workers: workers, MaxIterations: f.iterations,
		Progress: func(p optimize.Progress) {
			if time.Since(last) >= 10*time.Second || p.Epoch == p.Epochs {
				last = time.Now()
				fmt.Fprintf(stderr, "roadef: %5.1fs  best cost %d  (%d moves tried)\n", p.Elapsed.Seconds(), p.Best.Exact, p.Iterations)
			}
		}})
	if err != nil {
		return err
	}
	out, err := os.Create(f.out)
	if err != nil {
		return usageError{fmt.Errorf("--out: %w", err)}
	}
	if err := roadef.WriteAssignment(out, res.Solution); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", f.out, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.out, err)
	}
	ev := res.Evaluation
	fmt.Fprintf(stdout, "cost %d (original %d, %.2f%% of it); load %v, balance %v, process move %d, service move %d, machine move %d; feasible %v; written to %s\n",
		ev.Total, ev0.Total, 100*float64(ev.Total)/float64(max(ev0.Total, 1)), ev.LoadCost, ev.BalanceCost,
		ev.ProcessMoveCost, ev.ServiceMoveCost, ev.MachineMoveCost, ev.Feasible, f.out)
	return nil
}

func readRoadef[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	file, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer file.Close()
	return parse(file)
}

func runGenerate(f *planFlags, stdout io.Writer) error {
	if err := f.onlyFor("generate", f.setFlags()); err != nil {
		return err
	}
	if f.hosts <= 0 {
		return usageError{fmt.Errorf("--hosts: %d must be positive", f.hosts)}
	}
	if f.vms < 0 || f.zones <= 0 || f.cephHosts < 0 || f.groups < 0 || f.groups > 1 {
		return usageError{errors.New("--vms and --ceph-hosts must not be negative, --zones positive, --anti-affinity within [0, 1]")}
	}
	c, err := synth.Generate(synth.Config{Hosts: f.hosts, Instances: f.vms, Seed: f.seed, Zones: f.zones,
		GroupFraction: f.groups, Ceph: synth.CephConfig{OSDHosts: f.cephHosts}})
	if err != nil {
		return usageError{err}
	}
	w := stdout
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return usageError{fmt.Errorf("--out: %w", err)}
		}
		defer file.Close()
		w = file
	}
	return model.Write(w, c, true)
}
