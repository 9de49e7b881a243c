// Package simmigrate is the sim_migrate actuator: it migrates an instance of
// the simulated cluster (decision/sim), which takes time proportional to the
// instance's memory, so that plans can be applied end to end without
// infrastructure.
//
// It acts on the simulator only; it must never reach real hosts.
package simmigrate

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
)

// Cluster is what the actuator needs of the simulator; *sim.Sim is one.
// Execute of a sim_migrate action migrates to destination_node, or to the
// host the simulator's scheduler picks when there is none.
type Cluster interface {
	Snapshot() *model.Cluster
	Execute(ctx context.Context, a action.Action) error
}

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// Deps are the simulator.
type Deps struct {
	Cluster Cluster
}

// Migrate migrates simulated instances.
type Migrate struct {
	cluster Cluster
	logger  *slog.Logger
}

var (
	_ actuators.Actuator   = (*Migrate)(nil)
	_ actuators.Reconciler = (*Migrate)(nil)
)

// New checks deps.
func New(_ Config, deps Deps, logger *slog.Logger) (*Migrate, error) {
	if deps.Cluster == nil {
		return nil, fmt.Errorf("sim_migrate: a simulated cluster is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Migrate{cluster: deps.Cluster, logger: logger.With("component", "actuators/simmigrate")}, nil
}

type params struct {
	instance, source, dest string
}

func parse(a action.Action) (params, error) {
	var p params
	var err error
	if p.instance, err = actuators.StringParam(a, "resource_id"); err != nil {
		return p, err
	}
	if p.source, err = actuators.StringParam(a, "source_node"); err != nil {
		return p, err
	}
	p.dest = a.Param("destination_node")
	return p, nil
}

func find(c *model.Cluster, uuid string) *model.Instance {
	for i := range c.Instances {
		if c.Instances[i].UUID == uuid {
			return &c.Instances[i]
		}
	}
	return nil
}

// Precondition checks that the instance still runs on source_node, is not
// migrating, and that destination_node exists and takes new instances.
func (m *Migrate) Precondition(_ context.Context, a action.Action) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	c := m.cluster.Snapshot()
	in := find(c, p.instance)
	switch {
	case in == nil:
		return actuators.Skip("instance %s no longer exists", p.instance)
	case in.State == model.InstanceMigrating:
		return actuators.Skip("instance %s is already migrating", p.instance)
	case p.dest != "" && in.Host == p.dest:
		return actuators.Skip("instance %s already runs on %s", p.instance, p.dest)
	case in.Host != p.source:
		return actuators.Skip("instance %s runs on %s, not on source_node %s", p.instance, in.Host, p.source)
	}
	if p.dest == "" {
		return nil
	}
	for i := range c.Hosts {
		if h := &c.Hosts[i]; h.Name == p.dest {
			if !h.Schedulable() {
				return actuators.Skip("destination_node %s is %s and powered %s", p.dest, h.EffectiveState(), h.EffectivePower())
			}
			return nil
		}
	}
	return actuators.Skip("destination_node %s no longer exists", p.dest)
}

// Execute migrates the instance; the simulator takes the migration's time.
func (m *Migrate) Execute(ctx context.Context, a action.Action, _ func(float64)) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	if err := m.cluster.Execute(ctx, a); err != nil {
		return fmt.Errorf("simulated migration of %s from %s: %w", p.instance, p.source, err)
	}
	return nil
}

// Reconcile reports whether the instance now runs on the destination (or,
// without one, anywhere but the source).
func (m *Migrate) Reconcile(_ context.Context, a action.Action) (bool, error) {
	p, err := parse(a)
	if err != nil {
		return false, err
	}
	in := find(m.cluster.Snapshot(), p.instance)
	switch {
	case in == nil:
		return false, nil
	case in.State == model.InstanceMigrating:
		return false, fmt.Errorf("instance %s is still migrating", p.instance)
	case p.dest != "":
		return in.Host == p.dest, nil
	}
	return in.Host != p.source, nil
}
