package decision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
)

func engine(t testing.TB) *decision.Engine {
	t.Helper()
	e, err := decision.New(decision.Config{DefaultTimeLimit: 20 * time.Second}, nil)
	require.NoError(t, err)
	return e
}

// checkPlan verifies a plan independently of the solver: its moves apply,
// add no placement violation, keep excluded and locked instances and pinned
// zones, fit allocations on every host even while all migrations run at
// once (original and final instances together), match its migrate actions,
// and list parents before children.
func checkPlan(t *testing.T, c *model.Cluster, p *decision.Plan) {
	t.Helper()
	after, err := model.ApplyMoves(c, p.Moves)
	require.NoError(t, err)
	before := model.CheckPlacement(c)
	for _, v := range model.CheckPlacement(after) {
		found := false
		for _, b := range before {
			if b.Kind == v.Kind && b.Host == v.Host {
				found = true
			}
		}
		require.True(t, found, "new violation: %s", v)
	}
	hosts := map[string]*model.Host{}
	for i := range c.Hosts {
		hosts[c.Hosts[i].Name] = &c.Hosts[i]
	}
	final := map[string]string{}
	for _, m := range p.Moves {
		final[m.Instance] = m.To
	}
	type alloc struct{ vcpu, mem float64 }
	transient := map[string]*alloc{}
	for name := range hosts {
		transient[name] = &alloc{}
	}
	for _, in := range c.Instances {
		to, moved := final[in.UUID]
		if moved {
			require.True(t, in.Movable(), "instance %s may not move", in.UUID)
			require.NotEqual(t, in.Host, to)
			if in.Metadata.PinnedAZ != "" {
				require.Equal(t, in.Metadata.PinnedAZ, hosts[to].AvailabilityZone)
			}
			transient[to].vcpu += float64(in.Flavor.VCPUs)
			transient[to].mem += float64(in.Flavor.MemoryMB)
		}
		transient[in.Host].vcpu += float64(in.Flavor.VCPUs)
		transient[in.Host].mem += float64(in.Flavor.MemoryMB)
	}
	for name, a := range transient {
		lim := hosts[name].Allocatable()
		var movedIn bool
		for _, to := range final {
			movedIn = movedIn || to == name
		}
		if movedIn {
			require.LessOrEqual(t, a.vcpu, lim.VCPUs+1e-6, "host %s: transient vcpu", name)
			require.LessOrEqual(t, a.mem, lim.MemoryMB+1e-6, "host %s: transient memory", name)
		}
	}
	orig := map[string]string{}
	for _, in := range c.Instances {
		orig[in.UUID] = in.Host
	}
	migrations := 0
	seen := map[string]bool{}
	for _, a := range p.Actions {
		require.NoError(t, action.Validate(&a))
		for _, par := range a.Parents {
			require.True(t, seen[par], "action %s lists parent %s after it", a.ID, par)
		}
		seen[a.ID] = true
		if a.Type == action.Migrate {
			migrations++
			id := a.Param("resource_id")
			require.Equal(t, orig[id], a.Param("source_node"))
			require.Equal(t, final[id], a.Param("destination_node"))
		}
	}
	require.Equal(t, len(p.Moves), migrations)
}

func indicator(p *decision.Plan, name string) float64 {
	for _, i := range p.EfficacyIndicators {
		if i.Name == name {
			return i.Value
		}
	}
	panic("no indicator " + name)
}

