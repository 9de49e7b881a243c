// Package actuators owns doing: executing the actions of an action plan on
// real infrastructure (libvirt, Ceph, the host inventory, the simulator).
// Deciding stays in decision/; this package receives decision/action.Action
// values and performs them against fresh state.
//
// The seams, shared by the applier (actuators/applier) and the Watcher API
// that starts plans (web/watcher):
//
//   - Actuator: one per action type, in its own package, registered in one
//     wiring file. It checks its precondition against the world as it is now,
//     then executes.
//   - Reconciler: what an actuator knows to say, after a crash, whether an
//     action that was ONGOING took effect — so no action ever runs twice.
//   - StateStore: where the applier records every action and plan state
//     transition before and after it acts (implemented by the Watcher API's
//     persistence).
package actuators

import (
	"context"
	"errors"
	"fmt"

	"github.com/ballast-cloud/ballast/decision/action"
)

// Actuator performs one action type.
type Actuator interface {
	// Precondition checks a against fresh state. It returns nil to proceed,
	// an error wrapping ErrSkip (with the reason) when the world changed so
	// the action no longer applies, or another error when it cannot tell.
	Precondition(ctx context.Context, a action.Action) error
	// Execute performs a, reporting progress in [0,1] when it can. It must
	// return promptly once ctx is done, aborting what it started when that
	// is safe (a live migration is aborted).
	Execute(ctx context.Context, a action.Action, progress func(float64)) error
}

// Reconciler is implemented by actuators that can observe whether an action
// already took effect (the VM runs on the destination; the upmap is set).
type Reconciler interface {
	Reconcile(ctx context.Context, a action.Action) (done bool, err error)
}

// ErrSkip marks a precondition that no longer holds: the action is SKIPPED
// with the wrapped reason, not FAILED.
var ErrSkip = errors.New("action skipped")

// Skip returns an ErrSkip error with a reason.
func Skip(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSkip, fmt.Sprintf(format, args...))
}

// Action and plan states, Watcher's names.
const (
	StatePending     = "PENDING"
	StateOngoing     = "ONGOING"
	StateSucceeded   = "SUCCEEDED"
	StateFailed      = "FAILED"
	StateCancelling  = "CANCELLING"
	StateCancelled   = "CANCELLED"
	StateSkipped     = "SKIPPED"
	StateDeleted     = "DELETED"
	StateRecommended = "RECOMMENDED"
	StateSuperseded  = "SUPERSEDED"
)

// StateStore persists action and plan states for the applier. Transitions
// are compare-and-set: they fail with ErrStateConflict when the stored state
// is not from, which is how a restarted applier and a cancelling user never
// both act on one action.
type StateStore interface {
	TransitionAction(ctx context.Context, actionID, from, to, message string) error
	TransitionPlan(ctx context.Context, planID, from, to, message string) error
}

// ErrStateConflict is returned by a StateStore when the current state is not
// the expected one.
var ErrStateConflict = errors.New("state changed concurrently")
