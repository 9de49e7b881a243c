// Package decision is the decision engine's entry point: goals, strategies,
// scoring engines and the planner behind one Engine, which the server's
// audits and the Watcher-compatible API call. It decides; it never acts on
// infrastructure (an applier executes plans against fresh state).
//
// # Go API
//
//	e, err := decision.New(decision.Config{}, logger)
//	e.Goals()          // []goal.Goal: name, display name, efficacy specification
//	e.Strategies()     // []StrategyInfo: name, display name, goal, parameters_spec (JSON schema)
//	e.ScoringEngines() // []scoring.Info: name, description, metainfo
//	e.ScoringEngine(name)                        // scoring.Engine, for calculate_score
//	e.ParametersFor(goal, strategy, params)      // validate audit parameters, fill defaults
//	decision.ParseWatcherScope(auditScopeJSON)   // Scope
//	decision.MetricWindow(params)                // period, granularity, aggregate for the model builder
//	plan, err := e.Plan(ctx, decision.Request{
//		Goal: "server_consolidation", Strategy: "", // "": the goal's default strategy
//		Params: map[string]any{"max_migrations": 100},
//		Model: cluster, TimeLimit: 10 * time.Second, Seed: 1, Scope: scope,
//	})
//
// A Plan carries Watcher's fields (actions with action_type,
// input_parameters and parents; efficacy_indicators; global_efficacy) plus
// the lower bounds beside the plan's values, the concurrency limits the
// applier must keep, the estimated duration and the instance moves.
// Request errors (unknown goal or strategy, bad parameters, invalid model,
// empty scope) are *InvalidRequestError, for a 400.
//
// # Where things live
//
//   - model: the cluster model and its versioned JSON form; model/synth
//     generates synthetic clusters.
//   - collect: builds a model from inventory events and metrics read
//     through tsdb/datasource (bulk PromQL, Watcher's aggregation options).
//   - optimize: the one optimisation core every strategy runs on.
//   - strategy/…: one package per strategy; strategies.go registers them.
//   - scoring: scoring engines; scorers.go registers them.
//   - goal, action, params, planner, bounds: efficacy specifications,
//     action shapes, parameter schemas, the DAG planner, lower bounds.
//   - roadef: the ROADEF/EURO 2012 benchmark on the same core.
//   - sim: the simulated cluster.
package decision