func TestStrategies(t *testing.T) {
	e := engine(t)
	base, err := synth.Generate(synth.Config{Hosts: 30, Instances: 240, Seed: 11, Zones: 2, GroupFraction: 0.2,
		StoppedFraction: 0.1, Ceph: synth.CephConfig{OSDHosts: 5, Pools: 2, PGsPerPool: 64}})
	require.NoError(t, err)
	base.Instances[3].Metadata.Excluded = true
	base.Instances[4].Metadata.PinnedAZ = base.Hosts[0].AvailabilityZone
	for _, in := range base.Instances {
		if in.Host == base.Hosts[0].Name && in.Metadata.PinnedAZ == "" {
			in.Metadata.Priority = "low"
		}
	}
	for _, tc := range []struct {
		goal, strategy string
		params         map[string]any
		check          func(t *testing.T, c *model.Cluster, p *decision.Plan)
	}{
		{goal.ServerConsolidation, "vm_workload_consolidation", nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			ix, _ := model.NewIndex(c)
			after, _ := model.ApplyMoves(c, p.Moves)
			ixa, _ := model.NewIndex(after)
			released := ix.ActiveHosts() - ixa.ActiveHosts()
			require.Positive(t, released)
			require.Equal(t, float64(released), indicator(p, "released_compute_nodes_count"))
			require.Equal(t, float64(ixa.ActiveHosts()), indicator(p, "active_compute_nodes_after"))
			require.Equal(t, float64(len(p.Moves)), indicator(p, "instance_migrations_count"))
			require.GreaterOrEqual(t, ixa.ActiveHosts(), p.Bounds.ActiveHosts.L2, "never below the lower bound")
			require.InDelta(t, 100*float64(released)/30, p.GlobalEfficacy[0].Value, 1e-9)
			disabled := 0
			for _, a := range p.Actions {
				if a.Type == action.ChangeNovaServiceState {
					disabled++
				}
			}
			require.Equal(t, released, disabled)
		}},
		{goal.ServerConsolidation, "node_resource_consolidation", map[string]any{"max_migrations": 20}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.LessOrEqual(t, len(p.Moves), 20)
		}},
		{goal.WorkloadBalancing, "workload_stabilization", map[string]any{"thresholds": map[string]any{"instance_cpu_usage": 0.05}}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Less(t, indicator(p, "standard_deviation_after_audit"), indicator(p, "standard_deviation_before_audit"))
			require.LessOrEqual(t, indicator(p, "standard_deviation_after_audit"), 0.025+1e-9, "target is threshold × 0.5")
			require.GreaterOrEqual(t, indicator(p, "standard_deviation_after_audit"), indicator(p, "standard_deviation_lower_bound"))
		}},
		{goal.WorkloadBalancing, "workload_balance", map[string]any{"threshold": 40.0}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Positive(t, len(p.Moves))
			require.Less(t, indicator(p, "standard_deviation_after_audit"), indicator(p, "standard_deviation_before_audit"))
		}},
		{goal.ClusterMaintaining, "host_maintenance", map[string]any{"maintenance_node": base.Hosts[5].Name}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			ix, _ := model.NewIndex(c)
			n := len(ix.HostInstances[5])
			require.Equal(t, float64(n), indicator(p, "instances_to_evacuate_count"))
			require.Equal(t, 0.0, indicator(p, "unplaced_instances_count"))
			require.Equal(t, n, len(p.Moves))
			require.Equal(t, action.ChangeNovaServiceState, p.Actions[0].Type)
			require.Equal(t, action.ChangeHostState, p.Actions[len(p.Actions)-1].Type)
			require.Len(t, p.Actions[len(p.Actions)-1].Parents, n+1)
		}},
		{goal.StorageBalancing, "storage_balance", map[string]any{"target_max_misplaced_ratio": 1.0}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.LessOrEqual(t, indicator(p, "pg_deviation_after"), 1.0, "%+v %v", p.Search, p.Notes)
			require.Less(t, indicator(p, "balancer_score_after"), indicator(p, "balancer_score_before"))
			require.Positive(t, len(p.Actions))
			for _, a := range p.Actions {
				require.Equal(t, action.CephUpmap, a.Type)
			}
		}},
		{goal.StorageBalancing, "storage_balance", map[string]any{"target_max_misplaced_ratio": 0.01}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.LessOrEqual(t, indicator(p, "pg_remaps_count"), 0.01*indicator(p, "pgs_count"))
		}},
		{goal.NoisyNeighbor, "noisy_neighbor", map[string]any{"cpu_threshold": 0.45}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Less(t, indicator(p, "contended_hosts_after"), indicator(p, "contended_hosts_before"))
		}},
		{goal.SavingEnergy, "saving_energy", nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Positive(t, indicator(p, "powered_off_nodes_count"))
			require.Positive(t, indicator(p, "power_saved_watts"))
		}},
		{goal.Dummy, "dummy", map[string]any{"para1": 2.0}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Len(t, p.Actions, 3)
			require.Equal(t, 2.0, p.Actions[2].InputParameters["duration"])
		}},
		{goal.Unclassified, "actuator", map[string]any{"actions": []any{
			map[string]any{"action_type": "migrate", "resource_id": base.Instances[0].UUID, "input_parameters": map[string]any{
				"migration_type": "live", "source_node": base.Instances[0].Host, "destination_node": base.Instances[1].Host}},
			map[string]any{"action_type": "nop", "input_parameters": map[string]any{"message": "x"}},
		}}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Len(t, p.Actions, 2)
		}},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			c := base.Clone()
			p, err := e.Plan(context.Background(), decision.Request{Goal: tc.goal, Strategy: tc.strategy, Params: tc.params, Model: c, Seed: 3})
			require.NoError(t, err)
			require.Equal(t, base, c, "the model must not change")
			if tc.goal != goal.Unclassified {
				checkPlan(t, c, p)
			}
			if tc.goal != goal.Unclassified && tc.goal != goal.Dummy {
				require.NotNil(t, p.Bounds, "bounds are reported beside every plan")
			}
			g, _ := goal.Get(tc.goal)
			require.Len(t, p.EfficacyIndicators, len(g.EfficacySpecification))
			tc.check(t, c, p)
			_, err = json.Marshal(p)
			require.NoError(t, err)
		})
	}
}

