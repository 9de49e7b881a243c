// Package hoststate is the change_host_state actuator: it sets a hypervisor
// enabled, disabled or in maintenance in Ballast's inventory, and, when a
// Nova hook is configured, enables or disables the host's nova-compute
// service to match (maintenance disables it).
//
// The inventory is whatever implements Inventory (the Watcher API's
// persistence, or the simulator); the actuator records, it does not decide.
package hoststate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Inventory records host states ("enabled", "disabled", "maintenance").
type Inventory interface {
	SetHostState(ctx context.Context, host, state, reason string) error
}

// StateReader is the inventory's optional read side. With it the
// precondition skips hosts the inventory does not know, and an interrupted
// action is reconciled; without it such an action ends FAILED.
type StateReader interface {
	// HostState returns the host's state, or an error wrapping
	// ErrUnknownHost.
	HostState(ctx context.Context, host string) (string, error)
}

// ErrUnknownHost is what a StateReader wraps for a host it does not know.
var ErrUnknownHost = errors.New("host is not in the inventory")

// NovaHook sets a host's nova-compute service; *nova.Client is one.
type NovaHook interface {
	SetServiceEnabled(ctx context.Context, host string, enabled bool, reason string) error
}

// Deps are where the state goes.
type Deps struct {
	// Inventory is required.
	Inventory Inventory
	// Nova is optional.
	Nova NovaHook
}

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// HostState sets host states.
type HostState struct {
	inv    Inventory
	nova   NovaHook
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*HostState)(nil)
	_ actuators.Reconciler = (*HostState)(nil)
)

// New checks deps.
func New(_ Config, deps Deps, logger *slog.Logger) (*HostState, error) {
	if deps.Inventory == nil {
		return nil, errors.New("change_host_state: an inventory is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &HostState{inv: deps.Inventory, nova: deps.Nova, logger: logger.With("component", "actuators/hoststate")}, nil
}

type params struct {
	host, state, reason string
}

func parse(a action.Action) (params, error) {
	var p params
	var err error
	if p.host, err = actuators.StringParam(a, "resource_name"); err != nil {
		return p, err
	}
	if p.state, err = actuators.StringParam(a, "state"); err != nil {
		return p, err
	}
	switch p.state {
	case "enabled", "disabled", "maintenance":
	default:
		return p, fmt.Errorf("change_host_state: input_parameters.state %q is not enabled, disabled or maintenance", p.state)
	}
	p.reason = a.Param("reason")
	return p, nil
}

// Precondition skips a host the inventory does not know (when it can tell).
func (h *HostState) Precondition(ctx context.Context, a action.Action) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	r, ok := h.inv.(StateReader)
	if !ok {
		return nil
	}
	if _, err := r.HostState(ctx, p.host); errors.Is(err, ErrUnknownHost) {
		return actuators.Skip("host %s is not in the inventory", p.host)
	} else if err != nil {
		return fmt.Errorf("state of host %s: %w", p.host, err)
	}
	return nil
}

// Execute sets Nova's service first (the step most likely to fail), then
// the inventory.
func (h *HostState) Execute(ctx context.Context, a action.Action, _ func(float64)) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	if h.nova != nil {
		reason := p.reason
		if p.state == "maintenance" && reason == "" {
			reason = "maintenance"
		}
		if err := h.nova.SetServiceEnabled(ctx, p.host, p.state == "enabled", reason); err != nil {
			return fmt.Errorf("set nova-compute on %s %s: %w", p.host, p.state, err)
		}
	}
	if err := h.inv.SetHostState(ctx, p.host, p.state, p.reason); err != nil {
		return fmt.Errorf("set host %s %s in the inventory: %w", p.host, p.state, err)
	}
	h.logger.Info("Set host state", "host", p.host, "state", p.state, "reason", p.reason, "nova", h.nova != nil)
	return nil
}

// Reconcile reports whether the inventory has the action's state.
func (h *HostState) Reconcile(ctx context.Context, a action.Action) (bool, error) {
	p, err := parse(a)
	if err != nil {
		return false, err
	}
	r, ok := h.inv.(StateReader)
	if !ok {
		return false, fmt.Errorf("the inventory cannot report host states: %w", actuators.ErrNotObservable)
	}
	st, err := r.HostState(ctx, p.host)
	if errors.Is(err, ErrUnknownHost) {
		return false, nil
	}
	return st == p.state, err
}
