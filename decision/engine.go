package decision

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/planner"
	"github.com/ballast-cloud/ballast/decision/scoring"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Config configures the engine. Zero values get the defaults noted.
type Config struct {
	// DefaultTimeLimit bounds a plan's search when the request sets none
	// (default 10s).
	DefaultTimeLimit time.Duration `yaml:"default_time_limit"`
	// MaxTimeLimit caps what a request may ask for (default 10m).
	MaxTimeLimit time.Duration `yaml:"max_time_limit"`
	// PerHostConcurrency and GlobalConcurrency are the planner's limits
	// (defaults 2 and 16).
	PerHostConcurrency int `yaml:"per_host_concurrency"`
	GlobalConcurrency  int `yaml:"global_concurrency"`
}

func (c Config) withDefaults() (Config, error) {
	if c.DefaultTimeLimit == 0 {
		c.DefaultTimeLimit = 10 * time.Second
	}
	if c.MaxTimeLimit == 0 {
		c.MaxTimeLimit = 10 * time.Minute
	}
	if c.PerHostConcurrency == 0 {
		c.PerHostConcurrency = 2
	}
	if c.GlobalConcurrency == 0 {
		c.GlobalConcurrency = 16
	}
	switch {
	case c.DefaultTimeLimit < 0:
		return c, fmt.Errorf("decision.default_time_limit: %s must be positive", c.DefaultTimeLimit)
	case c.MaxTimeLimit < c.DefaultTimeLimit:
		return c, fmt.Errorf("decision.max_time_limit: %s is below default_time_limit %s", c.MaxTimeLimit, c.DefaultTimeLimit)
	case c.PerHostConcurrency < 0:
		return c, fmt.Errorf("decision.per_host_concurrency: %d must be positive", c.PerHostConcurrency)
	case c.GlobalConcurrency < 0:
		return c, fmt.Errorf("decision.global_concurrency: %d must be positive", c.GlobalConcurrency)
	}
	return c, nil
}

// Engine is the decision engine's entry point.
type Engine struct {
	cfg        Config
	logger     *slog.Logger
	base       *slog.Logger // unscoped, for the strategies, which scope themselves
	strategies []strategy.Definition
	scorers    *scoring.Registry
}

// New builds an engine with every built-in goal, strategy and scoring
// engine registered.
func New(cfg Config, logger *slog.Logger) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	scorers, err := builtinScorers()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, logger: logger.With("component", "decision"), base: logger, scorers: scorers}
	seen := map[string]bool{}
	for _, d := range builtinStrategies() {
		if seen[d.Name] {
			return nil, fmt.Errorf("strategy %q registered twice", d.Name)
		}
		if _, ok := goal.Get(d.Goal); !ok {
			return nil, fmt.Errorf("strategy %q: unknown goal %q", d.Name, d.Goal)
		}
		if _, err := d.Params.Apply(nil); err != nil && len(d.Params.Required) == 0 {
			return nil, fmt.Errorf("strategy %q: defaults do not validate: %w", d.Name, err)
		}
		seen[d.Name] = true
		e.strategies = append(e.strategies, d)
	}
	return e, nil
}

// Goals lists the goals.
func (e *Engine) Goals() []goal.Goal { return goal.All() }

// StrategyInfo is a strategy's listing, Watcher's strategies resource.
type StrategyInfo struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Goal        string `json:"goal_name"`
	// ParametersSpec is the JSON schema of the parameters.
	ParametersSpec json.RawMessage `json:"parameters_spec"`
}

// Strategies lists the strategies, in registration order.
func (e *Engine) Strategies() []StrategyInfo {
	out := make([]StrategyInfo, 0, len(e.strategies))
	for _, d := range e.strategies {
		spec, err := json.Marshal(d.Params)
		if err != nil {
			spec = []byte(`{"properties":{}}`)
		}
		out = append(out, StrategyInfo{Name: d.Name, DisplayName: d.DisplayName, Goal: d.Goal, ParametersSpec: spec})
	}
	return out
}

