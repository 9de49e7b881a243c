// Package noisyneighbor is the noisy-neighbour strategy (goal
// noisy_neighbor): it finds hosts whose CPU or disk IO is contended and
// moves the aggressor off each of them: the instance that uses most of the
// contended resource, low-priority instances first, high-priority ones
// never. A CPU-contended host is one whose measured CPU is at or above
// cpu_threshold while its instances wait for CPU (steal at or above
// steal_threshold; assumed when the model has no steal data); a disk-IO
// contended host is one whose disks are busy at or above disk_io_threshold.
// Destinations are ranked by a scoring engine among the hosts the core finds
// feasible and that stay under both thresholds.
//
// Watcher's noisy_neighbor keys on an L3-cache metric Nova no longer
// provides; its cache_threshold parameter is accepted and unused.
package noisyneighbor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/scoring"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Params are the strategy's parameters.
type Params struct {
	CPUThreshold    float64 `json:"cpu_threshold"`
	StealThreshold  float64 `json:"steal_threshold"`
	DiskIOThreshold float64 `json:"disk_io_threshold"`
	// MaxPerHost bounds the aggressors moved off one host.
	MaxPerHost     int     `json:"max_migrations_per_host"`
	CacheThreshold float64 `json:"cache_threshold"`
	Period         int     `json:"period"`
	ScoringEngine  string  `json:"scoring_engine"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	frac := func(def float64, desc string) *params.Property {
		return &params.Property{Type: "number", Default: def, Minimum: params.Float(0), Maximum: params.Float(1), Description: desc}
	}
	return params.Schema{Properties: map[string]*params.Property{
		"cpu_threshold":     frac(0.85, "Host CPU utilisation at or above which CPU contention is possible."),
		"steal_threshold":   frac(0.05, "Instance CPU steal at or above which an instance suffers contention."),
		"disk_io_threshold": frac(0.8, "Host disk busy fraction at or above which disk IO is contended."),
		"max_migrations_per_host": {Type: "integer", Default: float64(2), Minimum: params.Float(1),
			Description: "Most aggressors moved off one contended host."},
		"cache_threshold": {Type: "number", Default: 35.0, Minimum: params.Float(0), Maximum: params.Float(100),
			Description: "Accepted for compatibility with Watcher (L3-cache drop %); unused: Prometheus exposes no L3-cache metric."},
		"period": {Type: "integer", Default: float64(100), Minimum: params.Float(0),
			Description: "Aggregate time period of the metrics, in seconds."},
		"scoring_engine": {Type: "string", Default: scoring.WeightedResourceName,
			Description: "Scoring engine that ranks destination hosts."},
	}}
}

// NoisyNeighbor is the strategy.
type NoisyNeighbor struct {
	p      Params
	logger *slog.Logger
}

var _ strategy.Strategy = (*NoisyNeighbor)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*NoisyNeighbor, error) {
	for name, v := range map[string]float64{"cpu_threshold": p.CPUThreshold, "steal_threshold": p.StealThreshold, "disk_io_threshold": p.DiskIOThreshold} {
		if v <= 0 || v > 1 {
			return nil, fmt.Errorf("parameter %q: %v must be within (0, 1]", name, v)
		}
	}
	if p.MaxPerHost < 1 {
		return nil, fmt.Errorf("parameter \"max_migrations_per_host\": %d must be at least 1", p.MaxPerHost)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &NoisyNeighbor{p: p, logger: logger.With("component", "strategy/noisy_neighbor")}, nil
}

// Execute plans the migrations.
func (n *NoisyNeighbor) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	eng, ok := in.Scorers.Get(n.p.ScoringEngine)
	if !ok {
		return nil, &strategy.ParamError{Param: "scoring_engine", Err: fmt.Errorf("%q is not a registered scoring engine", n.p.ScoringEngine)}
	}
	hasIO := false
	for i := range in.Cluster.Hosts {
		if in.Cluster.Hosts[i].Capacity.DiskIOMBps > 0 {
			hasIO = true
		}
	}
	o := strategy.ComputeOptions{
		Allocation: true, MemoryCap: 1, Scorers: in.Scorers,
		// Destinations must stay below the thresholds: they are the
		// measured capacities (a contended source only sheds load).
		CPUCap: n.p.CPUThreshold,
		// High-priority instances are the ones protected, never moved.
		Movable: func(i int) bool { return in.Index.Instance(i).Metadata.Priority != "high" },
	}
	if hasIO {
		o.DiskIOCap = n.p.DiskIOThreshold
	}
	cp, err := strategy.NewCompute(in.Index, o)
	if err != nil {
		return nil, err
	}
	st, err := optimize.NewState(cp.Problem, nil)
	if err != nil {
		return nil, err
	}
	cpuR, _ := cp.Resource(strategy.CPU)
	ioR, ioOK := cp.Resource(strategy.DiskIO)
	R := len(cp.Names)
	suffering := func(h int) bool {
		host := in.Index.Host(h)
		seen := false
		if host.Usage != nil && host.Usage.CPUSteal > 0 {
			seen = true
			if host.Usage.CPUSteal >= n.p.StealThreshold {
				return true
			}
		}
		for _, i := range in.Index.HostInstances[h] {
			if u := in.Index.Instance(int(i)).Usage; u != nil && u.CPUSteal > 0 {
				seen = true
				if u.CPUSteal >= n.p.StealThreshold {
					return true
				}
			}
		}
		return !seen
	}
	// contended returns which resource of host h is contended (-1: none).
	contended := func(h int32) int {
		if phys := cp.Physical[int(h)*R+cpuR]; phys > 0 && float64(st.Usage(h, cpuR))/phys >= n.p.CPUThreshold && suffering(int(h)) {
			return cpuR
		}
		if ioOK {
			if phys := cp.Physical[int(h)*R+ioR]; phys > 0 && float64(st.Usage(h, ioR))/phys >= n.p.DiskIOThreshold {
				return ioR
			}
		}
		return -1
	}
	count := func() int {
		c := 0
		for h := range cp.Problem.Machines {
			if contended(int32(h)) >= 0 {
				c++
			}
		}
		return c
	}
	before := count()
	var hosts []int32
	for h := range cp.Problem.Machines {
		if contended(int32(h)) >= 0 {
			hosts = append(hosts, int32(h))
		}
	}
	sol := &strategy.Solution{}
	for _, h := range hosts {
		for moved := 0; moved < n.p.MaxPerHost; moved++ {
			r := contended(h)
			if r < 0 {
				break
			}
			cands := aggressors(in.Index, st, h, r, cp)
			placed := false
			for _, p := range cands {
				left, err := cp.Place(ctx, st, []int32{p}, eng)
				if err != nil {
					return nil, err
				}
				if len(left) == 0 {
					placed = true
					break
				}
			}
			if !placed {
				sol.Notes = append(sol.Notes, fmt.Sprintf("host %s stays contended: no destination takes its aggressors", in.Index.Host(int(h)).Name))
				break
			}
		}
	}
	if v := st.Violations(); len(v) > 0 {
		return nil, fmt.Errorf("noisy_neighbor: placement broke constraints: %v", v)
	}
	assign := st.Assignment()
	sol.Actions = cp.Migrations(assign)
	sol.Moves = cp.Moves(assign)
	sol.Bounds = cp.Bounds(cp.Initial(), assign, strategy.CPU, strategy.DiskIO)
	sol.Indicators = map[string]float64{
		"instance_migrations_count": float64(len(sol.Moves)),
		"contended_hosts_before":    float64(before),
		"contended_hosts_after":     float64(count()),
	}
	n.logger.Debug("Noisy neighbour planned", "contended_before", before, "migrations", len(sol.Moves))
	return sol, nil
}

// aggressors lists the movable instances on host h, low-priority first, then
// by their use of resource r, largest first.
func aggressors(ix *model.Index, st *optimize.State, h int32, r int, cp *strategy.Compute) []int32 {
	var out []int32
	for _, p := range st.On(h) {
		if st.Movable(p) {
			out = append(out, p)
		}
	}
	rank := func(p int32) int {
		if ix.Instance(int(p)).Metadata.Priority == "low" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(out, func(a, b int32) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(cp.Problem.Processes[b].Demand[r], cp.Problem.Processes[a].Demand[r]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}
