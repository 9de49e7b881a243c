// Package workloadbalance is the workload-balance strategy (goal
// workload_balancing) with Watcher's parameters: hosts whose load of the
// chosen metric is at or above the threshold are relieved by migrating
// instances to cooler hosts that stay under it. Where Watcher plans one
// migration per audit, this plans as many as the overloaded hosts need,
// each chosen by the shared core so that the overload removed per migration
// is largest and destinations stay balanced.
package workloadbalance

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Params are Watcher's workload_balance parameters plus a migration budget.
type Params struct {
	// Metrics is instance_cpu_usage or instance_ram_usage (Watcher's
	// parameter is named metrics but holds one metric).
	Metrics string `json:"metrics"`
	// Threshold is the host workload, in percent, above which a host is
	// relieved.
	Threshold     float64 `json:"threshold"`
	Period        int     `json:"period"`
	Granularity   int     `json:"granularity"`
	MaxMigrations int     `json:"max_migrations"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"metrics": {Type: "string", Default: "instance_cpu_usage", Enum: []any{"instance_cpu_usage", "instance_ram_usage"},
			Description: "Workload balance based on metrics: cpu or ram utilization."},
		"threshold": {Type: "number", Default: 25.0, Minimum: params.Float(0), Maximum: params.Float(100),
			Description: "Workload threshold for migration (percent of the host)."},
		"period": {Type: "integer", Default: float64(300), Minimum: params.Float(0),
			Description: "Aggregate time period of ceilometer and gnocchi."},
		"granularity": {Type: "integer", Default: float64(300), Minimum: params.Float(1),
			Description: "The time between two measures in an aggregated timeseries of a metric."},
		"max_migrations": {Type: "integer", Default: float64(0), Minimum: params.Float(0),
			Description: "Most migrations the plan may contain (0: no limit)."},
	}}
}

// WorkloadBalance is the strategy.
type WorkloadBalance struct {
	p      Params
	res    string
	logger *slog.Logger
}

var _ strategy.Strategy = (*WorkloadBalance)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*WorkloadBalance, error) {
	res := map[string]string{"instance_cpu_usage": strategy.CPU, "instance_ram_usage": strategy.Memory}[p.Metrics]
	if res == "" {
		return nil, fmt.Errorf("parameter \"metrics\": %q is not instance_cpu_usage or instance_ram_usage", p.Metrics)
	}
	if p.Threshold <= 0 || p.Threshold > 100 {
		return nil, fmt.Errorf("parameter \"threshold\": %v must be within (0, 100]", p.Threshold)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &WorkloadBalance{p: p, res: res, logger: logger.With("component", "strategy/workload_balance")}, nil
}

// Weights: removing overload dominates; among equal reliefs the migration
// cost (milliseconds) decides, then the spread of the destinations.
const (
	overloadWeight = 1 << 12
	balanceWeight  = 1 << 16
)

// Execute plans the migrations.
func (w *WorkloadBalance) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	frac := w.p.Threshold / 100
	cp, err := strategy.NewCompute(in.Index, strategy.ComputeOptions{
		Allocation: true,
		CPUCap:     1,
		MemoryCap:  1,
		Safety:     map[string]float64{w.res: frac},
		LoadWeight: overloadWeight,
		Balance:    map[string]float64{w.res: balanceWeight},
		MoveWeight: 1,
		MaxMoves:   w.p.MaxMigrations,
		Scorers:    in.Scorers,
	})
	if err != nil {
		return nil, err
	}
	r, _ := cp.Resource(w.res)
	initial := cp.Initial()
	// Destinations must stay under the threshold: make it their capacity
	// for this metric; a source above it only sheds load (the core never
	// adds load to a host over capacity).
	for h := range cp.Problem.Machines {
		m := &cp.Problem.Machines[h]
		m.Capacity[r] = m.Safety[r]
	}
	over := func(assign []int32) int {
		n := 0
		for _, u := range cp.Utilization(assign, w.res) {
			if u >= frac {
				n++
			}
		}
		return n
	}
	sol := &strategy.Solution{}
	assign := initial
	if over(initial) > 0 {
		res, err := optimize.Solve(ctx, cp.Problem, optimize.Options{
			Seed:    in.Seed,
			Descent: &optimize.DescentOptions{Swaps: true},
		})
		if err != nil {
			return nil, fmt.Errorf("workload_balance: %w", err)
		}
		if len(res.Violations) > 0 {
			return nil, fmt.Errorf("workload_balance: solver broke constraints: %v", res.Violations)
		}
		assign = res.Assignment
		sol.Search = strategy.SearchStatsOf(res)
		if n := over(assign); n > 0 {
			sol.Notes = append(sol.Notes, fmt.Sprintf("%d hosts stay at or above %.0f%%: no destination has room", n, w.p.Threshold))
		}
	} else {
		sol.Notes = append(sol.Notes, fmt.Sprintf("no host is at or above %.0f%%: nothing to do", w.p.Threshold))
	}
	sol.Actions = cp.Migrations(assign)
	sol.Moves = cp.Moves(assign)
	b, _ := cp.BalanceBound(w.res, initial, assign)
	sol.Bounds = &strategy.Bounds{ActiveHosts: cp.ActiveHostBound(strategy.ActiveCount(assign, len(in.Cluster.Hosts))),
		Balance: map[string]strategy.BalanceBound{w.p.Metrics: b}}
	sol.Indicators = map[string]float64{
		"instance_migrations_count":       float64(len(sol.Moves)),
		"instances_count":                 float64(len(in.Cluster.Instances)),
		"standard_deviation_before_audit": b.Before,
		"standard_deviation_after_audit":  b.After,
		"standard_deviation_lower_bound":  b.StdDevFloor,
	}
	w.logger.Debug("Workload balance planned", "migrations", len(sol.Moves), "hosts_over_before", over(initial), "hosts_over_after", over(assign))
	return sol, nil
}