// ParameterSchema returns a strategy's parameter schema.
func (e *Engine) ParameterSchema(strategyName string) (params.Schema, bool) {
	for _, d := range e.strategies {
		if d.Name == strategyName {
			return d.Params, true
		}
	}
	return params.Schema{}, false
}

// ScoringEngines lists the scoring engines.
func (e *Engine) ScoringEngines() []scoring.Info { return e.scorers.List() }

// ScoringEngine returns a scoring engine by name.
func (e *Engine) ScoringEngine(name string) (scoring.Engine, bool) { return e.scorers.Get(name) }

func (e *Engine) definition(goalName, name string) (strategy.Definition, error) {
	if _, ok := goal.Get(goalName); !ok {
		return strategy.Definition{}, fmt.Errorf("goal %q is not one of %v", goalName, goal.Names())
	}
	var forGoal []string
	for _, d := range e.strategies {
		if d.Goal != goalName {
			continue
		}
		if name == "" || d.Name == name {
			return d, nil
		}
		forGoal = append(forGoal, d.Name)
	}
	for _, d := range e.strategies {
		if d.Name == name {
			return strategy.Definition{}, fmt.Errorf("strategy %q serves goal %q, not %q", name, d.Goal, goalName)
		}
	}
	if name == "" {
		return strategy.Definition{}, fmt.Errorf("goal %q has no strategy", goalName)
	}
	return strategy.Definition{}, fmt.Errorf("strategy %q is not one of %v for goal %q", name, forGoal, goalName)
}

// ParametersFor validates params for a strategy (the goal's default when
// strategy is empty) and returns them with defaults filled in, for the API
// to check audit parameters before running anything.
func (e *Engine) ParametersFor(goalName, strategyName string, params map[string]any) (string, map[string]any, error) {
	d, err := e.definition(goalName, strategyName)
	if err != nil {
		return "", nil, err
	}
	p, err := d.Params.Apply(params)
	return d.Name, p, err
}

// Request asks for a plan.
type Request struct {
	// Goal is required; Strategy defaults to the goal's first strategy.
	Goal     string
	Strategy string
	// Params are the strategy's parameters; defaults fill the rest.
	Params map[string]any
	// Model is the cluster snapshot (required); it is not modified.
	Model *model.Cluster
	// TimeLimit bounds the search (default Config.DefaultTimeLimit).
	TimeLimit time.Duration
	// Seed makes the plan reproducible.
	Seed int64
	// Scope narrows the plan to part of the cluster.
	Scope Scope
}

// InvalidRequestError is a request the engine rejects (bad goal, strategy,
// parameters, model or scope, or parameters the model contradicts, such as
// a maintenance node that is not in it): the API answers it with 400.
type InvalidRequestError struct {
	Err error
	// Param names the strategy parameter at fault, when the strategy said
	// which; Err then says what is wrong with it.
	Param string
}

func (e *InvalidRequestError) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("parameter %q: %v", e.Param, e.Err)
	}
	return e.Err.Error()
}

func (e *InvalidRequestError) Unwrap() error { return e.Err }

func invalid(err error) error { return &InvalidRequestError{Err: err} }

// parameterError is a strategy's error about one of its parameters, such
// as *strategy.ParamError: the request's fault, not the strategy's.
type parameterError interface {
	error
	Parameter() string
	Unwrap() error
}

// invalidParameter is err, from a strategy's constructor or Execute, as an
// *InvalidRequestError naming the parameter it is about; nil if err is not
// about a parameter.
func invalidParameter(err error) *InvalidRequestError {
	var pe parameterError
	if !errors.As(err, &pe) || pe.Unwrap() == nil {
		return nil
	}
	return &InvalidRequestError{Param: pe.Parameter(), Err: pe.Unwrap()}
}

