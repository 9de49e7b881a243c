package migrate_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/migrate"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// tinyGuest is a 64 MiB TCG guest with no disk (infra.md §2): SeaBIOS
// waits for a network boot, which is all a migration needs.
const tinyGuest = `<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os><features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='/var/log/libvirt/%s-serial.log'/></serial>
    <graphics type='vnc' port='-1' listen='127.0.0.1'/><video><model type='none'/></video>
    <memballoon model='virtio'/></devices></domain>`

// heavyGuest is tinyGuest with 24 MiB of random data loaded into its
// memory at boot (qemu's generic loader), so a migration capped at 1 MiB/s
// takes long enough to be timed out or aborted.
const heavyGuest = `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>%s</name><uuid>%s</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os><features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <graphics type='vnc' port='-1' listen='127.0.0.1'/><video><model type='none'/></video></devices>
  <qemu:commandline><qemu:arg value='-device'/><qemu:arg value='loader,file=%s,addr=0x1000000,force-raw=on'/></qemu:commandline></domain>`

type realHost struct {
	name, uri, migrationURI string
	conn                    *libvirt.Connect
}

func realHosts(t *testing.T) (a, b *realHost) {
	t.Helper()
	const what = "two libvirt hosts (scripts/libvirt-hosts.sh up DIR; . DIR/env)"
	a = &realHost{name: "hostA", uri: testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTA_URI", what),
		migrationURI: testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTA_MIGRATION_URI", what)}
	b = &realHost{name: "hostB", uri: testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_URI", what),
		migrationURI: testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_MIGRATION_URI", what)}
	testenv.Exclusive(t, a.uri) // other packages' tests use the same hosts
	for _, h := range []*realHost{a, b} {
		c, err := libvirt.NewConnect(h.uri)
		require.NoError(t, err, "connect to %s", h.uri)
		h.conn = c
		t.Cleanup(func() { _, _ = c.Close() })
	}
	return a, b
}

// where reports the instance's state on h: "" when h does not have it.
func (h *realHost) where(t *testing.T, id string) string {
	t.Helper()
	d, err := h.conn.LookupDomainByUUIDString(id)
	if err != nil {
		var lerr libvirt.Error
		require.ErrorAs(t, err, &lerr)
		require.Equal(t, libvirt.ERR_NO_DOMAIN, lerr.Code, "look up %s on %s: %v", id, h.name, err)
		return ""
	}
	defer d.Free()
	st, _, err := d.GetState()
	require.NoError(t, err)
	switch st {
	case libvirt.DOMAIN_RUNNING:
		return "running"
	case libvirt.DOMAIN_SHUTOFF:
		return "shutoff"
	}
	return fmt.Sprintf("state-%d", st)
}

// countingMigrate is the real migrate actuator with its executions counted.
type countingMigrate struct {
	*migrate.Migrate
	mu sync.Mutex
	n  int
}

func (c *countingMigrate) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Migrate.Execute(ctx, a, progress)
}

func (c *countingMigrate) executions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// run stores and applies one plan of actions and returns its result.
func run(t *testing.T, act actuators.Actuator, p applier.Plan, progress func(string, string, float64)) (*memstate.Store, applier.Result) {
	t.Helper()
	store := memstate.New()
	require.NoError(t, store.Add(p))
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Loader: store,
		Actuators: actuators.Registry{action.Migrate: act}, Progress: progress}, slog.Default())
	require.NoError(t, err)
	defer ap.Stop()
	exs, err := ap.Resume(context.Background())
	require.NoError(t, err)
	require.Len(t, exs, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := exs[0].Wait(ctx)
	require.NoError(t, err)
	return store, res
}

func migrationPlan(id string, a action.Action, planState, actionState string) applier.Plan {
	a.ID = id + "-migrate"
	return applier.Plan{ID: id, State: planState, Actions: []applier.Action{{Action: a, State: actionState}}}
}

// guest defines and starts a guest on a, removed from both hosts when the
// test ends.
func guest(t *testing.T, a, b *realHost, xml func(name, id string) string) (id, name string) {
	t.Helper()
	id = uuid.NewString()
	name = "ballast-applier-" + id[:8]
	dom, err := a.conn.DomainDefineXML(xml(name, id))
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, h := range []*realHost{a, b} {
			if d, err := h.conn.LookupDomainByUUIDString(id); err == nil {
				_ = d.Destroy()
				_ = d.Undefine()
				_ = d.Free()
			}
		}
	})
	require.NoError(t, dom.Create())
	_ = dom.Free()
	require.Equal(t, "running", a.where(t, id))
	return id, name
}

func hostsConfig(a, b *realHost) []migrate.Host {
	return []migrate.Host{{Name: a.name, URI: a.uri, MigrationURI: a.migrationURI}, {Name: b.name, URI: b.uri, MigrationURI: b.migrationURI}}
}

// TestRealLiveMigration migrates a running TCG guest between two real
// libvirtd daemons through the applier, then checks the crash path: an
// action left ONGOING after its migration happened is reconciled SUCCEEDED
// without a second migration. It ends with a cold (offline) migration of
// the shut-off guest.
func TestRealLiveMigration(t *testing.T) {
	a, b := realHosts(t)
	id, name := guest(t, a, b, func(name, id string) string { return fmt.Sprintf(tinyGuest, name, id, name) })

	m, err := migrate.New(migrate.Config{PollInterval: 100 * time.Millisecond, BandwidthMiBps: 512, Hosts: hostsConfig(a, b)}, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	act := &countingMigrate{Migrate: m}
	move := func(src, dst *realHost, live bool) action.Action {
		return action.NewMigrate(action.MigrateParams{Live: live, Source: src.name, Destination: dst.name, InstanceID: id, InstanceName: name}, false)
	}

	// 1. Live migration A → B through the applier.
	var mu sync.Mutex
	var last float64
	store, res := run(t, act, migrationPlan("live", move(a, b, true), actuators.StatePending, ""), func(_, _ string, f float64) {
		mu.Lock()
		last = f
		mu.Unlock()
	})
	st, msg := store.ActionState("live-migrate")
	require.Equal(t, actuators.StateSucceeded, res.State, "%s: %s", st, msg)
	require.Equal(t, "running", b.where(t, id), "the guest runs on the destination")
	require.Empty(t, a.where(t, id), "the guest is gone from the source (undefined)")
	require.Equal(t, 1, act.executions())
	mu.Lock()
	require.Equal(t, 1.0, last)
	mu.Unlock()

	// 2. A stale action (the guest is no longer on hostA) is skipped.
	store, res = run(t, act, migrationPlan("stale", move(a, b, true), actuators.StatePending, ""), nil)
	require.Equal(t, actuators.StateSucceeded, res.State)
	require.Equal(t, "One or more actions were skipped.", res.Message)
	st, msg = store.ActionState("stale-migrate")
	require.Equal(t, actuators.StateSkipped, st)
	require.Equal(t, "Action was skipped automatically: instance "+id+" already runs on destination_node hostB", msg)
	require.Equal(t, 1, act.executions())

	// 3. The applier died after migrating B → A: the action is ONGOING in
	// the store, the guest already on A. A new applier reconciles it.
	back := move(b, a, true)
	require.NoError(t, m.Execute(context.Background(), back, func(float64) {}))
	require.Equal(t, "running", a.where(t, id))
	store, res = run(t, act, migrationPlan("crashed", back, actuators.StateOngoing, actuators.StateOngoing), nil)
	require.Equal(t, actuators.StateSucceeded, res.State)
	st, msg = store.ActionState("crashed-migrate")
	require.Equal(t, actuators.StateSucceeded, st)
	require.Equal(t, "The applier restarted while the action ran; it had taken effect.", msg)
	require.Equal(t, 1, act.executions(), "the reconciled migration was not run again")
	require.Equal(t, "running", a.where(t, id))
	require.Empty(t, b.where(t, id))

	// 4. Cold migration of the shut-off guest: its definition moves.
	d, err := a.conn.LookupDomainByUUIDString(id)
	require.NoError(t, err)
	require.NoError(t, d.Destroy())
	_ = d.Free()
	require.Equal(t, "shutoff", a.where(t, id))
	store, res = run(t, act, migrationPlan("cold", move(a, b, false), actuators.StatePending, ""), nil)
	st, msg = store.ActionState("cold-migrate")
	require.Equal(t, actuators.StateSucceeded, res.State, "%s: %s", st, msg)
	require.Equal(t, "shutoff", b.where(t, id))
	require.Empty(t, a.where(t, id))
	done, err := m.Reconcile(context.Background(), move(a, b, false))
	require.NoError(t, err)
	require.True(t, done)
}

// TestRealMigrationAbort runs migrations too slow to finish (24 MiB of
// guest memory at 1 MiB/s): one passes libvirt.timeout and is aborted, one
// is aborted by cancelling its plan. Both times libvirt rolls back and the
// guest keeps running on the source; progress came from the job's
// statistics meanwhile.
func TestRealMigrationAbort(t *testing.T) {
	a, b := realHosts(t)
	junk := t.TempDir() + "/memory.bin"
	data := make([]byte, 24<<20)
	_, err := rand.Read(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(junk, data, 0o644))
	id, name := guest(t, a, b, func(name, id string) string { return fmt.Sprintf(heavyGuest, name, id, junk) })
	move := action.NewMigrate(action.MigrateParams{Live: true, Source: a.name, Destination: b.name, InstanceID: id, InstanceName: name}, false)

	fast, err := migrate.New(migrate.Config{Hosts: hostsConfig(a, b)}, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, fast.Close()) })
	back := action.NewMigrate(action.MigrateParams{Live: true, Source: b.name, Destination: a.name, InstanceID: id, InstanceName: name}, false)
	// lostRace reports whether an abort waited for libvirt's job lock
	// until the migration had ended (seen on freshly started daemons: the
	// action then truthfully reports SUCCEEDED). It moves the guest back so
	// the abort can be tried again, at most three times.
	lostRace := func(st string, attempt int) bool {
		if st != actuators.StateSucceeded || attempt == 3 {
			return false
		}
		t.Logf("attempt %d: the migration completed before the abort took effect; moving the guest back", attempt)
		_, res := run(t, fast, migrationPlan("back", back, actuators.StatePending, ""), nil)
		require.Equal(t, actuators.StateSucceeded, res.State)
		return true
	}

	// 1. Timeout.
	m, err := migrate.New(migrate.Config{PollInterval: 100 * time.Millisecond, BandwidthMiBps: 1, Timeout: 2 * time.Second,
		Hosts: hostsConfig(a, b)}, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	var store *memstate.Store
	var res applier.Result
	for attempt := 1; ; attempt++ {
		store, res = run(t, m, migrationPlan("timeout", move, actuators.StatePending, ""), nil)
		if st, _ := store.ActionState("timeout-migrate"); !lostRace(st, attempt) {
			break
		}
	}
	require.Equal(t, actuators.StateFailed, res.State)
	_, msg := store.ActionState("timeout-migrate")
	require.Contains(t, msg, "migration of instance "+id+" timed out after 2s (libvirt.timeout)")
	require.Equal(t, "running", a.where(t, id), "rolled back to the source")
	require.Empty(t, b.where(t, id))

	// 2. Cancel with abort, once the job is well into copying memory. Even
	// so the abort can lose the race for the job lock (lostRace).
	slow, err := migrate.New(migrate.Config{PollInterval: 100 * time.Millisecond, BandwidthMiBps: 1, Hosts: hostsConfig(a, b)}, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, slow.Close()) })
	for attempt := 1; ; attempt++ {
		store = memstate.New()
		p := migrationPlan("abort", move, actuators.StatePending, "")
		require.NoError(t, store.Add(p))
		progressed := make(chan float64, 100)
		ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Actuators: actuators.Registry{action.Migrate: slow},
			Progress: func(_, _ string, f float64) {
				select {
				case progressed <- f:
				default:
				}
			}}, slog.Default())
		require.NoError(t, err)
		ex, err := ap.Start(context.Background(), p)
		require.NoError(t, err)
		var f float64
		for f < 0.05 {
			select {
			case f = <-progressed:
			case <-time.After(time.Minute):
				t.Fatal("no progress reported from the migration job")
			}
		}
		require.Less(t, f, 1.0)
		require.NoError(t, ap.Cancel(context.Background(), "abort", true))
		res, err = ex.Wait(context.Background())
		require.NoError(t, err)
		ap.Stop()
		if st, _ := store.ActionState("abort-migrate"); !lostRace(st, attempt) {
			break
		}
	}
	require.Equal(t, actuators.StateCancelled, res.State)
	st, msg := store.ActionState("abort-migrate")
	require.Equal(t, actuators.StateCancelled, st)
	require.Contains(t, msg, "Aborted: migration of instance "+id+" aborted: context canceled")
	require.Equal(t, "running", a.where(t, id), "rolled back to the source")
	require.Empty(t, b.where(t, id))
}
