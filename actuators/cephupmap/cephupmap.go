// Package cephupmap is the ceph_upmap actuator: it sets a placement group's
// pg-upmap-items exceptions (`ceph osd pg-upmap-items`, or
// `osd rm-pg-upmap-items` for an empty list) through a mon command.
//
// The action carries the items it replaces (input_parameters.previous): the
// precondition skips the action when the PG's items are no longer those, so
// a plan computed on an older OSD map never overwrites someone else's
// change. It changes one PG's exceptions and nothing else.
package cephupmap

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Deps are the cluster's mons; *cephmon.Client is one.
type Deps struct {
	Mon cephmon.Mon
}

// Config has no settings; it keeps the constructor's shape.
type Config struct{}

// Upmap sets pg-upmap-items.
type Upmap struct {
	mon    cephmon.Mon
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*Upmap)(nil)
	_ actuators.Reconciler = (*Upmap)(nil)
)

// New checks deps.
func New(_ Config, deps Deps, logger *slog.Logger) (*Upmap, error) {
	if deps.Mon == nil {
		return nil, fmt.Errorf("ceph_upmap: a Ceph connection is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Upmap{mon: deps.Mon, logger: logger.With("component", "actuators/cephupmap")}, nil
}

type params struct {
	pgid     string
	mappings []action.UpmapPair
	// previous is nil when the action does not say what it replaces.
	previous []action.UpmapPair
}

func parse(a action.Action) (params, error) {
	var p params
	var err error
	if p.pgid, err = actuators.StringParam(a, "pgid"); err != nil {
		return p, err
	}
	if _, _, err := cephmon.ParsePGID(p.pgid); err != nil {
		return p, fmt.Errorf("ceph_upmap: input_parameters.pgid: %w", err)
	}
	if p.mappings, err = action.DecodeUpmap(a.InputParameters["mappings"]); err != nil {
		return p, fmt.Errorf("ceph_upmap: input_parameters.mappings: %w", err)
	}
	if v, ok := a.InputParameters["previous"]; ok {
		if p.previous, err = action.DecodeUpmap(v); err != nil {
			return p, fmt.Errorf("ceph_upmap: input_parameters.previous: %w", err)
		}
		if p.previous == nil {
			p.previous = []action.UpmapPair{}
		}
	}
	return p, nil
}

// Precondition checks, on the current OSD map, that the PG exists, its
// items are still the plan's previous ones (and not already the new ones),
// every target OSD exists and is up and in, and every item replaces an OSD
// CRUSH actually chose for the PG. Otherwise the action is SKIPPED.
func (u *Upmap) Precondition(ctx context.Context, a action.Action) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	m, err := cephmon.ReadOSDMap(ctx, u.mon)
	if err != nil {
		return err
	}
	if !m.PGExists(p.pgid) {
		return actuators.Skip("pg %s does not exist", p.pgid)
	}
	current := m.Upmap(p.pgid)
	if cephmon.SameUpmap(current, p.mappings) {
		return actuators.Skip("pg %s already has pg_upmap_items %s", p.pgid, cephmon.FormatUpmap(p.mappings))
	}
	if p.previous != nil && !cephmon.SameUpmap(current, p.previous) {
		return actuators.Skip("pg %s has pg_upmap_items %s, the plan expected %s", p.pgid, cephmon.FormatUpmap(current), cephmon.FormatUpmap(p.previous))
	}
	for _, it := range p.mappings {
		exists, up, in, _ := m.OSD(it.To)
		if !exists || !up || !in {
			return actuators.Skip("target osd.%d is not up and in", it.To)
		}
	}
	if len(p.mappings) == 0 {
		return nil
	}
	pm, err := cephmon.ReadPGMap(ctx, u.mon, p.pgid)
	if err != nil {
		return err
	}
	raw := cephmon.RawSet(pm.Up, current)
	for _, it := range p.mappings {
		if !slices.Contains(raw, it.From) {
			return actuators.Skip("osd.%d is not in pg %s's CRUSH mapping %v", it.From, p.pgid, raw)
		}
		if slices.Contains(raw, it.To) {
			return actuators.Skip("osd.%d already holds pg %s (CRUSH mapping %v)", it.To, p.pgid, raw)
		}
	}
	return nil
}

// Execute sets the PG's items (or removes them for an empty list).
func (u *Upmap) Execute(ctx context.Context, a action.Action, _ func(float64)) error {
	p, err := parse(a)
	if err != nil {
		return err
	}
	if len(p.mappings) == 0 {
		_, err = u.mon.Command(ctx, "osd rm-pg-upmap-items", map[string]any{"pgid": p.pgid})
	} else {
		// OSD ids must be JSON integers: from, to, from, to…
		ids := make([]int, 0, 2*len(p.mappings))
		for _, it := range p.mappings {
			ids = append(ids, it.From, it.To)
		}
		_, err = u.mon.Command(ctx, "osd pg-upmap-items", map[string]any{"pgid": p.pgid, "id": ids})
	}
	if err != nil {
		return fmt.Errorf("set pg_upmap_items of pg %s to %s: %w", p.pgid, cephmon.FormatUpmap(p.mappings), err)
	}
	u.logger.Info("Set pg_upmap_items", "pgid", p.pgid, "items", cephmon.FormatUpmap(p.mappings), "previous", cephmon.FormatUpmap(p.previous))
	return nil
}

// Reconcile reports whether the PG's items are the action's.
func (u *Upmap) Reconcile(ctx context.Context, a action.Action) (bool, error) {
	p, err := parse(a)
	if err != nil {
		return false, err
	}
	m, err := cephmon.ReadOSDMap(ctx, u.mon)
	if err != nil {
		return false, err
	}
	return cephmon.SameUpmap(m.Upmap(p.pgid), p.mappings), nil
}
