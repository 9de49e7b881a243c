package setup_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/nova/novatest"
	"github.com/ballast-cloud/ballast/actuators/setup"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/planner"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func parse(t *testing.T, doc string) setup.Config {
	t.Helper()
	var cfg setup.Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	return cfg
}

func TestValidationNamesTheField(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{`
libvirt:
  hosts:
    - {name: a, uri: "qemu+tcp://a/system"}
    - {name: b, uri: "qemu+tcp://b/system"}
    - {name: c, uri: "::not a uri"}
`, `actuators.libvirt.hosts[2].uri: "::not a uri" is not a URI`},
		{"libvirt: {hosts: [{name: a, uri: 'qemu:///system'}], timeout: -1s}", "actuators.libvirt.timeout: -1s must not be negative"},
		{"nova: {url: 'http://nova:8774/v2.1'}", "actuators.nova.token: set token or token_file"},
		{"ceph: {timeout: 10ms}", "actuators.ceph.timeout: 10ms must be at least 1s"},
		{"applier: {per_host: -1}", "actuators.applier.per_host: -1 must not be negative"},
		{"sleep: {max_duration: -1m}", "actuators.sleep.max_duration: -1m0s must not be negative"},
	}
	for _, tt := range tests {
		cfg := parse(t, tt.doc)
		err := cfg.Validate()
		require.ErrorContains(t, err, tt.want)
		_, err = setup.New(cfg, setup.Deps{}, nil)
		require.ErrorContains(t, err, tt.want)
	}
	// Every bad field is reported, each with its path.
	cfg := parse(t, "applier: {global: -3}\nlibvirt: {hosts: [{name: '', uri: 'qemu:///system'}]}")
	err := cfg.Validate()
	require.ErrorContains(t, err, "actuators.applier.global: -3 must not be negative")
	require.ErrorContains(t, err, "actuators.libvirt.hosts[0].name: must not be empty")
}

func TestWiring(t *testing.T) {
	dir := t.TempDir()
	aURI, err := virttest.Host{CPUs: 8, MemoryKiB: 16 << 20, Domains: 1}.Write(dir)
	require.NoError(t, err)
	srv := novatest.New(t, "wiring-token", "compute-1")
	cfg := parse(t, `
applier:
  abort_on_cancel: true
  per_host: 3
libvirt:
  bandwidth_mib_per_second: 256
  auto_converge: true
  hosts:
    - name: compute-1
      uri: "`+aURI+`"
      migration_uri: qemu+tcp://10.0.0.1/system
      migration_address: tcp://10.1.0.1
ceph:
  config_file: /nonexistent/ceph.conf
nova:
  url: `+srv.URL()+`
  token: wiring-token
sleep:
  max_duration: 10m
`)
	a, err := setup.New(cfg, setup.Deps{HTTPClient: srv.Client()}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.Equal(t, []string{"ceph_reweight", "ceph_upmap", "change_nova_service_state", "migrate", "nop", "sleep"}, a.Registry.Types())
	require.NoError(t, cfg.Validate())
	require.Equal(t, 3, cfg.Applier.PerHost)
	require.Equal(t, 16, cfg.Applier.Global, "defaults applied")
	// The Nova hook is live.
	store := memstate.New()
	ap, err := applier.New(cfg.Applier, applier.Deps{Store: store, Actuators: a.Registry}, nil)
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	act := action.NewServiceState("", "compute-1", false, "wired")
	act.ID = "w-0"
	p := applier.Plan{ID: "w", Actions: []applier.Action{{Action: act}}}
	require.NoError(t, store.Add(p))
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateSucceeded, res.State)
	status, reason := srv.Status("compute-1")
	require.Equal(t, "disabled", status)
	require.Equal(t, "wired", reason)
	// Ceph is dialled at first use: a missing config fails the action, not
	// the start.
	err = a.Registry[action.CephReweight].Precondition(context.Background(), action.NewReweight(1, 0.5, 1))
	require.ErrorContains(t, err, `read ceph config "/nonexistent/ceph.conf"`)
}

// On the simulator alone, a host-maintenance plan built by the planner runs
// end to end: the service is disabled, every instance moves off, the host
// goes into maintenance.
func TestSimulatorMaintenance(t *testing.T) {
	s, err := sim.New(sim.Config{Hosts: 8, Instances: 40, Seed: 11,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}, nil, nil)
	require.NoError(t, err)
	a, err := setup.New(setup.Config{}, setup.Deps{Simulator: s}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"change_host_state", "change_nova_service_state", "migrate", "nop", "sim_migrate", "sleep"}, a.Registry.Types(),
		"without libvirt hosts the simulator performs migrate too")
	c := s.Snapshot()
	host := c.Instances[0].Host
	acts := []action.Action{action.NewServiceState("", host, false, "maintenance"), action.NewHostState("", host, "maintenance", "disk swap")}
	for _, in := range c.Instances {
		if in.Host == host {
			acts = append(acts, action.NewMigrate(action.MigrateParams{Live: true, Source: host, InstanceID: in.UUID}, true))
		}
	}
	require.Greater(t, len(acts), 3)
	built, err := planner.Build(acts, planner.Options{})
	require.NoError(t, err)
	p := applier.Plan{ID: "maint", Limits: built.Limits}
	for _, x := range built.Actions {
		p.Actions = append(p.Actions, applier.Action{Action: x})
	}
	store := memstate.New()
	require.NoError(t, store.Add(p))
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: a.Registry}, nil)
	require.NoError(t, err)
	t.Cleanup(ap.Stop)
	ex, err := ap.Start(context.Background(), p)
	require.NoError(t, err)
	res, err := ex.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, actuators.StateSucceeded, res.State, res.Message)
	after := s.Snapshot()
	for _, in := range after.Instances {
		require.NotEqual(t, host, in.Host, "instance %s still on %s", in.UUID, host)
	}
	for _, h := range after.Hosts {
		if h.Name == host {
			require.Equal(t, model.HostMaintenance, h.State)
			require.Equal(t, "disk swap", h.DisabledReason)
		}
	}
}
