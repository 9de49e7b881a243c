// Command decision benchmarks the decision engine against the baselines in
// docs/benchmarks-decision.md: consolidation plan time and quality at
// 100×1k, 500×5k, 1000×10k and 10k×200k hosts×VMs (OpenStack Watcher
// master's vm_workload_consolidation measured on a comparable synthetic
// cluster), workload stabilization at 1000×10k (Watcher: 112 s), and the
// ROADEF/EURO 2012 A and B sets (competition score and gap to the best
// verified result).
//
//	go run ./bench/decision -suite all -roadef-time 20s
//
// Every figure is printed beside its baseline with the ratio. Timings are
// wall-clock on the machine it runs on; plans are deterministic per seed.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
	"github.com/ballast-cloud/ballast/decision/roadef"
)

// watcherConsolidation is Watcher master's vm_workload_consolidation on its
// synthetic cluster (research/watcher.md §6b): wall time of execute(),
// hosts with instances before and after, migrations.
var watcherConsolidation = map[string]struct {
	seconds         float64
	before, after   int
	migrations      int
	migrationsLower int // VMs on the least-populated hosts freed
}{
	"100x1000":   {0.45, 100, 41, 522, 475},
	"500x5000":   {3.2, 499, 192, 2716, 2464},
	"1000x10000": {30.3, 1000, 378, 5512, 4991},
}

type consolidationResult struct {
	Size              string  `json:"size"`
	Seconds           float64 `json:"seconds"`
	SearchSeconds     float64 `json:"search_seconds"`
	HostsBefore       int     `json:"hosts_before"`
	HostsAfter        int     `json:"hosts_after"`
	FreedPercent      float64 `json:"freed_percent"`
	Migrations        int     `json:"migrations"`
	MigrationsLower   int     `json:"migrations_lower_bound"`
	L2                int     `json:"l2"`
	BoundRatio        float64 `json:"active_over_l2"`
	Depth             int     `json:"dag_depth"`
	EstimatedDuration float64 `json:"estimated_duration_s"`
	Violations        int     `json:"violations"`
	Budget            int     `json:"max_migrations,omitempty"`
}

type stabilizationResult struct {
	Size       string  `json:"size"`
	Variant    string  `json:"variant"`
	Seconds    float64 `json:"seconds"`
	Migrations int     `json:"migrations"`
	SDBefore   float64 `json:"sd_before"`
	SDAfter    float64 `json:"sd_after"`
}

type roadefResult struct {
	Set, Instance string
	Cost          int64
	Original      int64
	BestVerified  int64
	Score         float64 // (cost − best)/original
	Gap           float64 // (cost − best)/best
	Seconds       float64
	Feasible      bool
}

