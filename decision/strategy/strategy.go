// Package strategy defines what a strategy is and gives strategies the
// shared pieces they are built from: the mapping of a compute cluster onto
// the optimisation core (Compute), migration actions and the efficacy
// measurements common to several goals.
//
// Each strategy lives in its own package under decision/strategy/ with its
// parameter struct, schema, defaults and validation; they are registered in
// one wiring file in package decision. A strategy returns a Solution: it
// decides, it never acts on infrastructure.
package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/scoring"
)

// Strategy computes a solution for its goal on one cluster snapshot.
type Strategy interface {
	Execute(ctx context.Context, in *Input) (*Solution, error)
}

// Input is what a strategy runs on.
type Input struct {
	// Cluster is the (scoped) snapshot; strategies must not modify it.
	Cluster *model.Cluster
	// Index is Cluster's integer view.
	Index *model.Index
	// Seed makes the strategy's choices reproducible.
	Seed int64
	// Scorers are the registered scoring engines.
	Scorers *scoring.Registry
	Logger  *slog.Logger
}

// Solution is what a strategy decided.
type Solution struct {
	// Actions are unordered; the planner orders them.
	Actions []action.Action
	// Moves are the instance relocations the actions make, to apply the
	// solution to the model (what-if, tests, the simulator).
	Moves []model.Move
	// Indicators are the efficacy values, by the goal's indicator names.
	Indicators map[string]float64
	// Bounds, if any, are reported beside the plan.
	Bounds *Bounds
	// Notes explain anything the strategy could not do (unplaceable
	// instances, a target missed), for the operator.
	Notes []string
	// Search reports the optimisation core's work, if it ran.
	Search *SearchStats
}

// Bounds are the lower bounds relevant to a plan.
type Bounds struct {
	// ActiveHosts is the bin-packing bound on hosts running instances.
	ActiveHosts *HostBound `json:"active_hosts,omitempty"`
	// Balance is the floor on the standard deviation of host utilisation,
	// per metric.
	Balance map[string]BalanceBound `json:"balance,omitempty"`
}

// HostBound is the bound on active hosts, with the plan's value beside it.
type HostBound struct {
	L1    int `json:"l1"`
	L2    int `json:"l2"`
	After int `json:"after"`
	// Ratio is After / L2.
	Ratio float64 `json:"ratio"`
}

// BalanceBound is the balance floor of one metric, with the plan's value.
type BalanceBound struct {
	Mean        float64 `json:"mean"`
	StdDevFloor float64 `json:"std_dev_floor"`
	Before      float64 `json:"std_dev_before"`
	After       float64 `json:"std_dev_after"`
}

// SearchStats summarise a run of the optimisation core.
type SearchStats struct {
	Seconds     float64 `json:"seconds"`
	Evaluations int64   `json:"evaluations,omitempty"`
	Moves       int     `json:"moves"`
	Stopped     string  `json:"stopped,omitempty"`
}

// Definition registers a strategy: its names, goal, parameter schema and a
// constructor from validated parameters.
type Definition struct {
	Name        string
	DisplayName string
	Goal        string
	Params      params.Schema
	// New builds the strategy from parameters already validated against
	// Params and filled with defaults.
	New func(p map[string]any, logger *slog.Logger) (Strategy, error)
}

// DecodeParams decodes validated parameters into a strategy's parameter
// struct (json tags name the parameters).
func DecodeParams(raw map[string]any, out any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("encode parameters: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode parameters: %w", err)
	}
	return nil
}

// MetricParams are the metric aggregation parameters Watcher's metric-driven
// strategies accept; the model builder uses them to aggregate the usage a
// strategy plans on.
type MetricParams struct {
	Period            int    `json:"period"`
	Granularity       int    `json:"granularity"`
	AggregationMethod string `json:"aggregation_method"`
}

// MetricSchema adds the period, granularity and aggregation_method
// parameters (with the given default period) to props.
func MetricSchema(props map[string]*params.Property, period int) map[string]*params.Property {
	props["period"] = &params.Property{Type: "integer", Default: float64(period), Minimum: params.Float(0),
		Description: "Look-back window of the metrics, in seconds."}
	props["granularity"] = &params.Property{Type: "integer", Default: float64(300), Minimum: params.Float(1),
		Description: "Step between aggregated metric points, in seconds."}
	props["aggregation_method"] = &params.Property{Type: "string", Default: "mean",
		Description: "How samples are aggregated over the period: mean, max, min or pNN (a percentile, e.g. p95)."}
	return props
}

// Validate checks the aggregation method.
func (m MetricParams) Validate() error {
	if _, err := model.ParseAggregate(m.AggregationMethod); err != nil {
		return fmt.Errorf("parameter \"aggregation_method\": %w", err)
	}
	return nil
}

// ParamError is a parameter a strategy cannot plan with: a host it names is
// not in the cluster (as scoped), a scoring engine is not registered, two
// parameters contradict each other. It is the request's fault, not the
// strategy's: decision.Engine.Plan reports it as an *InvalidRequestError
// naming the parameter (a 400 for the API, a usage error for `ballast plan`).
type ParamError struct {
	// Param is the parameter's name, e.g. maintenance_node.
	Param string
	Err   error
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %q: %v", e.Param, e.Err) }
func (e *ParamError) Unwrap() error { return e.Err }

// Parameter names the parameter at fault.
func (e *ParamError) Parameter() string { return e.Param }
