package decision_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
)

// cluster builds a hand-made cluster: hosts of the given cores (4 GB of
// memory per core, ratio 1 for vCPUs), and instances "host:vcpus:cpu" with
// 4 GB per vCPU.
func cluster(hostCores []int, instances ...string) *model.Cluster {
	c := &model.Cluster{Version: model.Version}
	for i, cores := range hostCores {
		c.Hosts = append(c.Hosts, model.Host{Name: fmt.Sprintf("h%d", i),
			Capacity: model.Capacity{VCPUs: cores, MemoryMB: int64(cores) * 4096, DiskGB: 1000}, AvailabilityZone: "az"})
	}
	for i, spec := range instances {
		var h, vcpus int
		var cpu float64
		if _, err := fmt.Sscanf(spec, "%d:%d:%g", &h, &vcpus, &cpu); err != nil {
			panic(spec)
		}
		c.Instances = append(c.Instances, model.Instance{UUID: fmt.Sprintf("i%d", i), Name: fmt.Sprintf("vm%d", i),
			Host: fmt.Sprintf("h%d", h), State: model.InstanceActive,
			Flavor: model.Flavor{VCPUs: vcpus, MemoryMB: int64(vcpus) * 4096, DiskGB: 10},
			Usage:  &model.InstanceUsage{CPU: cpu, MemoryMB: float64(vcpus) * 2048}})
	}
	return c
}

func plan(t *testing.T, c *model.Cluster, g, s string, params map[string]any) *decision.Plan {
	t.Helper()
	p, err := engine(t).Plan(context.Background(), decision.Request{Goal: g, Strategy: s, Params: params, Model: c, Seed: 1})
	require.NoError(t, err)
	checkPlan(t, c, p)
	return p
}

func hostsAfter(t *testing.T, c *model.Cluster, p *decision.Plan) map[string]string {
	t.Helper()
	after, err := model.ApplyMoves(c, p.Moves)
	require.NoError(t, err)
	out := map[string]string{}
	for _, in := range after.Instances {
		out[in.UUID] = in.Host
	}
	return out
}

func TestConsolidationCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      *model.Cluster
		params map[string]any
		check  func(t *testing.T, c *model.Cluster, p *decision.Plan)
	}{
		{"packs onto the fewest hosts", cluster([]int{8, 8, 8}, "0:2:0.1", "1:2:0.1", "2:2:0.1"), nil,
			func(t *testing.T, c *model.Cluster, p *decision.Plan) {
				require.Equal(t, 2.0, indicator(p, "released_compute_nodes_count"))
				require.Len(t, p.Moves, 2)
			}},
		{"anti-affinity keeps members apart", func() *model.Cluster {
			c := cluster([]int{8, 8, 8}, "0:2:0.1", "1:2:0.1", "2:2:0.1")
			for i := range c.Instances {
				c.Instances[i].Metadata.AntiAffinityGroup = "g"
			}
			return c
		}(), nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Empty(t, p.Moves)
		}},
		{"measured load above the threshold blocks packing", cluster([]int{4, 4}, "0:2:0.9", "1:2:0.9"),
			map[string]any{"cpu_threshold": 0.5}, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
				require.Empty(t, p.Moves)
			}},
		{"allocation alone allows it", cluster([]int{4, 4}, "0:2:0.9", "1:2:0.9"), nil,
			func(t *testing.T, c *model.Cluster, p *decision.Plan) {
				require.Len(t, p.Moves, 1)
			}},
		{"excluded instance pins its host", func() *model.Cluster {
			c := cluster([]int{8, 8}, "0:1:0.1", "1:1:0.1")
			c.Instances[0].Metadata.Excluded = true
			c.Instances[1].Metadata.Locked = true
			return c
		}(), nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Empty(t, p.Moves)
		}},
		{"disabled hosts receive nothing", func() *model.Cluster {
			c := cluster([]int{16, 8, 8}, "1:2:0.1", "2:2:0.1")
			c.Hosts[0].State = model.HostDisabled
			return c
		}(), nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Len(t, p.Moves, 1)
			for _, m := range p.Moves {
				require.NotEqual(t, "h0", m.To)
			}
		}},
		{"tight packing reaches the bound", func() *model.Cluster {
			// Watcher's synthetic cluster at 100×1000: 99.6 % of the 24
			// largest hosts' memory is allocated, and the drain with two
			// destinations compared per instance stops at 25 hosts.
			c, err := synth.Generate(synth.Config{Hosts: 100, Instances: 1000, Seed: 42})
			if err != nil {
				panic(err)
			}
			return c
		}(), nil, func(t *testing.T, c *model.Cluster, p *decision.Plan) {
			require.Equal(t, 24.0, indicator(p, "active_compute_nodes_lower_bound"))
			require.Equal(t, 24.0, indicator(p, "active_compute_nodes_after"))
		}},
		{"budget", cluster([]int{8, 8, 8, 8}, "0:1:0.1", "1:1:0.1", "2:1:0.1", "3:1:0.1"), map[string]any{"max_migrations": 1},
			func(t *testing.T, c *model.Cluster, p *decision.Plan) {
				require.Len(t, p.Moves, 1)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(t, tc.c, goal.ServerConsolidation, "vm_workload_consolidation", tc.params)
			tc.check(t, tc.c, p)
		})
	}
}

func TestMaintenanceCases(t *testing.T) {
	c := cluster([]int{8, 8, 8, 8}, "0:2:0.5", "0:2:0.5", "1:4:0.5", "2:1:0.1")
	c.Instances[1].State = model.InstanceShutoff
	c.Hosts[3].State = model.HostDisabled
	t.Run("backup node takes everything and is enabled first", func(t *testing.T) {
		p := plan(t, c, goal.ClusterMaintaining, "", map[string]any{"maintenance_node": "h0", "backup_node": "h3"})
		for _, h := range hostsAfter(t, c, p) {
			require.NotEqual(t, "h0", h)
		}
		dest := map[string]bool{}
		for _, m := range p.Moves {
			dest[m.To] = true
		}
		require.Equal(t, map[string]bool{"h3": true}, dest)
		require.Equal(t, 1.0, indicator(p, "live_migrate_instance_count"))
		require.Equal(t, 1.0, indicator(p, "cold_migrate_instance_count"))
		var enable string
		for _, a := range p.Actions {
			if a.Type == action.ChangeNovaServiceState && a.Param("state") == "enabled" {
				enable = a.ID
			}
		}
		require.NotEmpty(t, enable)
		for _, a := range p.Actions {
			if a.Type == action.Migrate {
				require.Contains(t, a.Parents, enable)
			}
		}
	})
	t.Run("live migration disabled", func(t *testing.T) {
		p := plan(t, c, goal.ClusterMaintaining, "", map[string]any{"maintenance_node": "h0", "disable_live_migration": true})
		require.Equal(t, 0.0, indicator(p, "live_migrate_instance_count"))
		require.Equal(t, 2.0, indicator(p, "cold_migrate_instance_count"))
	})
	t.Run("cold migration disabled leaves stopped instances", func(t *testing.T) {
		p := plan(t, c, goal.ClusterMaintaining, "", map[string]any{"maintenance_node": "h0", "disable_cold_migration": true})
		require.Equal(t, 1.0, indicator(p, "unplaced_instances_count"))
		for _, a := range p.Actions {
			require.NotEqual(t, action.ChangeHostState, a.Type, "the host is not emptied")
		}
	})
}

func TestBalanceCases(t *testing.T) {
	hot := cluster([]int{8, 8, 8, 8}, "0:2:0.9", "0:2:0.9", "0:2:0.9", "1:2:0.1", "2:1:0.1")
	t.Run("stabilization moves load off the hot host", func(t *testing.T) {
		p := plan(t, hot, goal.WorkloadBalancing, "workload_stabilization", nil)
		require.NotEmpty(t, p.Moves)
		require.Less(t, indicator(p, "standard_deviation_after_audit"), indicator(p, "standard_deviation_before_audit"))
	})
	t.Run("stabilization does nothing under the threshold", func(t *testing.T) {
		p := plan(t, hot, goal.WorkloadBalancing, "workload_stabilization", map[string]any{"thresholds": map[string]any{"instance_cpu_usage": 0.9}})
		require.Empty(t, p.Moves)
		require.NotEmpty(t, p.Notes)
	})
	t.Run("workload_balance relieves every host over the threshold", func(t *testing.T) {
		p := plan(t, hot, goal.WorkloadBalancing, "workload_balance", map[string]any{"threshold": 30.0})
		after, err := model.ApplyMoves(hot, p.Moves)
		require.NoError(t, err)
		load := map[string]float64{}
		for _, in := range after.Instances {
			load[in.Host] += in.CPUCores()
		}
		for h, l := range load {
			require.Less(t, l/8, 0.30, h)
		}
		require.Len(t, p.Moves, 2, "two migrations take h0 from 67 %% to 22 %%")
	})
}

