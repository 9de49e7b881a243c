package sim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
)

// placement maps instance UUIDs to hosts.
func placement(c *model.Cluster) map[string]string {
	out := map[string]string{}
	for _, in := range c.Instances {
		out[in.UUID] = in.Host
	}
	return out
}

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim-state.json")
	cfg := Config{Hosts: 6, Instances: 20, Seed: 4, CephHosts: 3, StateFile: path}
	s, _ := newSim(t, cfg, nil)
	c := s.Snapshot()
	in := c.Instances[0]
	dest := s.destinationFor(t, in)
	require.NoError(t, s.Migrate(context.Background(), in.UUID, dest))
	require.NoError(t, s.SetHostState(c.Hosts[1].Name, model.HostMaintenance, "disk swap"))
	empty := ""
	for _, h := range s.Snapshot().Hosts {
		if !slicesContainsHost(s.Snapshot(), h.Name) {
			empty = h.Name
			break
		}
	}
	if empty != "" {
		require.NoError(t, s.SetPowerState(empty, false))
	}
	pg := c.Ceph.PGs[0]
	require.NoError(t, s.Execute(context.Background(), action.NewUpmap(pg.ID, []action.UpmapPair{{From: pg.Raw[0], To: otherOSD(c, pg)}}, nil)))
	require.NoError(t, s.Execute(context.Background(), action.NewReweight(c.Ceph.OSDs[2].ID, 0.85, 1)))
	want := s.Snapshot()

	again, _ := newSim(t, cfg, nil)
	got := again.Snapshot()
	require.Equal(t, placement(want), placement(got))
	require.Equal(t, dest, placement(got)[in.UUID])
	for i := range want.Hosts {
		require.Equal(t, want.Hosts[i].State, got.Hosts[i].State, want.Hosts[i].Name)
		require.Equal(t, want.Hosts[i].DisabledReason, got.Hosts[i].DisabledReason)
		require.Equal(t, want.Hosts[i].PowerState, got.Hosts[i].PowerState)
	}
	require.Equal(t, model.HostMaintenance, got.Hosts[1].State)
	require.Equal(t, want.Ceph.PGs[0].UpmapItems, got.Ceph.PGs[0].UpmapItems)
	require.NotEmpty(t, got.Ceph.PGs[0].UpmapItems)
	require.Equal(t, 0.85, got.Ceph.OSDs[2].Reweight)

	// Another cluster configuration starts from its generated cluster and
	// leaves the file alone until it changes something.
	other, _ := newSim(t, Config{Hosts: 6, Instances: 20, Seed: 5, CephHosts: 3, StateFile: path}, nil)
	fresh, _ := newSim(t, Config{Hosts: 6, Instances: 20, Seed: 5, CephHosts: 3}, nil)
	require.Equal(t, placement(fresh.Snapshot()), placement(other.Snapshot()))
	again2, _ := newSim(t, cfg, nil)
	require.Equal(t, placement(want), placement(again2.Snapshot()))
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Hosts: 4, Instances: 8, Seed: 1}
	s, _ := newSim(t, cfg, nil)
	c := s.Snapshot()
	fp := cfg
	fp, err := fp.withDefaults()
	require.NoError(t, err)
	head := `{"version":1,"cluster":"` + fp.fingerprint() + `",`
	for _, tc := range []struct{ name, body, want string }{
		{"not json", `{"version":`, "unexpected EOF"},
		{"unknown field", `{"version":1,"extra":1}`, `unknown field "extra"`},
		{"version", `{"version":7}`, "version 7, want 1"},
		{"unknown instance", head + `"placement":{"nope":"` + c.Hosts[0].Name + `"},"hosts":{}}`, `placement: unknown instance "nope"`},
		{"unknown host", head + `"placement":{"` + c.Instances[0].UUID + `":"nohost"},"hosts":{}}`, `unknown host "nohost"`},
		{"bad state", head + `"placement":{},"hosts":{"` + c.Hosts[0].Name + `":{"state":"broken"}}}`, `state: "broken" is not enabled`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o644))
			cfg := cfg
			cfg.StateFile = path
			_, err := New(cfg, nil, nil)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "remove the file")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.body, string(b), "a bad file is left as it was")
		})
	}
}

// destinationFor returns a host that can take in now.
func (s *Sim) destinationFor(t *testing.T, in model.Instance) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for h := range s.cluster.Hosts {
		if s.canReceive(s.instIdx[in.UUID], h) == nil {
			return s.cluster.Hosts[h].Name
		}
	}
	t.Fatalf("no host can take %s", in.UUID)
	return ""
}

func slicesContainsHost(c *model.Cluster, host string) bool {
	for _, in := range c.Instances {
		if in.Host == host {
			return true
		}
	}
	return false
}

func otherOSD(c *model.Cluster, pg model.PG) int {
	for _, o := range c.Ceph.OSDs {
		in := false
		for _, r := range pg.Raw {
			in = in || r == o.ID
		}
		if !in {
			return o.ID
		}
	}
	return -1
}

func TestMigratedSeriesGoStale(t *testing.T) {
	// After a migration the instance's series carry the new host; the old
	// host's series end with a staleness marker in the next batch, once.
	s, clk := newSim(t, Config{Hosts: 4, Instances: 8, Seed: 2}, nil)
	c := s.Snapshot()
	in := c.Instances[0]
	dest := s.destinationFor(t, in)
	stale := func() (n int, hosts map[string]bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		hosts = map[string]bool{}
		for _, se := range s.batch(clk.Now()).Series {
			if value.IsStaleNaN(se.Samples[0].V) {
				n++
				hosts[se.Labels.Get("host")+se.Labels.Get("vm_instance")] = true
				require.Equal(t, in.UUID, se.Labels.Get("uuid")+se.Labels.Get("resource"))
			}
		}
		return n, hosts
	}
	n, _ := stale()
	require.Zero(t, n)
	require.NoError(t, s.Migrate(context.Background(), in.UUID, dest))
	n, hosts := stale()
	require.Equal(t, 12, n, "every domain and Ceilometer series of the instance on its old host")
	require.Equal(t, map[string]bool{in.Host: true}, hosts)
	n, _ = stale()
	require.Zero(t, n, "marked once")
}