func main() {
	suite := flag.String("suite", "all", "consolidation, stabilization, roadef or all")
	sizes := flag.String("sizes", "100x1000,500x5000,1000x10000,10000x200000", "consolidation sizes, hosts x VMs")
	roadefTime := flag.Duration("roadef-time", 20*time.Second, "time per ROADEF instance (the published figure uses 300s)")
	roadefSets := flag.String("roadef-sets", "A,B", "ROADEF sets to run")
	roadefDir := flag.String("roadef-dir", "decision/roadef/testdata", "directory with A/, B/ and best_known.csv")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "parallel searches per ROADEF instance")
	seed := flag.Int64("seed", 1, "seed of the plans and the ROADEF search")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	flag.Parse()

	out := os.Stdout
	fmt.Fprintf(out, "# Decision engine benchmarks (%s, %d CPUs, %s)\n\n", runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	results := map[string]any{}
	engine, err := decision.New(decision.Config{MaxTimeLimit: time.Hour}, nil)
	if err != nil {
		fail(err)
	}
	run := func(name string) bool { return *suite == "all" || *suite == name }
	if run("consolidation") {
		var rs, budgeted []consolidationResult
		for _, size := range strings.Split(*sizes, ",") {
			var h, v int
			if _, err := fmt.Sscanf(strings.TrimSpace(size), "%dx%d", &h, &v); err != nil {
				fail(fmt.Errorf("-sizes: %q is not HOSTSxVMS", size))
			}
			rs = append(rs, consolidation(engine, h, v, *seed, 0))
			if wb, ok := watcherConsolidation[strings.TrimSpace(size)]; ok {
				budgeted = append(budgeted, consolidation(engine, h, v, *seed, wb.migrations*7/10))
			}
		}
		printConsolidation(out, rs)
		printBudgeted(out, budgeted)
		results["consolidation"] = rs
		results["consolidation_budget"] = budgeted
	}
	if run("stabilization") {
		rs := stabilization(engine, 1000, 10000, *seed)
		printStabilization(out, rs)
		results["stabilization"] = rs
	}
	if run("roadef") {
		rs := runRoadef(out, *roadefDir, strings.Split(*roadefSets, ","), *roadefTime, *workers, *seed)
		results["roadef"] = rs
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/decision:", err)
	os.Exit(1)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3g×", a/b)
}

func consolidation(e *decision.Engine, hosts, vms int, seed int64, budget int) consolidationResult {
	c, err := synth.Generate(synth.Config{Hosts: hosts, Instances: vms, Seed: 42})
	if err != nil {
		fail(err)
	}
	r := consolidationResult{Size: fmt.Sprintf("%dx%d", hosts, vms), Budget: budget}
	// Small sizes run a few times; the median damps noise on a shared box.
	reps := 1
	if vms <= 10000 {
		reps = 5
	}
	var times []float64
	var p *decision.Plan
	for k := 0; k < reps; k++ {
		start := time.Now()
		p, err = e.Plan(context.Background(), decision.Request{Goal: "server_consolidation", Strategy: "vm_workload_consolidation",
			Model: c, Seed: seed, TimeLimit: 10 * time.Minute, Params: map[string]any{"max_migrations": budget}})
		if err != nil {
			fail(err)
		}
		times = append(times, time.Since(start).Seconds())
	}
	slices.Sort(times)
	r.Seconds = times[len(times)/2]
	r.SearchSeconds = p.Search.Seconds
	ix, _ := model.NewIndex(c)
	r.HostsBefore = ix.ActiveHosts()
	after, err := model.ApplyMoves(c, p.Moves)
	if err != nil {
		fail(err)
	}
	r.Violations = len(model.CheckPlacement(after))
	ixa, _ := model.NewIndex(after)
	r.HostsAfter = ixa.ActiveHosts()
	freed := r.HostsBefore - r.HostsAfter
	r.FreedPercent = 100 * float64(freed) / float64(r.HostsBefore)
	r.Migrations = len(p.Moves)
	counts := make([]int, 0, len(ix.HostInstances))
	for _, l := range ix.HostInstances {
		if len(l) > 0 {
			counts = append(counts, len(l))
		}
	}
	slices.Sort(counts)
	for _, n := range counts[:freed] {
		r.MigrationsLower += n
	}
	r.L2 = p.Bounds.ActiveHosts.L2
	r.BoundRatio = float64(r.HostsAfter) / float64(r.L2)
	r.Depth = p.Depth
	r.EstimatedDuration = p.EstimatedDurationSeconds
	fmt.Fprintf(os.Stderr, "consolidation %s: %.3fs, %d→%d hosts, %d migrations\n", r.Size, r.Seconds, r.HostsBefore, r.HostsAfter, r.Migrations)
	return r
}

func printConsolidation(w io.Writer, rs []consolidationResult) {
	fmt.Fprintln(w, "## Consolidation (vm_workload_consolidation)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| hosts×VMs | plan time | Watcher | ratio | hosts before→after | freed | Watcher freed | L2 bound | after/L2 | migrations | Watcher | ratio | migr./lower bound (Watcher) | DAG depth (Watcher) | est. duration | violations |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		wb, ok := watcherConsolidation[r.Size]
		wTime, wFreed, wMig, wLB, wDepth := "–", "–", "–", "–", "–"
		tRatio, mRatio := "–", "–"
		if ok {
			wTime = fmt.Sprintf("%.2f s", wb.seconds)
			tRatio = ratio(r.Seconds, wb.seconds)
			wFreed = fmt.Sprintf("%.1f %%", 100*float64(wb.before-wb.after)/float64(wb.before))
			wMig = fmt.Sprint(wb.migrations)
			mRatio = ratio(float64(r.Migrations), float64(wb.migrations))
			wLB = fmt.Sprintf("%.3f", float64(wb.migrations)/float64(wb.migrationsLower))
			wDepth = fmt.Sprint(map[string]int{"100x1000": 320, "500x5000": 1666, "1000x10000": 3378}[r.Size])
		}
		fmt.Fprintf(w, "| %s | %.3f s | %s | %s | %d→%d | %.1f %% | %s | %d | %.3f | %d | %s | %s | %.3f (%s) | %d (%s) | %s | %d |\n",
			r.Size, r.Seconds, wTime, tRatio, r.HostsBefore, r.HostsAfter, r.FreedPercent, wFreed, r.L2, r.BoundRatio,
			r.Migrations, wMig, mRatio, float64(r.Migrations)/float64(max(r.MigrationsLower, 1)), wLB, r.Depth, wDepth,
			(time.Duration(r.EstimatedDuration) * time.Second).String(), r.Violations)
	}
	fmt.Fprintln(w)
}

// printBudgeted compares hosts freed when the plan may use at most 70 % of
// Watcher's migrations, the target's terms.
func printBudgeted(w io.Writer, rs []consolidationResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "### Consolidation under a budget of 70 % of Watcher's migrations")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| hosts×VMs | max_migrations | migrations | hosts freed | Watcher freed (with 100 % of its migrations) | ratio | plan time |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rs {
		wb := watcherConsolidation[r.Size]
		wf := 100 * float64(wb.before-wb.after) / float64(wb.before)
		fmt.Fprintf(w, "| %s | %d | %d | %.1f %% | %.1f %% | %s | %.3f s |\n", r.Size, r.Budget, r.Migrations, r.FreedPercent, wf, ratio(r.FreedPercent, wf), r.Seconds)
	}
	fmt.Fprintln(w)
}