func TestNoisyNeighborCases(t *testing.T) {
	c := cluster([]int{4, 8}, "0:2:0.95", "0:2:0.9", "1:1:0.1")
	c.Instances[0].Metadata.Priority = "high"
	c.Instances[1].Metadata.Priority = "low"
	c.Instances[0].Usage.CPUSteal = 0.2
	p := plan(t, c, goal.NoisyNeighbor, "", nil)
	require.Len(t, p.Moves, 1)
	require.Equal(t, "i1", p.Moves[0].Instance, "the low-priority aggressor moves, the victim stays")
	require.Equal(t, 1.0, indicator(p, "contended_hosts_before"))
	require.Equal(t, 0.0, indicator(p, "contended_hosts_after"))
	// Without steal, CPU contention is assumed from load; with steal below
	// the threshold the host is not contended.
	c.Instances[0].Usage.CPUSteal = 0.01
	p = plan(t, c, goal.NoisyNeighbor, "", nil)
	require.Empty(t, p.Moves)
}

func TestSavingEnergyCases(t *testing.T) {
	c := cluster([]int{8, 8, 16, 8, 8}, "0:1:0.1", "1:1:0.1")
	c.Hosts[4].PowerState = model.PowerOff
	p := plan(t, c, goal.SavingEnergy, "", map[string]any{"consolidate": false, "min_free_hosts_num": 1})
	// Empty and on: h2 (16 cores) and h3; the largest stays as the spare.
	var off []string
	for _, a := range p.Actions {
		if a.Type == action.ChangeNodePowerState {
			require.Equal(t, "off", a.Param("state"))
			off = append(off, a.Param("resource_name"))
		}
	}
	require.Equal(t, []string{"h3"}, off)
	require.Equal(t, 34.0, indicator(p, "power_saved_watts"), "4.2 W per idle core, rounded")
	p = plan(t, c, goal.SavingEnergy, "", map[string]any{"consolidate": false, "min_free_hosts_num": 3})
	require.Equal(t, 1.0, indicator(p, "powered_on_nodes_count"))
	// After consolidation the spare stays enabled; the others are
	// disabled, then powered off.
	p = plan(t, c, goal.SavingEnergy, "", map[string]any{"min_free_hosts_num": 1})
	disabled, poweredOff := map[string]bool{}, map[string]bool{}
	for _, a := range p.Actions {
		switch a.Type {
		case action.ChangeNovaServiceState:
			disabled[a.Param("resource_name")] = true
		case action.ChangeNodePowerState:
			poweredOff[a.Param("resource_name")] = true
		}
	}
	require.Equal(t, disabled, poweredOff)
	require.False(t, disabled["h2"], "the largest empty host is the spare")
}

func TestStorageReweight(t *testing.T) {
	c := cluster([]int{8}, "0:1:0.1")
	c.Ceph = &model.Ceph{Pools: []model.Pool{{ID: 1, Name: "p", Size: 1, PGNum: 1}}}
	for i, used := range []int64{90, 50, 40, 40} {
		c.Ceph.OSDs = append(c.Ceph.OSDs, model.OSD{ID: i, Host: fmt.Sprintf("s%d", i), CrushWeight: 1, Reweight: 1,
			BytesUsed: used << 30, BytesTotal: 100 << 30, Up: true, In: true})
	}
	c.Ceph.PGs = []model.PG{{ID: "1.0", Pool: 1, Raw: []int{0}, Bytes: 1 << 30}}
	p := plan(t, c, goal.StorageBalancing, "", map[string]any{"mode": "reweight"})
	require.Len(t, p.Actions, 1)
	a := p.Actions[0]
	require.Equal(t, action.CephReweight, a.Type)
	require.Equal(t, "osd.0", a.Param("resource_id"))
	require.InDelta(t, 0.95, a.InputParameters["weight"], 1e-9, "max_change 0.05 bounds the step")
}
