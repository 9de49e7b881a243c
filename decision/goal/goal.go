// Package goal defines the optimisation goals (Watcher's names where they
// exist) and their efficacy specifications: the indicators a plan for the
// goal reports and how its global efficacy is derived from them.
//
// Strategies measure indicator values; Efficacy turns them into the named,
// described, unit-carrying lists the API shows. The package computes nothing
// about clusters itself.
package goal

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Goal names.
const (
	ServerConsolidation = "server_consolidation"
	WorkloadBalancing   = "workload_balancing"
	ClusterMaintaining  = "cluster_maintaining"
	StorageBalancing    = "storage_balancing"
	NoisyNeighbor       = "noisy_neighbor"
	SavingEnergy        = "saving_energy"
	Dummy               = "dummy"
	Unclassified        = "unclassified"
)

// IndicatorSpec describes one efficacy indicator.
type IndicatorSpec struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Unit is nil for counts (Watcher serialises it as null).
	Unit *string `json:"unit"`
	// Schema is the JSON schema of the value, as a string (Watcher's form).
	Schema string `json:"schema"`
}

// Indicator is a measured indicator.
type Indicator struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Unit        *string `json:"unit"`
	Value       float64 `json:"value"`
}

// Goal is one optimisation goal.
type Goal struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	// EfficacySpecification lists the indicators (Watcher's
	// efficacy_specification).
	EfficacySpecification []IndicatorSpec `json:"efficacy_specification"`
	// GlobalEfficacy lists the global efficacy indicators derived from the
	// indicators.
	GlobalEfficacy []IndicatorSpec `json:"global_efficacy_specification"`
	global         func(map[string]float64) map[string]float64
}

func unit(s string) *string { return &s }

func spec(name, desc string, u *string, min float64) IndicatorSpec {
	schema, _ := json.Marshal(map[string]any{"type": "number", "minimum": min})
	return IndicatorSpec{Name: name, Description: desc, Unit: u, Schema: string(schema)}
}

func count(name, desc string) IndicatorSpec { return spec(name, desc, nil, 0) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * a / b
}

// All returns every goal, in a stable order.
func All() []Goal {
	pct := unit("%")
	return []Goal{
		{
			Name: ServerConsolidation, DisplayName: "Server Consolidation",
			EfficacySpecification: []IndicatorSpec{
				count("compute_nodes_count", "The total number of enabled compute nodes."),
				count("released_compute_nodes_count", "The number of compute nodes to be released."),
				count("instance_migrations_count", "The number of VM migrations to be performed."),
				count("active_compute_nodes_after", "The number of compute nodes still running instances after the plan."),
				count("active_compute_nodes_lower_bound", "A lower bound on the compute nodes any placement needs (L2 bin-packing bound)."),
			},
			GlobalEfficacy: []IndicatorSpec{spec("released_nodes_ratio", "Ratio of released compute nodes divided by the total number of enabled compute nodes.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				return map[string]float64{"released_nodes_ratio": ratio(v["released_compute_nodes_count"], v["compute_nodes_count"])}
			},
		},
		{
			Name: WorkloadBalancing, DisplayName: "Workload Balancing",
			EfficacySpecification: []IndicatorSpec{
				count("instance_migrations_count", "The number of VM migrations to be performed."),
				count("instances_count", "The total number of audited instances in strategy."),
				spec("standard_deviation_after_audit", "The value of resulted standard deviation.", nil, 0),
				spec("standard_deviation_before_audit", "The value of original standard deviation.", nil, 0),
				spec("standard_deviation_lower_bound", "A lower bound on the standard deviation any placement reaches.", nil, 0),
			},
			GlobalEfficacy: []IndicatorSpec{spec("live_migrations_count", "The percentage of live migrations performed.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				return map[string]float64{"live_migrations_count": ratio(v["instance_migrations_count"], v["instances_count"])}
			},
		},
		{
			Name: ClusterMaintaining, DisplayName: "Cluster Maintaining",
			EfficacySpecification: []IndicatorSpec{
				count("live_migrate_instance_count", "The number of instances to be live-migrated."),
				count("cold_migrate_instance_count", "The number of instances to be cold-migrated."),
				count("instances_to_evacuate_count", "The number of instances on the hosts to evacuate."),
				count("unplaced_instances_count", "The number of instances no host could take."),
			},
			GlobalEfficacy: []IndicatorSpec{spec("evacuated_instances_ratio", "Ratio of instances moved off the hosts to evacuate.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				moved := v["live_migrate_instance_count"] + v["cold_migrate_instance_count"]
				total := v["instances_to_evacuate_count"]
				if total == 0 {
					return map[string]float64{"evacuated_instances_ratio": 100}
				}
				return map[string]float64{"evacuated_instances_ratio": ratio(moved, total)}
			},
		},
		{
			Name: StorageBalancing, DisplayName: "Storage Balancing",
			EfficacySpecification: []IndicatorSpec{
				count("pg_remaps_count", "The number of placement-group replicas to be remapped."),
				count("pgs_count", "The total number of placement-group replicas."),
				spec("pg_deviation_before", "The largest difference between an OSD's PG count and its weight-proportional target, before.", nil, 0),
				spec("pg_deviation_after", "The same difference after the plan.", nil, 0),
				spec("balancer_score_before", "Ceph balancer score (lower is better, 0 is perfect), before.", nil, 0),
				spec("balancer_score_after", "Ceph balancer score after the plan.", nil, 0),
				spec("utilization_spread_before", "Highest minus lowest OSD utilisation, before.", pct, 0),
				spec("utilization_spread_after", "Highest minus lowest OSD utilisation, after.", pct, 0),
			},
			GlobalEfficacy: []IndicatorSpec{spec("pgs_remapped_ratio", "Ratio of placement-group replicas remapped.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				return map[string]float64{"pgs_remapped_ratio": ratio(v["pg_remaps_count"], v["pgs_count"])}
			},
		},
		{
			Name: NoisyNeighbor, DisplayName: "Noisy Neighbor",
			EfficacySpecification: []IndicatorSpec{
				count("instance_migrations_count", "The number of VM migrations to be performed."),
				count("contended_hosts_before", "The number of hosts above the contention thresholds, before."),
				count("contended_hosts_after", "The number of hosts above the contention thresholds, after."),
			},
			GlobalEfficacy: []IndicatorSpec{spec("contention_resolved_ratio", "Ratio of contended hosts relieved.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				b := v["contended_hosts_before"]
				if b == 0 {
					return map[string]float64{"contention_resolved_ratio": 100}
				}
				return map[string]float64{"contention_resolved_ratio": ratio(b-v["contended_hosts_after"], b)}
			},
		},
		{
			Name: SavingEnergy, DisplayName: "Saving Energy",
			EfficacySpecification: []IndicatorSpec{
				count("compute_nodes_count", "The total number of compute nodes."),
				count("powered_off_nodes_count", "The number of compute nodes to be powered off."),
				count("powered_on_nodes_count", "The number of compute nodes to be powered on."),
				spec("power_saved_watts", "Estimated power draw saved.", unit("W"), -1e12),
			},
			GlobalEfficacy: []IndicatorSpec{spec("powered_off_nodes_ratio", "Ratio of compute nodes powered off.", pct, 0)},
			global: func(v map[string]float64) map[string]float64 {
				return map[string]float64{"powered_off_nodes_ratio": ratio(v["powered_off_nodes_count"], v["compute_nodes_count"])}
			},
		},
		{Name: Dummy, DisplayName: "Dummy goal"},
		{Name: Unclassified, DisplayName: "Unclassified"},
	}
}

// Get returns the goal with the given name.
func Get(name string) (Goal, bool) {
	for _, g := range All() {
		if g.Name == name {
			return g, true
		}
	}
	return Goal{}, false
}

// Names lists the goal names.
func Names() []string {
	var out []string
	for _, g := range All() {
		out = append(out, g.Name)
	}
	return out
}

// Efficacy turns measured values into the goal's indicator list and global
// efficacy, in specification order. A value for a name the specification
// does not list is an error (a strategy bug); a listed name without a value
// is reported as 0.
func (g Goal) Efficacy(values map[string]float64) (indicators, global []Indicator, err error) {
	for name := range values {
		if !slices.ContainsFunc(g.EfficacySpecification, func(s IndicatorSpec) bool { return s.Name == name }) {
			return nil, nil, fmt.Errorf("goal %s: indicator %q is not in its efficacy specification", g.Name, name)
		}
	}
	indicators = []Indicator{}
	for _, s := range g.EfficacySpecification {
		indicators = append(indicators, Indicator{Name: s.Name, Description: s.Description, Unit: s.Unit, Value: values[s.Name]})
	}
	global = []Indicator{}
	if g.global != nil {
		gv := g.global(values)
		for _, s := range g.GlobalEfficacy {
			global = append(global, Indicator{Name: s.Name, Description: s.Description, Unit: s.Unit, Value: gv[s.Name]})
		}
	}
	return indicators, global, nil
}
