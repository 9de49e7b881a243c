// Package actuator is Watcher's actuator strategy (goal unclassified): the
// plan is exactly the actions given as a parameter, validated against the
// action types' input_parameters shapes. It lets operators and tests run any
// action through the applier.
package actuator

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Spec is one requested action.
type Spec struct {
	ActionType      string         `json:"action_type"`
	ResourceID      string         `json:"resource_id"`
	InputParameters map[string]any `json:"input_parameters"`
}

// Params are Watcher's actuator parameters.
type Params struct {
	Actions []Spec `json:"actions"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"actions": {Type: "array", Default: []any{}, Description: "Actions to be executed.",
			Items: &params.Property{Type: "object", Required: []string{"action_type"},
				Properties: map[string]*params.Property{
					"action_type":      {Type: "string"},
					"resource_id":      {Type: "string"},
					"input_parameters": {Type: "object"},
				}}},
	}}
}

// Actuator is the strategy.
type Actuator struct {
	actions []action.Action
}

var _ strategy.Strategy = (*Actuator)(nil)

// New validates every action.
func New(p Params, _ *slog.Logger) (*Actuator, error) {
	a := &Actuator{}
	for i, s := range p.Actions {
		params := maps.Clone(s.InputParameters)
		if params == nil {
			params = map[string]any{}
		}
		if s.ResourceID != "" {
			params["resource_id"] = s.ResourceID
		}
		act := action.Action{Type: action.Type(s.ActionType), InputParameters: params}
		if err := action.Validate(&act); err != nil {
			return nil, fmt.Errorf("parameter \"actions\"[%d]: %w", i, err)
		}
		act.Description = act.Type.Description()
		a.actions = append(a.actions, act)
	}
	return a, nil
}

// Execute returns the actions, and the moves their migrations make.
func (a *Actuator) Execute(_ context.Context, in *strategy.Input) (*strategy.Solution, error) {
	sol := &strategy.Solution{}
	for _, act := range a.actions {
		act.InputParameters = maps.Clone(act.InputParameters)
		sol.Actions = append(sol.Actions, act)
		if act.Type != action.Migrate && act.Type != action.SimMigrate {
			continue
		}
		dst := act.Param("destination_node")
		id := act.Param("resource_id")
		if dst == "" || in == nil || in.Index == nil {
			continue
		}
		if _, ok := in.Index.InstanceByUUID[id]; !ok {
			return nil, fmt.Errorf("migrate: instance %q is not in the model", id)
		}
		if _, ok := in.Index.HostByName[dst]; !ok {
			return nil, fmt.Errorf("migrate: destination %q is not a host of the model", dst)
		}
		sol.Moves = append(sol.Moves, model.Move{Instance: id, To: dst})
	}
	return sol, nil
}
