package migrate_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/migrate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidation(t *testing.T) {
	good := func() migrate.Config {
		return migrate.Config{Hosts: []migrate.Host{{Name: "a", URI: "qemu+tcp://a/system"}, {Name: "b", URI: "qemu+tcp://b/system"}}}
	}
	tests := []struct {
		name   string
		change func(*migrate.Config)
		want   string
	}{
		{"bad uri", func(c *migrate.Config) {
			c.Hosts = append(c.Hosts, migrate.Host{Name: "c", URI: "not a uri"})
		}, `libvirt.hosts[2].uri: "not a uri" is not a URI (want e.g. qemu+tcp://host/system)`},
		{"duplicate name", func(c *migrate.Config) { c.Hosts[1].Name = "a" }, `libvirt.hosts[1].name: "a" is also hosts[0]`},
		{"empty name", func(c *migrate.Config) { c.Hosts[0].Name = "" }, "libvirt.hosts[0].name: must not be empty"},
		{"bad migration uri", func(c *migrate.Config) { c.Hosts[0].MigrationURI = "::" }, `libvirt.hosts[0].migration_uri: "::" is not a URI`},
		{"bad migration address", func(c *migrate.Config) { c.Hosts[1].MigrationAddress = "http://10.0.0.2" },
			`libvirt.hosts[1].migration_address: "http://10.0.0.2" has scheme "http", want one of tcp, rdma, unix`},
		{"negative timeout", func(c *migrate.Config) { c.Timeout = -time.Second }, "libvirt.timeout: -1s must not be negative"},
		{"no hosts", func(c *migrate.Config) { c.Hosts = nil }, "libvirt.hosts: list at least the hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			_, err := migrate.New(c, nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
	c := good()
	m, err := migrate.New(c, nil)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, c.Validate())
	require.Equal(t, "qemu+tcp://a/system", c.Hosts[0].MigrationURI, "migration_uri defaults to uri")
	require.Equal(t, 15*time.Minute, c.Timeout)
}

// The in-process test driver (no daemon) is real libvirt: domains are
// looked up on the configured hosts; it cannot migrate, which exercises the
// error path.
func TestPreconditionTestDriver(t *testing.T) {
	dir := t.TempDir()
	aURI, err := virttest.Host{CPUs: 16, MemoryKiB: 64 << 20, Domains: 2}.Write(dir)
	require.NoError(t, err)
	bURI, err := virttest.Host{CPUs: 16, MemoryKiB: 64 << 20, Domains: 0}.Write(dir)
	require.NoError(t, err)
	m, err := migrate.New(migrate.Config{Hosts: []migrate.Host{{Name: "a", URI: aURI}, {Name: "b", URI: bURI}}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	mig := func(instance, src, dst string) action.Action {
		return action.NewMigrate(action.MigrateParams{Live: true, Source: src, Destination: dst, InstanceID: instance}, false)
	}
	tests := []struct {
		name string
		act  action.Action
		skip string
		err  string
	}{
		{"on source", mig(virttest.UUID(0), "a", "b"), "", ""},
		{"by name", mig(virttest.Name(1), "a", "b"), "", ""},
		{"not on source", mig(virttest.UUID(7), "a", "b"), "instance " + virttest.UUID(7) + " is not on source_node a", ""},
		{"already on destination", mig(virttest.UUID(0), "b", "a"), "instance " + virttest.UUID(0) + " already runs on destination_node a", ""},
		{"unknown host", mig(virttest.UUID(0), "a", "c"), "", `destination_node "c" is not in actuators.libvirt.hosts`},
		{"no destination", mig(virttest.UUID(0), "a", ""), "", "destination_node is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Precondition(context.Background(), tt.act)
			switch {
			case tt.skip != "":
				require.ErrorIs(t, err, actuators.ErrSkip)
				require.Equal(t, tt.skip, actuators.SkipReason(err))
			case tt.err != "":
				require.ErrorContains(t, err, tt.err)
				require.NotErrorIs(t, err, actuators.ErrSkip)
			default:
				require.NoError(t, err)
			}
		})
	}
	a := mig(virttest.UUID(0), "a", "b")
	err = m.Execute(context.Background(), a, func(float64) {})
	require.ErrorContains(t, err, "migrate instance "+virttest.UUID(0)+" from a to b")
	done, err := m.Reconcile(context.Background(), a)
	require.NoError(t, err)
	require.False(t, done, "the domain still runs on the source")
}
