package model_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
)

func small(t testing.TB) *model.Cluster {
	t.Helper()
	c, err := synth.Generate(synth.Config{Hosts: 6, Instances: 80, Seed: 7, Zones: 2, GroupFraction: 0.3,
		Ceph: synth.CephConfig{OSDHosts: 3, OSDsPerHost: 2, Pools: 1, PGsPerPool: 16}})
	require.NoError(t, err)
	return c
}

func TestRoundTrip(t *testing.T) {
	c := small(t)
	var b bytes.Buffer
	require.NoError(t, model.Write(&b, c, true))
	got, err := model.Read(&b)
	require.NoError(t, err)
	require.Equal(t, c, got)
}

func TestReadRejects(t *testing.T) {
	valid := `{"version":1,"hosts":[{"name":"h1","capacity":{"vcpus":8,"memory_mb":1024,"disk_gb":10}}],` +
		`"instances":[{"uuid":"i1","host":"h1","flavor":{"vcpus":1,"memory_mb":512,"disk_gb":1},"state":"active"}]}`
	_, err := model.Decode([]byte(valid))
	require.NoError(t, err)
	for _, tc := range []struct{ name, in, want string }{
		{"no version", `{"hosts":[]}`, "version: missing"},
		{"future version", `{"version":2}`, "version: 2 is not supported"},
		{"unknown field", strings.Replace(valid, `"hosts"`, `"hostz":[],"hosts"`, 1), "unknown field"},
		{"unknown host", strings.Replace(valid, `"host":"h1"`, `"host":"h9"`, 1), `instances[0].host: "h9" is not a host`},
		{"zero vcpus", strings.Replace(valid, `"vcpus":8`, `"vcpus":0`, 1), "hosts[0].capacity.vcpus: 0 must be positive"},
		{"bad state", strings.Replace(valid, `"state":"active"`, `"state":"dancing"`, 1), `instances[0].state: "dancing"`},
		{"percent not fraction", strings.Replace(valid, `"state":"active"`, `"state":"active","usage":{"cpu":45,"memory_mb":1}`, 1), "instances[0].usage.cpu: 45 must be a fraction"},
		{"duplicate uuid", strings.Replace(valid, `"state":"active"}]`, `"state":"active"},{"uuid":"i1","host":"h1","flavor":{"vcpus":1,"memory_mb":1,"disk_gb":0},"state":"active"}]`, 1), `instances[1].uuid: "i1" already used`},
		{"trailing", valid + "{}", "line 1, column 197: data after the model object"},
		{"bad host state", strings.Replace(valid, `"name":"h1"`, `"name":"h1","state":"gone"`, 1), `hosts[0].state: "gone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := model.Decode([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCephValidation(t *testing.T) {
	c := small(t)
	c.Ceph.PGs[0].Raw = []int{0, 99, 1}
	c.Ceph.PGs[1].UpmapItems = []model.UpmapItem{{From: 1234, To: 0}}
	err := c.Validate()
	require.ErrorContains(t, err, "ceph.pgs[0].raw[1]: OSD 99 is not in ceph.osds")
	require.ErrorContains(t, err, "ceph.pgs[1].upmap_items[0].from: OSD 1234 is not in the PG's raw mapping")
}

func TestIndex(t *testing.T) {
	c := small(t)
	ix, err := model.NewIndex(c)
	require.NoError(t, err)
	require.Len(t, ix.Zones, 2)
	n := 0
	for h, l := range ix.HostInstances {
		for _, i := range l {
			require.Equal(t, c.Hosts[h].Name, c.Instances[i].Host)
			n++
		}
	}
	require.Equal(t, len(c.Instances), n)
	for i, g := range ix.InstanceGroup {
		if g >= 0 {
			require.Equal(t, ix.Groups[g], c.Instances[i].Metadata.AntiAffinityGroup)
		}
	}
}

func TestCheckPlacementAndMoves(t *testing.T) {
	c := small(t)
	c.Instances[0].Metadata.AntiAffinityGroup = "g"
	c.Instances[1].Metadata.AntiAffinityGroup = "g"
	c.Instances[1].Host = c.Hosts[1].Name
	if c.Instances[0].Host == c.Hosts[1].Name {
		c.Instances[0].Host = c.Hosts[2].Name
	}
	require.Empty(t, model.CheckPlacement(c))
	// Pile every instance on one host: capacity and anti-affinity break.
	var moves []model.Move
	for _, in := range c.Instances {
		moves = append(moves, model.Move{Instance: in.UUID, To: c.Hosts[0].Name})
	}
	after, err := model.ApplyMoves(c, moves)
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, v := range model.CheckPlacement(after) {
		kinds[v.Kind] = true
	}
	require.True(t, kinds["capacity"])
	require.True(t, kinds["anti_affinity"])
	require.Empty(t, model.CheckPlacement(c), "ApplyMoves must not change its input")
	_, err = model.ApplyMoves(c, []model.Move{{Instance: "nope", To: c.Hosts[0].Name}})
	require.ErrorContains(t, err, `moves[0].instance: "nope"`)
}

func TestCloneIsDeep(t *testing.T) {
	c := small(t)
	cp := c.Clone()
	cp.Hosts[0].Usage.CPU = 0.99
	cp.Instances[0].Usage.CPU = 0.99
	cp.Ceph.PGs[0].Raw[0] = 42
	require.NotEqual(t, 0.99, c.Hosts[0].Usage.CPU)
	require.NotEqual(t, 0.99, c.Instances[0].Usage.CPU)
	require.NotEqual(t, 42, c.Ceph.PGs[0].Raw[0])
}

func TestParseAggregate(t *testing.T) {
	for in, want := range map[string]model.Aggregate{
		"mean": {Kind: "mean"}, "avg": {Kind: "mean"}, "max": {Kind: "max"}, "p95": {Kind: "percentile", Quantile: 0.95},
	} {
		got, err := model.ParseAggregate(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"p0", "p100", "median", "px"} {
		_, err := model.ParseAggregate(bad)
		require.Error(t, err, bad)
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	require.NoError(f, model.Write(&b, small(f), false))
	f.Add(b.Bytes())
	f.Add([]byte(`{"version":1,"hosts":[],"instances":[]}`))
	f.Add([]byte(pathModel))
	f.Add([]byte(strings.Replace(pathModel, `"start": "2026-11-21T09:00:00Z"`, `"start": "yesterday"`, 1)))
	f.Add([]byte(`{"version":1,"hosts":[{"name":"a","capacity":{"vcpus":1,"memory_mb":1,"disk_gb":0}}],"instances":[],"ceph":{"osds":[],"pools":[],"pgs":[{"pgid":"1.0","pool":1,"raw":[0]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := model.Decode(data)
		if err != nil {
			// Every problem is located: a path, a line and column, or
			// the validation's named fields.
			var de *model.DecodeError
			var ve *model.ValidationError
			if !errors.As(err, &de) && !errors.As(err, &ve) {
				t.Fatalf("error without a place: %v", err)
			}
			return
		}
		// Whatever Read accepts must index, check and round-trip.
		if _, err := model.NewIndex(c); err != nil {
			t.Fatalf("valid model does not index: %v", err)
		}
		model.CheckPlacement(c)
		var out bytes.Buffer
		if err := model.Write(&out, c, false); err != nil {
			t.Fatalf("write: %v", err)
		}
		again, err := model.Decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		require.Equal(t, c, again)
	})
}
