package decision

import (
	"log/slog"

	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
	"github.com/ballast-cloud/ballast/decision/strategy/actuator"
	"github.com/ballast-cloud/ballast/decision/strategy/consolidation"
	"github.com/ballast-cloud/ballast/decision/strategy/dummy"
	"github.com/ballast-cloud/ballast/decision/strategy/maintenance"
	"github.com/ballast-cloud/ballast/decision/strategy/noisyneighbor"
	"github.com/ballast-cloud/ballast/decision/strategy/savingenergy"
	"github.com/ballast-cloud/ballast/decision/strategy/stabilization"
	"github.com/ballast-cloud/ballast/decision/strategy/storagebalance"
	"github.com/ballast-cloud/ballast/decision/strategy/workloadbalance"
)

// builtinStrategies is the one place strategies are registered: name,
// display name, goal, parameter schema (with defaults) and constructor. The
// first strategy listed for a goal is that goal's default.
func builtinStrategies() []strategy.Definition {
	return []strategy.Definition{
		define("vm_workload_consolidation", "VM Workload Consolidation Strategy", goal.ServerConsolidation,
			consolidation.Schema(true), consolidation.New),
		define("node_resource_consolidation", "Node Resource Consolidation Strategy", goal.ServerConsolidation,
			consolidation.Schema(false), consolidation.New),
		define("workload_stabilization", "Workload stabilization", goal.WorkloadBalancing,
			stabilization.Schema(), stabilization.New),
		define("workload_balance", "Workload Balance Migration Strategy", goal.WorkloadBalancing,
			workloadbalance.Schema(), workloadbalance.New),
		define("host_maintenance", "Host Maintenance Strategy", goal.ClusterMaintaining,
			maintenance.Schema(), maintenance.New),
		define("storage_balance", "Ceph Storage Balance Strategy", goal.StorageBalancing,
			storagebalance.Schema(), storagebalance.New),
		define("noisy_neighbor", "Noisy Neighbor", goal.NoisyNeighbor,
			noisyneighbor.Schema(), noisyneighbor.New),
		define("saving_energy", "Saving Energy Strategy", goal.SavingEnergy,
			savingenergy.Schema(), savingenergy.New),
		define("dummy", "Dummy strategy", goal.Dummy,
			dummy.Schema(), dummy.New),
		define("actuator", "Actuator", goal.Unclassified,
			actuator.Schema(), actuator.New),
	}
}

// define adapts a strategy package's typed constructor to a Definition.
func define[P any, S strategy.Strategy](name, display, goalName string, schema params.Schema,
	mk func(P, *slog.Logger) (S, error)) strategy.Definition {
	return strategy.Definition{
		Name: name, DisplayName: display, Goal: goalName, Params: schema,
		New: func(raw map[string]any, logger *slog.Logger) (strategy.Strategy, error) {
			var p P
			if err := strategy.DecodeParams(raw, &p); err != nil {
				return nil, err
			}
			return mk(p, logger)
		},
	}
}
