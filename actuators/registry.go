package actuators

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ballast-cloud/ballast/decision/action"
)

// Registry maps each action type to the actuator that performs it. It is
// built in one place (actuators/setup) from configuration; an action type
// without an entry cannot be executed.
type Registry map[action.Type]Actuator

// Lookup returns the actuator for t, or an error naming the types this
// registry can perform.
func (r Registry) Lookup(t action.Type) (Actuator, error) {
	if a, ok := r[t]; ok && a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("no actuator for action type %q (configured: %s)", t, strings.Join(r.Types(), ", "))
}

// Types lists the registered action types, sorted.
func (r Registry) Types() []string {
	out := make([]string, 0, len(r))
	for t := range r {
		out = append(out, string(t))
	}
	slices.Sort(out)
	return out
}

// SkipReason returns the reason an ErrSkip error carries (its text without
// the "action skipped: " prefix).
func SkipReason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrSkip.Error()+": ")
}

// ErrNotObservable is wrapped by a Reconciler that has no way to observe
// whether an action took effect (the inventory cannot report host states):
// the applier records the interrupted action FAILED at once instead of
// asking again.
var ErrNotObservable = errors.New("effect cannot be observed")
