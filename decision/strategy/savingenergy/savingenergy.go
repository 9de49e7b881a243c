// Package savingenergy is the saving-energy strategy (goal saving_energy)
// with Watcher's parameters: after an optional consolidation (the
// consolidation strategy's plan, included in this one), it keeps
// max(min_free_hosts_num, free_used_percent % of the hosts in use) empty
// hosts powered on as spare capacity — the largest ones, deterministically,
// where Watcher picks at random — powers off the other empty hosts, and
// powers hosts back on when too few spares remain.
package savingenergy

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
	"github.com/ballast-cloud/ballast/decision/strategy/consolidation"
)

// Params are Watcher's saving_energy parameters plus the consolidation step.
type Params struct {
	FreeUsedPercent float64 `json:"free_used_percent"`
	MinFreeHostsNum int     `json:"min_free_hosts_num"`
	// Consolidate empties hosts first (vm_workload_consolidation).
	Consolidate bool `json:"consolidate"`
	// IdleWattsPerCore estimates an idle host's draw when unmeasured.
	IdleWattsPerCore float64 `json:"idle_watts_per_core"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"free_used_percent": {Type: "number", Default: 10.0, Minimum: params.Float(0), Maximum: params.Float(100),
			Description: "a rational number, which describes the quotient of min_free_hosts_num/nodes_with_VMs_num"},
		"min_free_hosts_num": {Type: "integer", Default: float64(1), Minimum: params.Float(0),
			Description: "minimum number of hosts without VMs but still powered on"},
		"consolidate": {Type: "boolean", Default: true,
			Description: "Consolidate instances first (the plan includes the migrations), then power off the hosts emptied."},
		"idle_watts_per_core": {Type: "number", Default: 4.2, Minimum: params.Float(0),
			Description: "Idle power per core, to estimate savings where a host's draw is not measured."},
	}}
}

// SavingEnergy is the strategy.
type SavingEnergy struct {
	p      Params
	consol *consolidation.Consolidation
	logger *slog.Logger
}

var _ strategy.Strategy = (*SavingEnergy)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*SavingEnergy, error) {
	if p.FreeUsedPercent < 0 || p.FreeUsedPercent > 100 {
		return nil, fmt.Errorf("parameter \"free_used_percent\": %v must be within [0, 100]", p.FreeUsedPercent)
	}
	if p.MinFreeHostsNum < 0 {
		return nil, fmt.Errorf("parameter \"min_free_hosts_num\": %d must not be negative", p.MinFreeHostsNum)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &SavingEnergy{p: p, logger: logger.With("component", "strategy/saving_energy")}
	if p.Consolidate {
		var cp consolidation.Params
		if err := strategy.DecodeParams(consolidation.Schema(true).Defaults(), &cp); err != nil {
			return nil, err
		}
		c, err := consolidation.New(cp, logger)
		if err != nil {
			return nil, err
		}
		s.consol = c
	}
	return s, nil
}

// Execute plans the power changes.
func (s *SavingEnergy) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	sol := &strategy.Solution{}
	busy := make([]bool, len(in.Cluster.Hosts))
	for h, l := range in.Index.HostInstances {
		busy[h] = len(l) > 0
	}
	if s.consol != nil {
		c, err := s.consol.Execute(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("saving_energy: %w", err)
		}
		sol.Actions, sol.Moves, sol.Notes, sol.Search, sol.Bounds = c.Actions, c.Moves, c.Notes, c.Search, c.Bounds
		clear(busy)
		moved := map[string]string{}
		for _, m := range c.Moves {
			moved[m.Instance] = m.To
		}
		for i, h := range in.Index.InstanceHost {
			if to, ok := moved[in.Index.Instance(i).UUID]; ok {
				busy[in.Index.HostByName[to]] = true
			} else {
				busy[h] = true
			}
		}
	}
	used := 0
	var emptyOn, off []int
	for h := range in.Cluster.Hosts {
		host := in.Index.Host(h)
		switch {
		case busy[h]:
			used++
		case host.EffectivePower() == "on":
			emptyOn = append(emptyOn, h)
		default:
			off = append(off, h)
		}
	}
	spares := max(s.p.MinFreeHostsNum, int(math.Ceil(float64(used)*s.p.FreeUsedPercent/100)))
	// Largest hosts make the best spares; the name breaks ties.
	bySize := func(a, b int) int {
		ha, hb := in.Index.Host(a), in.Index.Host(b)
		if c := cmp.Compare(hb.Capacity.VCPUs, ha.Capacity.VCPUs); c != 0 {
			return c
		}
		if c := cmp.Compare(hb.Capacity.MemoryMB, ha.Capacity.MemoryMB); c != 0 {
			return c
		}
		return cmp.Compare(ha.Name, hb.Name)
	}
	slices.SortFunc(emptyOn, bySize)
	slices.SortFunc(off, bySize)
	// Spares must stay schedulable: drop the consolidation's disable of
	// the hosts kept on as spares.
	for _, h := range emptyOn[:min(spares, len(emptyOn))] {
		name := in.Index.Host(h).Name
		sol.Actions = slices.DeleteFunc(sol.Actions, func(a action.Action) bool {
			return a.Type == action.ChangeNovaServiceState && a.Param("resource_name") == name && a.Param("state") == "disabled"
		})
	}
	var saved float64
	poweredOff, poweredOn := 0, 0
	if len(emptyOn) > spares {
		for _, h := range emptyOn[spares:] {
			host := in.Index.Host(h)
			if host.EffectiveState() == "enabled" && !disabledBy(sol.Actions, host.Name) {
				sol.Actions = append(sol.Actions, action.NewServiceState(host.UUID, host.Name, false, "watcher_energy_saving"))
			}
			sol.Actions = append(sol.Actions, action.NewPowerState(host.UUID, host.Name, false))
			saved += s.idleWatts(h, in)
			poweredOff++
		}
	} else {
		for _, h := range off[:min(len(off), spares-len(emptyOn))] {
			host := in.Index.Host(h)
			sol.Actions = append(sol.Actions, action.NewPowerState(host.UUID, host.Name, true))
			saved -= s.idleWatts(h, in)
			poweredOn++
		}
	}
	sol.Indicators = map[string]float64{
		"compute_nodes_count":     float64(len(in.Cluster.Hosts)),
		"powered_off_nodes_count": float64(poweredOff),
		"powered_on_nodes_count":  float64(poweredOn),
		"power_saved_watts":       math.Round(saved),
	}
	s.logger.Debug("Saving energy planned", "off", poweredOff, "on", poweredOn, "spares", spares)
	return sol, nil
}

func disabledBy(acts []action.Action, host string) bool {
	return slices.ContainsFunc(acts, func(a action.Action) bool {
		return a.Type == action.ChangeNovaServiceState && a.Param("resource_name") == host && a.Param("state") == "disabled"
	})
}

// idleWatts is the host's measured draw when it runs nothing, or the
// per-core estimate.
func (s *SavingEnergy) idleWatts(h int, in *strategy.Input) float64 {
	host := in.Index.Host(h)
	if host.Usage != nil && host.Usage.PowerWatts > 0 && len(in.Index.HostInstances[h]) == 0 {
		return host.Usage.PowerWatts
	}
	return s.p.IdleWattsPerCore * float64(host.Capacity.VCPUs)
}
