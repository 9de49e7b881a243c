package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
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
	// set records the flags given on the command line.
	set map[string]*bool
}

func planCommand(app *kingpin.Application) command {
	c := app.Command("plan", "Plan offline: compute an action plan for a cluster model, solve a ROADEF/EURO 2012 instance, or generate a synthetic cluster model.\n\n"+
		"  ballast plan --model cluster.json --goal G [--strategy S] [--param k=v]... [--time-limit D] [--seed N] [--output json|text]\n"+
		"  ballast plan --goal help [--strategy S]      (goals, strategies and their parameters)\n"+
		"  ballast plan roadef --model model_x.txt --assignment assignment_x.txt [--time-limit 300s] [--seed N] --out solution.txt\n"+
		"  ballast plan generate --hosts N --vms M [--seed S] [--out cluster.json]")
	f := bindPlanFlags(c)
	return command{clause: c, run: func(ctx context.Context, logger *slog.Logger) error {
		return f.run(ctx, logger, os.Stdout, os.Stderr)
	}}
}

// bindPlanFlags defines the arguments and flags of `ballast plan` on c.
// Numbers and durations are parsed by values that name their flag in errors,
// as the server's flags do.
func bindPlanFlags(c *kingpin.CmdClause) *planFlags {
	f := &planFlags{set: map[string]*bool{}}
	flag := func(name, help string) *kingpin.FlagClause {
		b := new(bool)
		f.set[name] = b
		return c.Flag(name, help).IsSetByUser(b)
	}
	c.Arg("mode", "What to do: run (plan a model, the default), roadef or generate.").Default("run").EnumVar(&f.mode, "run", "roadef", "generate")
	flag("model", "Cluster model JSON (run) or ROADEF instance file (roadef).").StringVar(&f.model)
	flag("goal", "Goal to plan for (run); --goal=help lists the goals, their strategies and each strategy's parameters (with --strategy, that strategy's only).").StringVar(&f.goal)
	flag("strategy", "Strategy (run; default: the goal's first).").StringVar(&f.strategy)
	flag("param", "Strategy parameter k=v (run; repeatable; v is typed by the strategy's schema, JSON for arrays and objects).").StringsVar(&f.params)
	flag("scope", "Watcher audit scope JSON file (run).").StringVar(&f.scope)
	flag("time-limit", "Search time budget (run default 10s; roadef default 300s).").SetValue(durationFlagValue("time-limit", &f.timeLimit))
	flag("seed", "Random seed: the same seed gives the same plan.").Default("0").SetValue(wholeFlag("seed", &f.seed))
	flag("output", "run: json (plan on stdout, summary on stderr) or text.").Default("json").EnumVar(&f.output, "json", "text")
	flag("assignment", "ROADEF original assignment file (roadef).").StringVar(&f.assignment)
	flag("out", "Output file: the ROADEF solution (roadef) or the model (generate; default stdout). Written in full or not at all.").StringVar(&f.out)
	flag("workers", "Parallel searches (roadef; 0: one per CPU).").Default("0").SetValue(wholeFlag("workers", &f.workers))
	flag("iterations", "Stop after this many moves tried (roadef; 0: the time limit only). Without --time-limit the result then depends only on --seed and --workers.").Default("0").SetValue(wholeFlag("iterations", &f.iterations))
	flag("hosts", "Hosts (generate).").Default("100").SetValue(wholeFlag("hosts", &f.hosts))
	flag("vms", "Instances (generate; 0: 10 per host).").Default("0").SetValue(wholeFlag("vms", &f.vms))
	flag("zones", "Availability zones (generate).").Default("1").SetValue(wholeFlag("zones", &f.zones))
	flag("ceph-hosts", "Ceph storage hosts, 4 OSDs each (generate; 0: no Ceph).").Default("0").SetValue(wholeFlag("ceph-hosts", &f.cephHosts))
	flag("anti-affinity", "Fraction of instances in anti-affinity groups (generate).").Default("0").SetValue(numberFlag("anti-affinity", &f.groups))
	return f
}

// flagValue is a flag's value parsed by parse; its errors name the flag.
type flagValue[T any] struct {
	name  string
	v     *T
	parse func(string) (T, error)
}

func (v *flagValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", v.name, err)
	}
	*v.v = x
	return nil
}

func (v *flagValue[T]) String() string { return fmt.Sprint(*v.v) }

// wholeFlag parses a whole number (kingpin's own int flags take 2.5 as 2).
func wholeFlag[T int | int64](name string, v *T) kingpin.Value {
	return &flagValue[T]{name: name, v: v, parse: func(s string) (T, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if errors.Is(err, strconv.ErrRange) || (err == nil && int64(T(n)) != n) {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", s)
		}
		return T(n), nil
	}}
}

