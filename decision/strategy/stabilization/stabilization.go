// Package stabilization is the workload-stabilization strategy (goal
// workload_balancing), with Watcher's parameters: when the standard
// deviation of host load exceeds a metric's threshold it moves instances
// until every metric's deviation is at most target_fraction × threshold,
// choosing each migration by steepest descent of the weighted load variance
// (the best single move across the hottest hosts and the coolest
// destinations), so a plan reaches the target with few migrations and is
// the same on every run (Watcher's default host_choice samples at random).
package stabilization

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"

	"github.com/ballast-cloud/ballast/decision/bounds"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Watcher's metric names and the compute resources they measure.
var metricResource = map[string]string{
	"instance_cpu_usage": strategy.CPU,
	"instance_ram_usage": strategy.Memory,
}

// Params are Watcher's workload_stabilization parameters plus a target and a
// migration budget.
type Params struct {
	Metrics         []string           `json:"metrics"`
	Thresholds      map[string]float64 `json:"thresholds"`
	Weights         map[string]float64 `json:"weights"`
	InstanceMetrics map[string]string  `json:"instance_metrics"`
	HostChoice      string             `json:"host_choice"`
	RetryCount      int                `json:"retry_count"`
	Periods         map[string]float64 `json:"periods"`
	Granularity     int                `json:"granularity"`
	Aggregation     map[string]any     `json:"aggregation_method"`
	// TargetFraction: stop once each metric's deviation is at most
	// threshold × target_fraction.
	TargetFraction float64 `json:"target_fraction"`
	// MaxMigrations bounds the plan (0: unbounded).
	MaxMigrations int `json:"max_migrations"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	num := func(def float64) *params.Property {
		return &params.Property{Type: "number", Default: def, Minimum: params.Float(0)}
	}
	return params.Schema{Properties: map[string]*params.Property{
		"metrics": {Type: "array", Default: []any{"instance_cpu_usage"},
			Items:       &params.Property{Type: "string", Enum: []any{"instance_cpu_usage", "instance_ram_usage"}},
			Description: "Metrics used as rates of cluster loads."},
		"thresholds": {Type: "object", Default: map[string]any{"instance_cpu_usage": 0.1, "instance_ram_usage": 0.1},
			Properties:  map[string]*params.Property{"instance_cpu_usage": num(0.1), "instance_ram_usage": num(0.1)},
			Description: "Dict where key is a metric and value is a trigger value: the standard deviation of host load above which the cluster is balanced."},
		"weights": {Type: "object", Default: map[string]any{"instance_cpu_usage_weight": 1.0, "instance_ram_usage_weight": 1.0},
			Properties:  map[string]*params.Property{"instance_cpu_usage_weight": num(1), "instance_ram_usage_weight": num(1)},
			Description: "These weights used to calculate common standard deviation. Name of weight contains meter name and _weight suffix."},
		"instance_metrics": {Type: "object", Default: map[string]any{"instance_cpu_usage": "host_cpu_usage", "instance_ram_usage": "host_ram_usage"},
			AdditionalProperties: &params.Property{Type: "string"},
			Description:          "Mapping to get hardware statistics using instance metrics."},
		"host_choice": {Type: "string", Default: "retry", Enum: []any{"cycle", "retry", "fullsearch"},
			Description: "Accepted for compatibility; Ballast always searches every candidate move deterministically."},
		"retry_count": {Type: "integer", Default: float64(1), Minimum: params.Float(1),
			Description: "Accepted for compatibility (Watcher's count of random host samples)."},
		"periods": {Type: "object", Default: map[string]any{"instance": 720.0, "compute_node": 600.0},
			Properties:  map[string]*params.Property{"instance": num(720), "compute_node": num(600), "node": num(600)},
			Description: "Time, in seconds, to get statistical values for resources (instance and compute node)."},
		"granularity": {Type: "integer", Default: float64(300), Minimum: params.Float(1),
			Description: "The time between two measures in an aggregated timeseries of a metric."},
		"aggregation_method": {Type: "object", Default: map[string]any{"instance": "mean", "compute_node": "mean", "node": ""},
			AdditionalProperties: &params.Property{Type: "string"},
			Description:          "Function used to aggregate multiple measures into an aggregate: mean, max, min or pNN."},
		"target_fraction": {Type: "number", Default: 0.5, Minimum: params.Float(0), Maximum: params.Float(1),
			Description: "Balance until every metric's standard deviation is at most threshold × target_fraction (hysteresis, so the next audit does not trigger at once)."},
		"max_migrations": {Type: "integer", Default: float64(0), Minimum: params.Float(0),
			Description: "Most migrations the plan may contain (0: no limit)."},
	}}
}

// Stabilization is the strategy.
type Stabilization struct {
	p      Params
	logger *slog.Logger
}

var _ strategy.Strategy = (*Stabilization)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*Stabilization, error) {
	if len(p.Metrics) == 0 {
		return nil, fmt.Errorf("parameter \"metrics\": at least one of %v is required", keys(metricResource))
	}
	for _, m := range p.Metrics {
		if _, ok := metricResource[m]; !ok {
			return nil, fmt.Errorf("parameter \"metrics\": %q is not one of %v", m, keys(metricResource))
		}
		if t, ok := p.Thresholds[m]; !ok || t <= 0 {
			return nil, fmt.Errorf("parameter \"thresholds\": %q needs a positive threshold", m)
		}
	}
	if p.TargetFraction < 0 || p.TargetFraction > 1 {
		return nil, fmt.Errorf("parameter \"target_fraction\": %v must be within [0, 1]", p.TargetFraction)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Stabilization{p: p, logger: logger.With("component", "strategy/stabilization")}, nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Execute plans the migrations.
func (s *Stabilization) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	balance := map[string]float64{}
	for _, m := range s.p.Metrics {
		w, ok := s.p.Weights[m+"_weight"]
		if !ok {
			w = 1
		}
		balance[metricResource[m]] = w
	}
	cp, err := strategy.NewCompute(in.Index, strategy.ComputeOptions{
		Allocation: true,
		CPUCap:     1,
		MemoryCap:  1,
		Balance:    balance,
		MaxMoves:   s.p.MaxMigrations,
		Scorers:    in.Scorers,
	})
	if err != nil {
		return nil, err
	}
	type target struct {
		r     int
		limit float64
	}
	var targets []target
	triggered := false
	initial := cp.Initial()
	for _, m := range s.p.Metrics {
		r, _ := cp.Resource(metricResource[m])
		sd := bounds.StdDev(cp.Utilization(initial, metricResource[m]))
		if sd > s.p.Thresholds[m] {
			triggered = true
		}
		targets = append(targets, target{r, s.p.Thresholds[m] * s.p.TargetFraction})
	}
	sol := &strategy.Solution{Indicators: map[string]float64{}}
	assign := initial
	if triggered {
		open := make([]int32, 0, len(cp.Problem.Machines))
		for h, m := range cp.Problem.Machines {
			if !m.Closed {
				open = append(open, int32(h))
			}
		}
		util := make([]float64, len(open))
		stop := func(st *optimize.State) bool {
			for _, t := range targets {
				for k, h := range open {
					util[k] = float64(st.Usage(h, t.r)) / cp.Physical[int(h)*len(cp.Names)+t.r]
				}
				if bounds.StdDev(util) > t.limit {
					return false
				}
			}
			return true
		}
		res, err := optimize.Solve(ctx, cp.Problem, optimize.Options{
			Seed:    in.Seed,
			Descent: &optimize.DescentOptions{Stop: stop, Swaps: true},
		})
		if err != nil {
			return nil, fmt.Errorf("stabilization: %w", err)
		}
		if len(res.Violations) > 0 {
			return nil, fmt.Errorf("stabilization: solver broke constraints: %v", res.Violations)
		}
		assign = res.Assignment
		sol.Search = strategy.SearchStatsOf(res)
		if res.Descent.Stopped != "target" {
			sol.Notes = append(sol.Notes, fmt.Sprintf("stopped before the target deviation (%s)", res.Descent.Stopped))
		}
	} else {
		sol.Notes = append(sol.Notes, "every metric's standard deviation is within its threshold: nothing to do")
	}
	sol.Actions = cp.Migrations(assign)
	sol.Moves = cp.Moves(assign)
	sol.Bounds = &strategy.Bounds{ActiveHosts: cp.ActiveHostBound(strategy.ActiveCount(assign, len(in.Cluster.Hosts))),
		Balance: map[string]strategy.BalanceBound{}}
	var before, after, floor float64
	for _, m := range s.p.Metrics {
		b, _ := cp.BalanceBound(metricResource[m], initial, assign)
		sol.Bounds.Balance[m] = b
		w := balance[metricResource[m]]
		before += w * b.Before
		after += w * b.After
		floor += w * b.StdDevFloor
	}
	var wsum float64
	for _, w := range balance {
		wsum += w
	}
	sol.Indicators["instance_migrations_count"] = float64(len(sol.Moves))
	sol.Indicators["instances_count"] = float64(len(in.Cluster.Instances))
	sol.Indicators["standard_deviation_before_audit"] = round(before / wsum)
	sol.Indicators["standard_deviation_after_audit"] = round(after / wsum)
	sol.Indicators["standard_deviation_lower_bound"] = round(floor / wsum)
	s.logger.Debug("Stabilization planned", "migrations", len(sol.Moves), "sd_before", before/wsum, "sd_after", after/wsum)
	return sol, nil
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }
