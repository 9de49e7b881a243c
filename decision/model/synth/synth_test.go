package synth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/model/synth"
)

func TestGenerate(t *testing.T) {
	for _, cfg := range []synth.Config{
		{Hosts: 10, Instances: 100, Seed: 1},
		{Hosts: 50, Instances: 600, Seed: 2, Zones: 3, GroupFraction: 0.2, StoppedFraction: 0.1},
		{Hosts: 5, Instances: 20, Seed: 3, Ceph: synth.CephConfig{OSDHosts: 4}},
	} {
		a, err := synth.Generate(cfg)
		require.NoError(t, err)
		require.NoError(t, a.Validate())
		require.Len(t, a.Hosts, cfg.Hosts)
		require.Len(t, a.Instances, cfg.Instances)
		require.Empty(t, model.CheckPlacement(a))
		b, err := synth.Generate(cfg)
		require.NoError(t, err)
		require.Equal(t, a, b, "same seed, same cluster")
	}
	_, err := synth.Generate(synth.Config{Hosts: 2, Instances: 5000, Seed: 1})
	require.ErrorContains(t, err, "too many")
}