func numberFlag(name string, v *float64) kingpin.Value {
	return &flagValue[float64]{name: name, v: v, parse: func(s string) (float64, error) {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("%q is not a finite number", s)
		}
		return x, nil
	}}
}

func durationFlagValue(name string, v *time.Duration) kingpin.Value {
	return &flagValue[time.Duration]{name: name, v: v, parse: func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 30s, 5m or 1h30m", s)
		}
		return d, nil
	}}
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
	out := make(map[string]bool, len(f.set))
	for name, given := range f.set {
		out[name] = *given
	}
	return out
}

// notNegative refuses a negative value of a flag, naming it.
func notNegative[T int | int64 | time.Duration](flag string, v T) error {
	if v < 0 {
		return usageError{fmt.Errorf("--%s: %v must not be negative", flag, v)}
	}
	return nil
}

func runPlan(ctx context.Context, f *planFlags, logger *slog.Logger, stdout, stderr io.Writer) error {
	if err := f.onlyFor("run", f.setFlags()); err != nil {
		return err
	}
	if err := notNegative("time-limit", f.timeLimit); err != nil {
		return err
	}
	engine, err := decision.New(decision.Config{}, logger)
	if err != nil {
		return err
	}
	if f.goal == "help" {
		return writeGoalHelp(stdout, engine, f.strategy)
	}
	if f.goal == "" {
		var b strings.Builder
		for _, g := range engine.Goals() {
			fmt.Fprintf(&b, "\n  %-22s strategies: %s", g.Name, strings.Join(strategiesOf(engine, g.Name), ", "))
		}
		return usageError{fmt.Errorf("--goal is required (--goal=help lists the parameters too); goals:%s", b.String())}
	}
	if f.model == "" {
		return usageError{errors.New("--model is required: a cluster model JSON file (make one with 'ballast plan generate')")}
	}
	// Goal, strategy and parameters are checked before the model is read,
	// which takes seconds for a large one.
	stratName, err := chooseStrategy(engine, f.goal, f.strategy)
	if err != nil {
		return usageError{err}
	}
	params, err := parseParams(engine, stratName, f.params)
	if err != nil {
		return usageError{err}
	}
	if _, _, err := engine.ParametersFor(f.goal, stratName, params); err != nil {
		return usageError{fmt.Errorf("--param: %w", err)}
	}
	m, err := model.ReadFile(f.model)
	if err != nil {
		return usageError{fmt.Errorf("--model: %w", err)}
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
		// The strategy found a parameter wrong for the model, such as a
		// maintenance node the model does not have.
		if inv.Param != "" {
			return usageError{fmt.Errorf("--param %s: %w", inv.Param, inv.Err)}
		}
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

// strategiesOf lists the strategies of a goal, its default first.
func strategiesOf(engine *decision.Engine, goalName string) []string {
	var names []string
	for _, s := range engine.Strategies() {
		if s.Goal == goalName {
			names = append(names, s.Name)
		}
	}
	return names
}

// chooseStrategy names the strategy to run: the given one if it serves the
// goal, else the goal's default. The strategy is chosen before its
// parameters are checked, for --param values are typed by its schema.
func chooseStrategy(engine *decision.Engine, goalName, name string) (string, error) {
	for _, s := range strategiesOf(engine, goalName) {
		if name == "" || s == name {
			return s, nil
		}
	}
	// Not a strategy of the goal: the engine says which goals or strategies
	// are accepted.
	if _, _, err := engine.ParametersFor(goalName, name, nil); err != nil {
		return "", err
	}
	return "", fmt.Errorf("goal %q has no strategy %q", goalName, name)
}

// writeGoalHelp lists the goals, their strategies (the default first) and
// each strategy's parameters with type, default and description; only one
// strategy's when strategy is set.
func writeGoalHelp(w io.Writer, engine *decision.Engine, strategy string) error {
	if strategy != "" {
		if _, ok := engine.ParameterSchema(strategy); !ok {
			var all []string
			for _, s := range engine.Strategies() {
				all = append(all, s.Name)
			}
			return usageError{fmt.Errorf("--strategy: %q is not one of %s", strategy, strings.Join(all, ", "))}
		}
	}
	var b strings.Builder
	b.WriteString("goals, their strategies (the first is the default) and parameters (--param name=value):\n")
	for _, g := range engine.Goals() {
		names := strategiesOf(engine, g.Name)
		if strategy != "" {
			if !contains(names, strategy) {
				continue
			}
			names = []string{strategy}
		}
		fmt.Fprintf(&b, "\n%s\n", g.Name)
		for _, name := range names {
			spec, _ := engine.ParameterSchema(name)
			fmt.Fprintf(&b, "  %s\n", name)
			if len(spec.Properties) == 0 {
				b.WriteString("    (no parameters)\n")
			}
			for _, p := range slices.Sorted(maps.Keys(spec.Properties)) {
				fmt.Fprintf(&b, "    %s (%s, %s)\n", p, spec.Properties[p].Type, paramDefault(spec, p))
				if help := paramHelp(spec.Properties[p]); help != "" {
					fmt.Fprintf(&b, "        %s\n", help)
				}
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func paramDefault(spec params.Schema, name string) string {
	if contains(spec.Required, name) {
		return "required"
	}
	d := spec.Properties[name].Default
	if d == nil {
		return "optional"
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Sprint(d)
	}
	return "default " + string(b)
}

func paramHelp(p *params.Property) string {
	help := p.Description
	switch {
	case p.Minimum != nil && p.Maximum != nil:
		help += fmt.Sprintf(" [%g, %g]", *p.Minimum, *p.Maximum)
	case p.Minimum != nil:
		help += fmt.Sprintf(" (at least %g)", *p.Minimum)
	case p.Maximum != nil:
		help += fmt.Sprintf(" (at most %g)", *p.Maximum)
	}
	if len(p.Enum) > 0 {
		var vals []string
		for _, e := range p.Enum {
			vals = append(vals, fmt.Sprint(e))
		}
		help += " (one of " + strings.Join(vals, ", ") + ")"
	}
	return strings.TrimSpace(help)
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
			return nil, fmt.Errorf("--param: %w", err)
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
	for _, err := range []error{notNegative("time-limit", f.timeLimit), notNegative("workers", f.workers), notNegative("iterations", f.iterations)} {
		if err != nil {
			return err
		}
	}
	// The solution file is created before solving, which takes minutes.
	out, err := createOutput("out", f.out)
	if err != nil {
		return err
	}
	defer out.discard()
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
	if err := roadef.WriteAssignment(out, res.Solution); err != nil {
		return fmt.Errorf("write %s: %w", f.out, err)
	}
	if err := out.commit(); err != nil {
		return err
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
	switch {
	case f.hosts <= 0:
		return usageError{fmt.Errorf("--hosts: %d must be positive", f.hosts)}
	case f.vms < 0:
		return notNegative("vms", f.vms)
	case f.zones <= 0:
		return usageError{fmt.Errorf("--zones: %d must be positive", f.zones)}
	case f.cephHosts < 0:
		return notNegative("ceph-hosts", f.cephHosts)
	case f.groups < 0 || f.groups > 1:
		return usageError{fmt.Errorf("--anti-affinity: %g must be within [0, 1]", f.groups)}
	}
	c, err := synth.Generate(synth.Config{Hosts: f.hosts, Instances: f.vms, Seed: f.seed, Zones: f.zones,
		GroupFraction: f.groups, Ceph: synth.CephConfig{OSDHosts: f.cephHosts}})
	if err != nil {
		return usageError{err}
	}
	if f.out == "" {
		return model.Write(stdout, c, true)
	}
	out, err := createOutput("out", f.out)
	if err != nil {
		return err
	}
	defer out.discard()
	if err := model.Write(out, c, true); err != nil {
		return err
	}
	return out.commit()
}

// outputFile is an output written in full or not at all: a temporary file
// beside its path, renamed onto the path by commit. Creating it first makes
// an unwritable path fail before any work is done.
type outputFile struct {
	*os.File
	path string
	done bool
}

// createOutput creates the temporary file for path, given by --flag.
func createOutput(flag, path string) (*outputFile, error) {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, usageError{fmt.Errorf("--%s %s: not a regular file", flag, path)}
		}
		// An existing file is replaced: it must be writable, as os.Create
		// would need.
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s: %w", flag, err)}
		}
		w.Close()
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, usageError{fmt.Errorf("--%s %s: cannot create a file in %s: %w", flag, path, dir, err)}
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("--%s %s: %w", flag, path, err)
	}
	return &outputFile{File: tmp, path: path}, nil
}

// commit closes the file and moves it onto its path.
func (o *outputFile) commit() error {
	o.done = true
	if err := o.Close(); err != nil {
		os.Remove(o.Name())
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	if err := os.Rename(o.Name(), o.path); err != nil {
		os.Remove(o.Name())
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}

// discard removes the file unless it was committed.
func (o *outputFile) discard() {
	if !o.done {
		o.Close()
		os.Remove(o.Name())
	}
}
