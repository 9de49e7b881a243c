// Package novaservice is the change_nova_service_state actuator, Watcher's:
// it enables or disables a host's nova-compute service so that Nova's
// scheduler places new instances there or not.
//
// It acts through Services (*nova.Client, or the simulator in a
// simulator-only server) and decides nothing.
package novaservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/nova"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Services reads and sets hosts' nova-compute services; *nova.Client is
// one. ServiceEnabled wraps nova.ErrNoService for a host without one.
type Services interface {
	ServiceEnabled(ctx context.Context, host string) (bool, error)
	SetServiceEnabled(ctx context.Context, host string, enabled bool, reason string) error
}

// Deps are the compute services.
type Deps struct {
	Services Services
}

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// ServiceState sets nova-compute services.
type ServiceState struct {
	svc    Services
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*ServiceState)(nil)
	_ actuators.Reconciler = (*ServiceState)(nil)
)

// New checks deps.
func New(_ Config, deps Deps, logger *slog.Logger) (*ServiceState, error) {
	if deps.Services == nil {
		return nil, errors.New("change_nova_service_state: a Nova endpoint is required (actuators.nova)")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ServiceState{svc: deps.Services, logger: logger.With("component", "actuators/novaservice")}, nil
}

type params struct {
	host    string
	enabled bool
	reason  string
}

func parse(a action.Action) (params, error) {
	var p params
	var err error
	if p.host, err = actuators.StringParam(a, "resource_name"); err != nil {
		return p, err
	}
	state, err := actuators.StringParam(a, "state")
	if err != nil {
		return p, err
	}
	switch state {
	case "enabled", "disabled":
	default:
		return p, fmt.Errorf("change_nova_service_state: input_parameters.state %q is not enabled or disabled", state)
	}
	p.enabled, p.reason = state == "enabled", a.Param("disabled_reason")
	return p, nil
}

// Precondition skips a host that has no nova-compute service.
func (s *ServiceState) Precondition(ctx context.Context, a action.Action) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	if _, err := s.svc.ServiceEnabled(ctx, p.host); errors.Is(err, nova.ErrNoService) {
		return actuators.Skip("host %s has no nova-compute service", p.host)
	} else if err != nil {
		return err
	}
	return nil
}

// Execute enables or disables the service.
func (s *ServiceState) Execute(ctx context.Context, a action.Action, _ func(float64)) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	return s.svc.SetServiceEnabled(ctx, p.host, p.enabled, p.reason)
}

// Reconcile reports whether the service has the action's status.
func (s *ServiceState) Reconcile(ctx context.Context, a action.Action) (bool, error) {
	p, err := parse(a)
	if err != nil {
		return false, err
	}
	on, err := s.svc.ServiceEnabled(ctx, p.host)
	if errors.Is(err, nova.ErrNoService) {
		return false, nil
	}
	return err == nil && on == p.enabled, err
}
