package roadef

import (
	"fmt"
)

// Evaluation is the exact cost and feasibility of a solution, term by term,
// as the official checker computes them.
type Evaluation struct {
	// Feasible is true when every hard constraint holds; Violations says
	// which do not (capped at 20 entries).
	Feasible   bool
	Violations []string
	// LoadCost per resource and BalanceCost per balance objective are
	// unweighted.
	LoadCost    []int64
	BalanceCost []int64
	// ProcessMoveCost, ServiceMoveCost and MachineMoveCost are unweighted.
	ProcessMoveCost int64
	ServiceMoveCost int64
	MachineMoveCost int64
	// Total is the weighted objective.
	Total int64
}

const maxViolations = 20

// Evaluate checks solution against the original assignment of in and
// computes its cost with the official formula (docs: ROADEF/EURO 2012
// problem definition; research/decision.md §1): capacity with transient
// usage, conflict, spread and dependency constraints; load, balance and the
// three move costs, in int64.
func Evaluate(in *Instance, original, solution []int) (*Evaluation, error) {
	P, M, R := len(in.Processes), len(in.Machines), len(in.Resources)
	if len(original) != P || len(solution) != P {
		return nil, fmt.Errorf("assignments have %d and %d entries, want %d", len(original), len(solution), P)
	}
	for p := 0; p < P; p++ {
		if original[p] < 0 || original[p] >= M || solution[p] < 0 || solution[p] >= M {
			return nil, fmt.Errorf("process %d: machine out of range", p)
		}
	}
	ev := &Evaluation{LoadCost: make([]int64, R), BalanceCost: make([]int64, len(in.Balances))}
	violate := func(format string, args ...any) {
		if len(ev.Violations) < maxViolations {
			ev.Violations = append(ev.Violations, fmt.Sprintf(format, args...))
		}
	}
	use := make([]int64, M*R)
	trans := make([]int64, M*R)
	for p, pr := range in.Processes {
		m, m0 := solution[p], original[p]
		for r, d := range pr.Requirement {
			use[m*R+r] += d
			trans[m*R+r] += d
			if m0 != m && in.Resources[r].Transient {
				trans[m0*R+r] += d
			}
		}
	}
	for m, mc := range in.Machines {
		for r := 0; r < R; r++ {
			if use[m*R+r] > mc.Capacity[r] {
				violate("capacity: machine %d resource %d uses %d > %d", m, r, use[m*R+r], mc.Capacity[r])
			}
			if in.Resources[r].Transient && trans[m*R+r] > mc.Capacity[r] {
				violate("transient capacity: machine %d resource %d uses %d > %d", m, r, trans[m*R+r], mc.Capacity[r])
			}
			if over := use[m*R+r] - mc.Safety[r]; over > 0 {
				ev.LoadCost[r] += over
			}
		}
		for b, bl := range in.Balances {
			a1 := mc.Capacity[bl.R1] - use[m*R+bl.R1]
			a2 := mc.Capacity[bl.R2] - use[m*R+bl.R2]
			if v := bl.Target*a1 - a2; v > 0 {
				ev.BalanceCost[b] += v
			}
		}
	}
	// Conflict, spread and the per-service move counts.
	S := len(in.Services)
	type svcMachine struct{ s, m int }
	seen := make(map[svcMachine]bool, P)
	locs := make([]map[int]bool, S)
	nbs := make(map[svcMachine]bool, P) // (service, neighbourhood) occupied
	moved := make([]int64, S)
	for p, pr := range in.Processes {
		m := solution[p]
		k := svcMachine{pr.Service, m}
		if seen[k] {
			violate("conflict: service %d has two processes on machine %d", pr.Service, m)
		}
		seen[k] = true
		if locs[pr.Service] == nil {
			locs[pr.Service] = map[int]bool{}
		}
		locs[pr.Service][in.Machines[m].Location] = true
		nbs[svcMachine{pr.Service, in.Machines[m].Neighborhood}] = true
		if m != original[p] {
			moved[pr.Service]++
			ev.ProcessMoveCost += pr.MoveCost
			ev.MachineMoveCost += int64(in.MachineMoveCost[original[p]*M+m])
		}
	}
	for s, sv := range in.Services {
		if len(locs[s]) < sv.SpreadMin {
			violate("spread: service %d spans %d locations < %d", s, len(locs[s]), sv.SpreadMin)
		}
		ev.ServiceMoveCost = max(ev.ServiceMoveCost, moved[s])
	}
	for p, pr := range in.Processes {
		n := in.Machines[solution[p]].Neighborhood
		for _, d := range in.Services[pr.Service].DependsOn {
			if !nbs[svcMachine{d, n}] {
				violate("dependency: process %d (service %d) has no process of service %d in neighbourhood %d", p, pr.Service, d, n)
			}
		}
	}
	ev.Feasible = len(ev.Violations) == 0
	for r, res := range in.Resources {
		ev.Total += res.WeightLoad * ev.LoadCost[r]
	}
	for b, bl := range in.Balances {
		ev.Total += bl.Weight * ev.BalanceCost[b]
	}
	ev.Total += in.WeightProcessMove*ev.ProcessMoveCost + in.WeightServiceMove*ev.ServiceMoveCost +
		in.WeightMachineMove*ev.MachineMoveCost
	return ev, nil
}