// TestRandomClusters is the property test: on random clusters (zones,
// anti-affinity groups, pinned zones, excluded and stopped instances,
// disabled hosts) every compute strategy's plan breaks no rule and is the
// same for the same seed.
func TestRandomClusters(t *testing.T) {
	e := engine(t)
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	strategies := []struct {
		goal, name string
		params     func(c *model.Cluster, rng *rand.Rand) map[string]any
	}{
		{goal.ServerConsolidation, "vm_workload_consolidation", nil},
		{goal.ServerConsolidation, "node_resource_consolidation", nil},
		{goal.WorkloadBalancing, "workload_stabilization", nil},
		{goal.WorkloadBalancing, "workload_balance", nil},
		{goal.ClusterMaintaining, "host_maintenance", func(c *model.Cluster, rng *rand.Rand) map[string]any {
			return map[string]any{"maintenance_node": c.Hosts[rng.IntN(len(c.Hosts))].Name}
		}},
		{goal.NoisyNeighbor, "noisy_neighbor", func(*model.Cluster, *rand.Rand) map[string]any {
			return map[string]any{"cpu_threshold": 0.4}
		}},
		{goal.SavingEnergy, "saving_energy", nil},
	}
	for seed := 1; seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 5))
		hosts := 5 + rng.IntN(30)
		c, err := synth.Generate(synth.Config{Hosts: hosts, Instances: hosts * (2 + rng.IntN(10)), Seed: int64(seed),
			Zones: 1 + rng.IntN(3), GroupFraction: rng.Float64() * 0.4, StoppedFraction: rng.Float64() * 0.2})
		require.NoError(t, err)
		for i := range c.Instances {
			switch rng.IntN(12) {
			case 0:
				c.Instances[i].Metadata.Excluded = true
			case 1:
				c.Instances[i].Metadata.PinnedAZ = hostZone(c, c.Instances[i].Host)
			case 2:
				c.Instances[i].Metadata.Locked = true
			}
		}
		for h := range c.Hosts {
			if rng.IntN(8) == 0 {
				c.Hosts[h].State = model.HostDisabled
			}
		}
		for _, s := range strategies {
			t.Run(fmt.Sprintf("seed%d/%s", seed, s.name), func(t *testing.T) {
				var params map[string]any
				if s.params != nil {
					params = s.params(c, rng)
				}
				req := decision.Request{Goal: s.goal, Strategy: s.name, Params: params, Model: c, Seed: int64(seed)}
				p1, err := e.Plan(context.Background(), req)
				require.NoError(t, err)
				checkPlan(t, c, p1)
				p2, err := e.Plan(context.Background(), req)
				require.NoError(t, err)
				require.Equal(t, p1.Moves, p2.Moves, "same seed, same plan")
				require.Equal(t, p1.ID, p2.ID)
			})
		}
	}
}

func hostZone(c *model.Cluster, host string) string {
	for _, h := range c.Hosts {
		if h.Name == host {
			return h.AvailabilityZone
		}
	}
	return ""
}

func TestListings(t *testing.T) {
	e := engine(t)
	require.Len(t, e.Goals(), 8)
	goals := map[string]bool{}
	for _, g := range e.Goals() {
		goals[g.Name] = true
	}
	for _, s := range e.Strategies() {
		require.True(t, goals[s.Goal], s.Name)
		var spec map[string]any
		require.NoError(t, json.Unmarshal(s.ParametersSpec, &spec), s.Name)
		require.Equal(t, "object", spec["type"])
		require.Contains(t, spec, "properties")
	}
	names := map[string]bool{}
	for _, s := range e.ScoringEngines() {
		names[s.Name] = true
		require.True(t, json.Valid([]byte(s.Metainfo)))
	}
	require.True(t, names["weighted_resource"])
	require.True(t, names["migration_cost"])
	name, params, err := e.ParametersFor(goal.Dummy, "", nil)
	require.NoError(t, err)
	require.Equal(t, "dummy", name)
	require.Equal(t, map[string]any{"para1": 3.2, "para2": "hello"}, params)
}

