package applier

import (
	"context"
	"errors"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Check is the dry-run verdict on one action.
type Check struct {
	ActionID string      `json:"uuid"`
	Type     action.Type `json:"action_type"`
	// Result is "ok" (it would run), "skip" (its precondition no longer
	// holds) or "error" (bad parameters, or the precondition failed).
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// Dry-run results.
const (
	CheckOK    = "ok"
	CheckSkip  = "skip"
	CheckError = "error"
)

// DryRun validates a plan without touching anything: its shape (as Start
// does), then each PENDING action's parameters and precondition against the
// world as it is now. Nothing is recorded and no actuator executes. An
// action whose precondition depends on an earlier action of the same plan
// (a migration onto a host the plan first enables) is judged on today's
// state, so it may say "skip" where the real run would not.
func (a *Applier) DryRun(ctx context.Context, p Plan) ([]Check, error) {
	r, err := a.prepare(p)
	if err != nil {
		return nil, err
	}
	var out []Check
	for i, st := range r.state {
		if st != actuators.StatePending {
			continue
		}
		act := r.acts[i]
		c := Check{ActionID: act.ID, Type: act.Type, Result: CheckOK}
		impl, _ := a.deps.Actuators.Lookup(act.Type)
		if err := action.Validate(&act); err != nil {
			c.Result, c.Message = CheckError, err.Error()
		} else if err := impl.Precondition(ctx, act); errors.Is(err, actuators.ErrSkip) {
			c.Result, c.Message = CheckSkip, msgAutoSkip+actuators.SkipReason(err)
		} else if err != nil {
			c.Result, c.Message = CheckError, "Precondition: "+err.Error()
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		out = append(out, c)
	}
	return out, nil
}