// Plan is an action plan with its efficacy and bounds.
type Plan struct {
	// ID is a UUID derived from the request and the solution.
	ID         string         `json:"uuid"`
	Goal       string         `json:"goal"`
	Strategy   string         `json:"strategy"`
	Parameters map[string]any `json:"parameters"`
	// Actions are ordered (parents first) with Watcher's shapes.
	Actions []action.Action `json:"actions"`
	// EfficacyIndicators and GlobalEfficacy are Watcher's fields.
	EfficacyIndicators []goal.Indicator `json:"efficacy_indicators"`
	GlobalEfficacy     []goal.Indicator `json:"global_efficacy"`
	// Bounds are the lower bounds beside the plan's own values.
	Bounds *strategy.Bounds `json:"bounds,omitempty"`
	// Concurrency are the limits the applier must respect.
	Concurrency planner.Limits `json:"concurrency"`
	// EstimatedDurationSeconds is the planner's makespan estimate;
	// SerialDurationSeconds the same actions one at a time; Depth the
	// longest dependency chain.
	EstimatedDurationSeconds float64 `json:"estimated_duration_s"`
	SerialDurationSeconds    float64 `json:"serial_duration_s"`
	Depth                    int     `json:"depth"`
	// Moves are the instance relocations, to apply the plan to a model.
	Moves []model.Move `json:"moves"`
	// Notes explain what the strategy could not do.
	Notes []string `json:"notes,omitempty"`
	// Search and PlanningSeconds report the work done.
	Search          *strategy.SearchStats `json:"search,omitempty"`
	PlanningSeconds float64               `json:"planning_s"`
	// Hosts and Instances count the cluster in scope.
	Hosts     int `json:"hosts"`
	Instances int `json:"instances"`
}