func TestInvalidRequests(t *testing.T) {
	e := engine(t)
	c, err := synth.Generate(synth.Config{Hosts: 4, Instances: 10, Seed: 1})
	require.NoError(t, err)
	bad := c.Clone()
	bad.Hosts[0].Capacity.VCPUs = 0
	for _, tc := range []struct {
		req  decision.Request
		want string
	}{
		{decision.Request{Goal: "nope", Model: c}, `goal "nope" is not one of`},
		{decision.Request{Goal: goal.Dummy, Strategy: "vm_workload_consolidation", Model: c}, "serves goal"},
		{decision.Request{Goal: goal.Dummy, Params: map[string]any{"para1": 99.0}, Model: c}, "above the maximum"},
		{decision.Request{Goal: goal.Dummy}, "model: required"},
		{decision.Request{Goal: goal.Dummy, Model: bad}, "hosts[0].capacity.vcpus"},
		{decision.Request{Goal: goal.ClusterMaintaining, Model: c}, `"maintenance_node" is required`},
		{decision.Request{Goal: goal.Dummy, Model: c, TimeLimit: time.Hour}, "exceeds the maximum"},
		{decision.Request{Goal: goal.Dummy, Model: c, Scope: decision.Scope{Hosts: []string{"missing"}}}, "scope selects no host"},
	} {
		_, err := e.Plan(context.Background(), tc.req)
		require.ErrorContains(t, err, tc.want)
		var inv *decision.InvalidRequestError
		require.True(t, errors.As(err, &inv), "%v is not an InvalidRequestError", err)
	}
	// A strategy's own rejection of a parameter (a host not in scope) is an
	// invalid request too, naming the parameter.
	_, err = e.Plan(context.Background(), decision.Request{Goal: goal.ClusterMaintaining, Model: c,
		Params: map[string]any{"maintenance_node": "ghost"}})
	require.ErrorContains(t, err, `"ghost" is not a host in scope`)
	var inv *decision.InvalidRequestError
	require.True(t, errors.As(err, &inv), "%v is not an InvalidRequestError", err)
	require.Equal(t, "maintenance_node", inv.Param)
	_, err = e.Plan(context.Background(), decision.Request{Goal: goal.NoisyNeighbor, Model: c,
		Params: map[string]any{"scoring_engine": "nope"}})
	require.ErrorContains(t, err, `"nope" is not a registered scoring engine`)
	require.True(t, errors.As(err, &inv), "%v is not an InvalidRequestError", err)
	require.Equal(t, "scoring_engine", inv.Param)
}

func TestScope(t *testing.T) {
	raw := []byte(`[{"compute": [{"availability_zones": [{"name": "az-1"}]},
		{"exclude": [{"instances": [{"uuid": "i-1"}]}, {"compute_nodes": [{"name": "compute-00002"}]}, {"projects": [{"uuid": "p"}]}]}]},
		{"storage": []}]`)
	s, err := decision.ParseWatcherScope(raw)
	require.NoError(t, err)
	require.Equal(t, decision.Scope{AvailabilityZones: []string{"az-1"}, ExcludeHosts: []string{"compute-00002"},
		ExcludeInstances: []string{"i-1"}, ExcludeProjects: []string{"p"}}, s)
	_, err = decision.ParseWatcherScope([]byte(`[{"compute": [{"bogus": []}]}]`))
	require.ErrorContains(t, err, "compute.bogus")
	c, err := synth.Generate(synth.Config{Hosts: 6, Instances: 30, Seed: 1, Zones: 2})
	require.NoError(t, err)
	c.Instances[0].ProjectID = "p"
	scoped, err := s.Apply(c)
	require.NoError(t, err)
	for _, h := range scoped.Hosts {
		require.Equal(t, "az-1", h.AvailabilityZone)
		require.NotEqual(t, "compute-00002", h.Name)
	}
	for _, in := range scoped.Instances {
		if in.UUID == c.Instances[0].UUID {
			require.True(t, in.Metadata.Excluded)
		}
	}
	require.False(t, c.Instances[0].Metadata.Excluded, "Apply must not change its input")
	e := engine(t)
	p, err := e.Plan(context.Background(), decision.Request{Goal: goal.ServerConsolidation, Model: c, Scope: s})
	require.NoError(t, err)
	require.Equal(t, len(scoped.Hosts), p.Hosts)
	for _, m := range p.Moves {
		require.NotEqual(t, c.Instances[0].UUID, m.Instance)
	}
}

func TestMetricWindow(t *testing.T) {
	p, g, a := decision.MetricWindow(nil)
	require.Equal(t, time.Hour, p)
	require.Equal(t, 5*time.Minute, g)
	require.Equal(t, "mean", a)
	e := engine(t)
	_, params, err := e.ParametersFor(goal.WorkloadBalancing, "workload_stabilization", map[string]any{
		"periods": map[string]any{"instance": 720.0, "compute_node": 600.0}, "aggregation_method": map[string]any{"instance": "p95"}})
	require.NoError(t, err)
	p, g, a = decision.MetricWindow(params)
	require.Equal(t, 720*time.Second, p)
	require.Equal(t, 300*time.Second, g)
	require.Equal(t, "p95", a)
	_, params, err = e.ParametersFor(goal.ServerConsolidation, "", map[string]any{"period": 600.0, "aggregation_method": "max"})
	require.NoError(t, err)
	p, _, a = decision.MetricWindow(params)
	require.Equal(t, 10*time.Minute, p)
	require.Equal(t, "max", a)
}