func stabilization(e *decision.Engine, hosts, vms int, seed int64) []stabilizationResult {
	c, err := synth.Generate(synth.Config{Hosts: hosts, Instances: vms, Seed: 42})
	if err != nil {
		fail(err)
	}
	var out []stabilizationResult
	for _, v := range []struct {
		name   string
		params map[string]any
	}{
		{"default (stop at threshold × 0.5)", nil},
		{"Watcher's stopping rule (threshold × 1)", map[string]any{"target_fraction": 1.0}},
	} {
		start := time.Now()
		p, err := e.Plan(context.Background(), decision.Request{Goal: "workload_balancing", Strategy: "workload_stabilization",
			Params: v.params, Model: c, Seed: seed, TimeLimit: 10 * time.Minute})
		if err != nil {
			fail(err)
		}
		r := stabilizationResult{Size: fmt.Sprintf("%dx%d", hosts, vms), Variant: v.name, Seconds: time.Since(start).Seconds(), Migrations: len(p.Moves)}
		for _, i := range p.EfficacyIndicators {
			switch i.Name {
			case "standard_deviation_before_audit":
				r.SDBefore = i.Value
			case "standard_deviation_after_audit":
				r.SDAfter = i.Value
			}
		}
		fmt.Fprintf(os.Stderr, "stabilization %s: %.3fs, %d migrations, sd %.3f→%.3f\n", v.name, r.Seconds, r.Migrations, r.SDBefore, r.SDAfter)
		out = append(out, r)
	}
	return out
}

