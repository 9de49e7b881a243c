// Package cephreweight is the ceph_reweight actuator: it sets an OSD's
// override weight (`ceph osd reweight`) through a mon command.
//
// The action carries the weight it replaces (input_parameters
// previous_weight): the precondition skips the action when the OSD's weight
// is no longer that, so a plan computed on an older OSD map never undoes
// someone else's change. It changes one OSD's override weight and nothing
// else (not its CRUSH weight).
package cephreweight

import (
	"context"
	"fmt"
	"log/slog"
	"math"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Tolerance is how close two override weights must be to be equal: Ceph
// stores them in 16.16 fixed point, so 0.85 reads back as 0.8499908.
const Tolerance = 1e-3

// Deps are the cluster's mons; *cephmon.Client is one.
type Deps struct {
	Mon cephmon.Mon
}

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// Reweight sets override weights.
type Reweight struct {
	mon    cephmon.Mon
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*Reweight)(nil)
	_ actuators.Reconciler = (*Reweight)(nil)
)

// New checks deps.
func New(_ Config, deps Deps, logger *slog.Logger) (*Reweight, error) {
	if deps.Mon == nil {
		return nil, fmt.Errorf("ceph_reweight: a Ceph connection is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reweight{mon: deps.Mon, logger: logger.With("component", "actuators/cephreweight")}, nil
}

type params struct {
	osd    int
	weight float64
	// previous is NaN when the action does not say what it replaces.
	previous float64
}

func parse(a action.Action) (params, error) {
	p := params{previous: math.NaN()}
	var err error
	if p.osd, err = actuators.IntParam(a, "osd_id"); err != nil {
		return p, err
	}
	if p.osd < 0 {
		return p, fmt.Errorf("ceph_reweight: input_parameters.osd_id %d must not be negative", p.osd)
	}
	if p.weight, err = actuators.FloatParam(a, "weight"); err != nil {
		return p, err
	}
	if p.weight < 0 || p.weight > 1 {
		return p, fmt.Errorf("ceph_reweight: input_parameters.weight %v must be within [0, 1]", p.weight)
	}
	if _, ok := a.InputParameters["previous_weight"]; ok {
		if p.previous, err = actuators.FloatParam(a, "previous_weight"); err != nil {
			return p, err
		}
	}
	return p, nil
}

func same(a, b float64) bool { return math.Abs(a-b) < Tolerance }

// Precondition checks, on the current OSD map, that the OSD exists and its
// weight is still the plan's previous one (and not already the new one).
func (r *Reweight) Precondition(ctx context.Context, a action.Action) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	m, err := cephmon.ReadOSDMap(ctx, r.mon)
	if err != nil {
		return err
	}
	exists, _, _, w := m.OSD(p.osd)
	switch {
	case !exists:
		return actuators.Skip("osd.%d does not exist", p.osd)
	case same(w, p.weight):
		return actuators.Skip("osd.%d already has reweight %.4f", p.osd, w)
	case !math.IsNaN(p.previous) && !same(w, p.previous):
		return actuators.Skip("osd.%d has reweight %.4f, the plan expected %.4f", p.osd, w, p.previous)
	}
	return nil
}

// Execute sets the weight.
func (r *Reweight) Execute(ctx context.Context, a action.Action, _ func(float64)) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	// The id is a JSON integer and the weight always has a decimal point.
	if _, err := r.mon.Command(ctx, "osd reweight", map[string]any{"id": p.osd, "weight": cephmon.Float(p.weight)}); err != nil {
		return fmt.Errorf("reweight osd.%d to %.4f: %w", p.osd, p.weight, err)
	}
	r.logger.Info("Reweighted OSD", "osd", p.osd, "weight", p.weight, "previous", p.previous)
	return nil
}

// Reconcile reports whether the OSD has the action's weight.
func (r *Reweight) Reconcile(ctx context.Context, a action.Action) (bool, error) {
	p, err := parse(a)
	if err != nil {
		return false, err
	}
	m, err := cephmon.ReadOSDMap(ctx, r.mon)
	if err != nil {
		return false, err
	}
	exists, _, _, w := m.OSD(p.osd)
	return exists && same(w, p.weight), nil
}
