// Package dummy is Watcher's dummy strategy (goal dummy), for API and
// applier tests: two nop actions carrying para2 and a sleep of para1
// seconds. It reads nothing of the cluster.
package dummy

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Params are Watcher's dummy parameters.
type Params struct {
	Para1 float64 `json:"para1"`
	Para2 string  `json:"para2"`
}

// Schema is the parameter schema (Watcher's, with its defaults and range).
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"para1": {Type: "number", Default: 3.2, Minimum: params.Float(1.0), Maximum: params.Float(10.2),
			Description: "number parameter example"},
		"para2": {Type: "string", Default: "hello", Description: "string parameter example"},
	}}
}

// Dummy is the strategy.
type Dummy struct{ p Params }

var _ strategy.Strategy = (*Dummy)(nil)

// New validates p.
func New(p Params, _ *slog.Logger) (*Dummy, error) {
	if p.Para1 < 1 || p.Para1 > 10.2 {
		return nil, fmt.Errorf("parameter \"para1\": %v must be within [1.0, 10.2]", p.Para1)
	}
	return &Dummy{p: p}, nil
}

// Execute returns nop, nop, sleep.
func (d *Dummy) Execute(context.Context, *strategy.Input) (*strategy.Solution, error) {
	return &strategy.Solution{Actions: []action.Action{
		action.NewNop(d.p.Para2),
		action.NewNop("Welcome"),
		action.NewSleep(d.p.Para1),
	}}, nil
}
