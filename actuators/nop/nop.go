// Package nop is the nop actuator: Watcher's "Logging a NOP message". It
// logs the action's message and changes nothing.
package nop

import (
	"context"
	"log/slog"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Nop logs messages.
type Nop struct {
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*Nop)(nil)
	_ actuators.Reconciler = (*Nop)(nil)
)

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// New returns the nop actuator.
func New(_ Config, logger *slog.Logger) (*Nop, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Nop{logger: logger.With("component", "actuators/nop")}, nil
}

// Precondition always holds.
func (n *Nop) Precondition(context.Context, action.Action) error { return nil }

// Execute logs the message.
func (n *Nop) Execute(_ context.Context, a action.Action, _ func(float64)) error {
	n.logger.Info("Nop action", "action", a.ID, "message", a.Param("message"))
	return nil
}

// Reconcile reports a nop done: it has no effect to observe.
func (n *Nop) Reconcile(context.Context, action.Action) (bool, error) { return true, nil }
