// Package optimize is the one optimisation core every strategy shares: a
// multi-resource reassignment local search in the shape of the Google
// ROADEF/EURO 2012 machine-reassignment problem, extended with the terms a
// cloud needs.
//
// A Problem has machines (hosts, OSDs), processes (instances, PG replicas)
// with an initial machine, resources with capacities, and services that group
// processes under conflict (pairwise distinct machines or locations), spread
// (minimum distinct locations) and dependency rules. Hard constraints:
// capacity, including transient resources that a moving process consumes on
// both its source and its destination (a live migration's memory), conflict,
// spread, dependency, pinned processes, closed machines (may not receive),
// evacuated machines (must end empty), zone pins and a migration budget.
// The objective is a weighted sum of ROADEF's load, balance and move costs
// (exact int64 arithmetic) plus a fixed cost per active machine, a utilisation
// variance term for balancing and a packing term for consolidation (float64).
//
// State holds an assignment with incremental usage and cost, and evaluates a
// move's cost delta and feasibility in O(resources) without copying. The
// searches (Repair, Drain, Descent, Anneal) all run on State, and Solve
// chains them under a context deadline: it is anytime (it returns the best
// assignment found when the budget ends) and deterministic for a given seed
// whenever it stops on its own criteria rather than on the clock.
//
// The package knows nothing of clouds, Ceph or ROADEF files; adapters in the
// strategy packages and in decision/roadef map their inputs onto Problem.
package optimize

import (
	"errors"
	"fmt"
	"math"
)

// Resource is one dimension of capacity.
type Resource struct {
	Name string
	// Transient resources are consumed on both the source and the
	// destination of a move (ROADEF's transient usage; a live migration's
	// memory): a machine must hold the union of its original and final
	// processes.
	Transient bool
	// LoadWeight weighs the load cost Σ_m max(0, U(m) − Safety(m)).
	LoadWeight int64
	// BalanceWeight weighs the utilisation variance Σ_m (U(m)/C(m) − μ)²
	// over open machines, μ being the cluster-wide utilisation.
	BalanceWeight float64
	// PackWeight rewards full machines: it adds −Σ_m (U(m)/C(m))², which
	// steers consolidation towards emptying machines.
	PackWeight float64
}

// Machine is one place processes can run on.
type Machine struct {
	Name string
	// Capacity per resource (hard).
	Capacity []int64
	// Safety capacity per resource above which load cost accrues; nil
	// means Capacity.
	Safety []int64
	// Neighborhood and Location partition machines (ROADEF); a cloud uses
	// Location for availability zones or failure domains.
	Neighborhood int32
	Location     int32
	// FixedCost is paid when the machine runs at least one process.
	FixedCost int64
	// Closed machines may not receive processes (disabled hosts), except a
	// process returning to its initial machine.
	Closed bool
	// Evacuate machines must end empty; they never receive processes.
	Evacuate bool
}

// Process is one movable unit.
type Process struct {
	Name   string
	Demand []int64
	// Initial is the machine the process runs on now.
	Initial int32
	// Service is the index into Problem.Services, or -1 for none.
	Service int32
	// MoveCost is paid (times Problem.ProcessMoveWeight) if the process ends
	// away from Initial.
	MoveCost int64
	// Pinned processes never move.
	Pinned bool
	// Zone restricts the process to machines of this Location; -1 for any.
	Zone int32
}

// ConflictScope says what a service's conflict rule keeps distinct.
type ConflictScope uint8

// Conflict scopes.
const (
	// NoConflict: processes of the service may share machines.
	NoConflict ConflictScope = iota
	// ConflictMachine: processes run on pairwise distinct machines
	// (ROADEF's conflict; Nova anti-affinity).
	ConflictMachine
	// ConflictLocation: processes run in pairwise distinct locations (Ceph
	// replicas across failure domains).
	ConflictLocation
)

// Service groups processes under placement rules.
type Service struct {
	Conflict ConflictScope
	// SpreadMin is the minimum number of distinct locations the service's
	// processes occupy.
	SpreadMin int32
	// DependsOn lists services that must have a process in the
	// neighbourhood of every process of this one.
	DependsOn []int32
}

// Balance is a ROADEF balance objective: Σ_m max(0, Target·A(m,R1) − A(m,R2))
// with A the free capacity.
type Balance struct {
	R1, R2 int
	Target int64
	Weight int64
}

