// Package maintenance is the host-maintenance strategy (goal
// cluster_maintaining) with Watcher's parameters: it disables a host,
// evacuates every instance from it (live where the instance runs, cold
// otherwise) and puts it into maintenance. With a backup node the instances
// go there if it can take them all; otherwise each instance goes to the host
// the weighted_resource scoring engine ranks best among those the core finds
// feasible (filter → score → normalise → select).
package maintenance

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/scoring"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Params are Watcher's host_maintenance parameters.
type Params struct {
	MaintenanceNode      string `json:"maintenance_node"`
	BackupNode           string `json:"backup_node"`
	DisableLiveMigration bool   `json:"disable_live_migration"`
	DisableColdMigration bool   `json:"disable_cold_migration"`
	// ScoringEngine ranks destinations (default weighted_resource).
	ScoringEngine string `json:"scoring_engine"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"maintenance_node": {Type: "string", Description: "The name of the compute node which need maintenance."},
		"backup_node":      {Type: "string", Description: "The name of the compute node which will backup the maintenance node."},
		"disable_live_migration": {Type: "boolean", Default: false,
			Description: "Disable live migration in a maintenance audit: running instances are cold-migrated."},
		"disable_cold_migration": {Type: "boolean", Default: false,
			Description: "Disable cold migration in a maintenance audit: stopped instances stay."},
		"scoring_engine": {Type: "string", Default: scoring.WeightedResourceName,
			Description: "Scoring engine that ranks destination hosts."},
	}, Required: []string{"maintenance_node"}}
}

// unknownHost is the error for a parameter naming a host that is not in
// the cluster the strategy plans on: the model, less the hosts out of the
// audit scope.
func unknownHost(param, host string) error {
	return &strategy.ParamError{Param: param, Err: fmt.Errorf("%q is not a host in scope", host)}
}

// Maintenance is the strategy.
type Maintenance struct {
	p      Params
	logger *slog.Logger
}

var _ strategy.Strategy = (*Maintenance)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*Maintenance, error) {
	if p.MaintenanceNode == "" {
		return nil, fmt.Errorf("parameter \"maintenance_node\" is required")
	}
	if p.BackupNode == p.MaintenanceNode {
		return nil, &strategy.ParamError{Param: "backup_node", Err: fmt.Errorf("must differ from maintenance_node %q", p.MaintenanceNode)}
	}
	if p.DisableLiveMigration && p.DisableColdMigration {
		return nil, fmt.Errorf("parameters \"disable_live_migration\" and \"disable_cold_migration\": at least one kind of migration must be allowed")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Maintenance{p: p, logger: logger.With("component", "strategy/host_maintenance")}, nil
}

// Execute plans the evacuation.
func (m *Maintenance) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	node, ok := in.Index.HostByName[m.p.MaintenanceNode]
	if !ok {
		return nil, unknownHost("maintenance_node", m.p.MaintenanceNode)
	}
	backup := -1
	if m.p.BackupNode != "" {
		b, ok := in.Index.HostByName[m.p.BackupNode]
		if !ok {
			return nil, unknownHost("backup_node", m.p.BackupNode)
		}
		backup = b
	}
	eng, ok := in.Scorers.Get(m.p.ScoringEngine)
	if !ok {
		return nil, &strategy.ParamError{Param: "scoring_engine", Err: fmt.Errorf("%q is not a registered scoring engine", m.p.ScoringEngine)}
	}
	// Instances whose allowed kind of migration is disabled stay.
	movable := func(i int) bool {
		inst := in.Index.Instance(i)
		if inst.LiveMigratable() {
			return !m.p.DisableLiveMigration || !m.p.DisableColdMigration
		}
		return !m.p.DisableColdMigration
	}
	build := func(onlyBackup bool) (*strategy.Compute, *optimize.State, error) {
		cp, err := strategy.NewCompute(in.Index, strategy.ComputeOptions{
			Allocation: true, CPUCap: 1, MemoryCap: 1, Scorers: in.Scorers,
			ColdOnly: m.p.DisableLiveMigration,
			Movable:  movable,
			// The node receives nothing; Place empties it of the movable
			// instances (closed, not evacuated: instances that may not move
			// stay, and are reported).
			Closed: func(h int) bool { return h == node || (onlyBackup && h != backup) },
		})
		if err != nil {
			return nil, nil, err
		}
		if onlyBackup {
			// The plan enables the backup node if it is disabled.
			cp.Problem.Machines[backup].Closed = false
		}
		st, err := optimize.NewState(cp.Problem, nil)
		return cp, st, err
	}
	var procs []int32 // the instances to move; pinned ones are counted apart
	for _, i := range in.Index.HostInstances[node] {
		if inst := in.Index.Instance(int(i)); inst.Movable() && movable(int(i)) {
			procs = append(procs, i)
		}
	}
	var cp *strategy.Compute
	var st *optimize.State
	var unplaced []int32
	var notes []string
	usedBackup := false
	if backup >= 0 {
		c, s, err := build(true)
		if err != nil {
			return nil, err
		}
		left, err := c.Place(ctx, s, procs, eng)
		if err != nil {
			return nil, err
		}
		if len(left) == 0 {
			cp, st, usedBackup = c, s, true
		} else {
			notes = append(notes, fmt.Sprintf("backup node %s cannot take all %d instances; using every host", m.p.BackupNode, len(procs)))
		}
	}
	if cp == nil {
		c, s, err := build(false)
		if err != nil {
			return nil, err
		}
		left, err := c.Place(ctx, s, procs, eng)
		if err != nil {
			return nil, err
		}
		cp, st, unplaced = c, s, left
	}
	if v := st.Violations(); len(v) > 0 {
		return nil, fmt.Errorf("host_maintenance: placement broke constraints: %v", v)
	}
	assign := st.Assignment()
	host := in.Index.Host(node)
	sol := &strategy.Solution{Moves: cp.Moves(assign)}
	if host.EffectiveState() == "enabled" {
		sol.Actions = append(sol.Actions, action.NewServiceState(host.UUID, host.Name, false, "watcher_maintaining"))
	}
	if usedBackup {
		b := in.Index.Host(backup)
		if !b.Schedulable() {
			sol.Actions = append(sol.Actions, action.NewServiceState(b.UUID, b.Name, true, ""))
		}
	}
	sol.Actions = append(sol.Actions, cp.Migrations(assign)...)
	pinned := 0
	for _, i := range in.Index.HostInstances[node] {
		if cp.Problem.Processes[i].Pinned {
			pinned++
		}
	}
	if len(unplaced) == 0 && pinned == 0 {
		sol.Actions = append(sol.Actions, action.NewHostState(host.UUID, host.Name, "maintenance", "watcher_maintaining"))
	} else {
		notes = append(notes, fmt.Sprintf("%d instances stay on %s (%d found no host, %d may not move)",
			len(unplaced)+pinned, host.Name, len(unplaced), pinned))
	}
	live, cold := cp.LiveAndCold(assign)
	sol.Notes = notes
	sol.Bounds = cp.Bounds(cp.Initial(), assign, strategy.CPU, strategy.Memory)
	sol.Indicators = map[string]float64{
		"live_migrate_instance_count": float64(live),
		"cold_migrate_instance_count": float64(cold),
		"instances_to_evacuate_count": float64(len(in.Index.HostInstances[node])),
		"unplaced_instances_count":    float64(len(unplaced) + pinned),
	}
	m.logger.Debug("Maintenance planned", "host", host.Name, "live", live, "cold", cold, "left", len(unplaced)+pinned)
	return sol, nil
}