// Plan computes an action plan. Errors that are the request's fault are
// *InvalidRequestError.
func (e *Engine) Plan(ctx context.Context, req Request) (*Plan, error) {
	start := time.Now()
	if req.Model == nil {
		return nil, invalid(errors.New("model: required"))
	}
	if err := req.Model.Validate(); err != nil {
		return nil, invalid(fmt.Errorf("model: %w", err))
	}
	d, err := e.definition(req.Goal, req.Strategy)
	if err != nil {
		return nil, invalid(err)
	}
	params, err := d.Params.Apply(req.Params)
	if err != nil {
		return nil, invalid(err)
	}
	s, err := d.New(params, e.base)
	if err != nil {
		if inv := invalidParameter(err); inv != nil {
			return nil, inv
		}
		return nil, invalid(fmt.Errorf("strategy %s: %w", d.Name, err))
	}
	limit := req.TimeLimit
	if limit <= 0 {
		limit = e.cfg.DefaultTimeLimit
	}
	if limit > e.cfg.MaxTimeLimit {
		return nil, invalid(fmt.Errorf("time limit %s exceeds the maximum %s", limit, e.cfg.MaxTimeLimit))
	}
	cluster, err := req.Scope.Apply(req.Model)
	if err != nil {
		return nil, invalid(err)
	}
	ix, err := model.NewIndex(cluster)
	if err != nil {
		return nil, invalid(fmt.Errorf("model: %w", err))
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	sol, err := s.Execute(sctx, &strategy.Input{Cluster: cluster, Index: ix, Seed: req.Seed, Scorers: e.scorers,
		Logger: e.logger.With("strategy", d.Name)})
	if err != nil {
		// A parameter the model contradicts (a host it does not have) is
		// the request's fault.
		if inv := invalidParameter(err); inv != nil {
			return nil, inv
		}
		return nil, fmt.Errorf("strategy %s: %w", d.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := verify(cluster, sol.Moves); err != nil {
		return nil, fmt.Errorf("strategy %s: %w", d.Name, err)
	}
	g, _ := goal.Get(d.Goal)
	indicators, global, err := g.Efficacy(sol.Indicators)
	if err != nil {
		return nil, err
	}
	id := planID(d.Name, params, req.Seed, sol)
	pl, err := planner.Build(sol.Actions, planner.Options{
		PerHost:   e.cfg.PerHostConcurrency,
		Global:    e.cfg.GlobalConcurrency,
		Namespace: id,
	})
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", d.Name, err)
	}
	moves := sol.Moves
	if moves == nil {
		moves = []model.Move{}
	}
	p := &Plan{
		ID: id.String(), Goal: d.Goal, Strategy: d.Name, Parameters: params,
		Actions: pl.Actions, EfficacyIndicators: indicators, GlobalEfficacy: global,
		Bounds: sol.Bounds, Concurrency: pl.Limits,
		EstimatedDurationSeconds: pl.EstimatedSeconds, SerialDurationSeconds: pl.SerialSeconds, Depth: pl.Depth,
		Moves: moves, Notes: sol.Notes, Search: sol.Search,
		PlanningSeconds: time.Since(start).Seconds(),
		Hosts:           len(cluster.Hosts), Instances: len(cluster.Instances),
	}
	if p.Actions == nil {
		p.Actions = []action.Action{}
	}
	e.logger.Debug("Plan computed", "goal", d.Goal, "strategy", d.Name, "actions", len(p.Actions),
		"moves", len(moves), "seconds", p.PlanningSeconds)
	return p, nil
}

// verify re-checks the solution against the model independently of the
// solver: it must not add a placement violation the cluster did not have.
func verify(c *model.Cluster, moves []model.Move) error {
	if len(moves) == 0 {
		return nil
	}
	after, err := model.ApplyMoves(c, moves)
	if err != nil {
		return err
	}
	before := model.CheckPlacement(c)
	for _, v := range model.CheckPlacement(after) {
		if !slices.ContainsFunc(before, func(b model.Violation) bool { return b.Kind == v.Kind && b.Host == v.Host }) {
			return fmt.Errorf("plan breaks a placement rule: %s", v)
		}
	}
	return nil
}

var planNamespace = uuid.MustParse("2f6d1f3e-7a51-5c2b-9a8e-0c4b6d0e1a77")

// planID derives a UUID from what determines the plan, so the same request
// on the same cluster names its plan and actions the same.
func planID(strategyName string, params map[string]any, seed int64, sol *strategy.Solution) uuid.UUID {
	h := sha1.New()
	b, _ := json.Marshal(struct {
		S string
		P map[string]any
		N int64
		M []model.Move
		A int
	}{strategyName, params, seed, sol.Moves, len(sol.Actions)})
	h.Write(b)
	return uuid.NewSHA1(planNamespace, h.Sum(nil))
}

// MetricWindow returns the metric aggregation a strategy's parameters ask
// for (Watcher's period, granularity and aggregation_method, including
// workload_stabilization's per-resource periods and methods), for the model
// builder; defaults are one hour of 5-minute points, averaged.
func MetricWindow(params map[string]any) (period, granularity time.Duration, aggregate string) {
	period, granularity, aggregate = time.Hour, 5*time.Minute, "mean"
	num := func(v any) (float64, bool) {
		f, ok := v.(float64)
		return f, ok && f > 0
	}
	if v, ok := num(params["period"]); ok {
		period = time.Duration(v * float64(time.Second))
	}
	if m, ok := params["periods"].(map[string]any); ok {
		if v, ok := num(m["instance"]); ok {
			period = time.Duration(v * float64(time.Second))
		}
	}
	if v, ok := num(params["granularity"]); ok {
		granularity = time.Duration(v * float64(time.Second))
	}
	switch a := params["aggregation_method"].(type) {
	case string:
		if a != "" {
			aggregate = a
		}
	case map[string]any:
		if s, ok := a["instance"].(string); ok && s != "" {
			aggregate = s
		}
	}
	return period, granularity, aggregate
}