func printStabilization(w io.Writer, rs []stabilizationResult) {
	fmt.Fprintln(w, "## Workload stabilization (CPU, threshold 0.1)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| hosts×VMs | variant | plan time | Watcher | ratio | migrations | Watcher | std-dev before → after | Watcher after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %.3f s | 112 s | %s | %d | 209 | %.3f → %.3f | < 0.100 (stops at the threshold) |\n",
			r.Size, r.Variant, r.Seconds, ratio(r.Seconds, 112), r.Migrations, r.SDBefore, r.SDAfter)
	}
	fmt.Fprintln(w)
}

func runRoadef(w io.Writer, dir string, sets []string, limit time.Duration, workers int, seed int64) []roadefResult {
	f, err := os.Open(filepath.Join(dir, "best_known.csv"))
	if err != nil {
		fail(fmt.Errorf("-roadef-dir: %w", err))
	}
	rows, err := roadef.ReadBestKnown(f)
	f.Close()
	if err != nil {
		fail(err)
	}
	var out []roadefResult
	for _, set := range sets {
		set = strings.TrimSpace(set)
		for _, row := range rows {
			if row.Set != set || !row.ModelPresent {
				continue
			}
			in, orig := loadRoadef(dir, set, row.Instance)
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			start := time.Now()
			res, err := roadef.Solve(ctx, in, orig, roadef.SolveOptions{Seed: seed, Workers: workers})
			cancel()
			if err != nil {
				fail(fmt.Errorf("%s: %w", row.Instance, err))
			}
			r := roadefResult{Set: set, Instance: row.Instance, Cost: res.Evaluation.Total, Original: row.OriginalCost,
				BestVerified: row.BestVerified, Seconds: time.Since(start).Seconds(), Feasible: res.Evaluation.Feasible}
			r.Score = float64(r.Cost-r.BestVerified) / float64(r.Original)
			r.Gap = float64(r.Cost-r.BestVerified) / float64(max(r.BestVerified, 1))
			fmt.Fprintf(os.Stderr, "roadef %s: cost %d, score %.4f%%, gap %.4f%%\n", r.Instance, r.Cost, 100*r.Score, 100*r.Gap)
			out = append(out, r)
		}
	}
	fmt.Fprintf(w, "## ROADEF/EURO 2012 (%s per instance, %d workers, seed %d)\n\n", limit, workers, seed)
	fmt.Fprintln(w, "| set | instance | our cost | best verified | original | competition score | relative gap | feasible |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range out {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %.4f %% | %.4f %% | %v |\n", r.Set, r.Instance, r.Cost, r.BestVerified, r.Original,
			100*r.Score, 100*r.Gap, r.Feasible)
	}
	fmt.Fprintln(w)
	for _, set := range sets {
		set = strings.TrimSpace(set)
		var score, gap []float64
		for _, r := range out {
			if r.Set == set {
				score = append(score, r.Score)
				gap = append(gap, r.Gap)
			}
		}
		if len(score) == 0 {
			continue
		}
		fmt.Fprintf(w, "Set %s (%d instances): mean competition score %.4f %% (target ≤ 0.2 %%, ratio %s), mean relative gap %.4f %% (target ≤ 1 %%, ratio %s); worst gap %.4f %%.\n\n",
			set, len(score), 100*mean(score), ratio(100*mean(score), 0.2), 100*mean(gap), ratio(100*mean(gap), 1), 100*slices.MaxFunc(gap, cmp.Compare[float64]))
	}
	return out
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / math.Max(1, float64(len(v)))
}

func loadRoadef(dir, set, name string) (*roadef.Instance, []int) {
	mf, err := os.Open(filepath.Join(dir, set, "model_"+name+".txt"))
	if err != nil {
		fail(err)
	}
	defer mf.Close()
	in, err := roadef.Parse(mf)
	if err != nil {
		fail(fmt.Errorf("%s: %w", name, err))
	}
	af, err := os.Open(filepath.Join(dir, set, "assignment_"+name+".txt"))
	if err != nil {
		fail(err)
	}
	defer af.Close()
	orig, err := roadef.ParseAssignment(af, in)
	if err != nil {
		fail(fmt.Errorf("%s: %w", name, err))
	}
	return in, orig
}