// Problem is a reassignment instance. Slices are read, never modified.
type Problem struct {
	Resources []Resource
	Machines  []Machine
	Processes []Process
	Services  []Service
	Balances  []Balance
	// ProcessMoveWeight, ServiceMoveWeight and MachineMoveWeight weigh the
	// three ROADEF move costs.
	ProcessMoveWeight int64
	ServiceMoveWeight int64
	MachineMoveWeight int64
	// MachineMoveCost is the |M|×|M| row-major matrix of machine move costs
	// (nil: none).
	MachineMoveCost []int32
	// MaxMoves bounds how many processes may end away from their initial
	// machine (0: unbounded).
	MaxMoves int
}

// limits keep dense per-service tables within memory.
const (
	maxResources  = 64
	maxDenseCells = 64 << 20
)

// Validate checks the problem's shape and returns an error naming the first
// bad field.
func (p *Problem) Validate() error {
	R, M := len(p.Resources), len(p.Machines)
	if R == 0 || R > maxResources {
		return fmt.Errorf("resources: %d, want 1..%d", R, maxResources)
	}
	if M == 0 {
		return errors.New("machines: none")
	}
	if M > math.MaxInt32/2 || len(p.Processes) > math.MaxInt32/2 {
		return errors.New("problem too large")
	}
	for r, res := range p.Resources {
		if res.LoadWeight < 0 || res.BalanceWeight < 0 || res.PackWeight < 0 ||
			math.IsNaN(res.BalanceWeight) || math.IsNaN(res.PackWeight) ||
			math.IsInf(res.BalanceWeight, 0) || math.IsInf(res.PackWeight, 0) {
			return fmt.Errorf("resources[%d] (%s): weights must be finite and not negative", r, res.Name)
		}
	}
	var maxN, maxL int32
	for m, mc := range p.Machines {
		if len(mc.Capacity) != R {
			return fmt.Errorf("machines[%d].capacity: %d values, want %d", m, len(mc.Capacity), R)
		}
		if mc.Safety != nil && len(mc.Safety) != R {
			return fmt.Errorf("machines[%d].safety: %d values, want %d", m, len(mc.Safety), R)
		}
		for r, c := range mc.Capacity {
			if c < 0 {
				return fmt.Errorf("machines[%d].capacity[%d]: %d is negative", m, r, c)
			}
		}
		if mc.Neighborhood < 0 || mc.Location < 0 {
			return fmt.Errorf("machines[%d]: neighborhood and location must not be negative", m)
		}
		if mc.FixedCost < 0 {
			return fmt.Errorf("machines[%d].fixed_cost: %d is negative", m, mc.FixedCost)
		}
		maxN = max(maxN, mc.Neighborhood)
		maxL = max(maxL, mc.Location)
	}
	S := len(p.Services)
	if int64(S)*int64(maxN+1) > maxDenseCells || int64(S)*int64(maxL+1) > maxDenseCells {
		return fmt.Errorf("services × neighbourhoods or locations exceeds %d cells", maxDenseCells)
	}
	for s, sv := range p.Services {
		if sv.SpreadMin < 0 {
			return fmt.Errorf("services[%d].spread_min: %d is negative", s, sv.SpreadMin)
		}
		for _, d := range sv.DependsOn {
			if d < 0 || int(d) >= S {
				return fmt.Errorf("services[%d].depends_on: %d is not a service", s, d)
			}
		}
	}
	for i, pr := range p.Processes {
		if len(pr.Demand) != R {
			return fmt.Errorf("processes[%d].demand: %d values, want %d", i, len(pr.Demand), R)
		}
		for r, d := range pr.Demand {
			if d < 0 {
				return fmt.Errorf("processes[%d].demand[%d]: %d is negative", i, r, d)
			}
		}
		if pr.Initial < 0 || int(pr.Initial) >= M {
			return fmt.Errorf("processes[%d].initial: %d is not a machine", i, pr.Initial)
		}
		if pr.Service < -1 || int(pr.Service) >= S {
			return fmt.Errorf("processes[%d].service: %d is not a service", i, pr.Service)
		}
		if pr.MoveCost < 0 {
			return fmt.Errorf("processes[%d].move_cost: %d is negative", i, pr.MoveCost)
		}
	}
	for b, bl := range p.Balances {
		if bl.R1 < 0 || bl.R1 >= R || bl.R2 < 0 || bl.R2 >= R {
			return fmt.Errorf("balances[%d]: resources %d, %d out of range", b, bl.R1, bl.R2)
		}
	}
	if p.MachineMoveCost != nil && len(p.MachineMoveCost) != M*M {
		return fmt.Errorf("machine_move_cost: %d values, want %d", len(p.MachineMoveCost), M*M)
	}
	if p.MaxMoves < 0 {
		return fmt.Errorf("max_moves: %d is negative", p.MaxMoves)
	}
	return nil
}
