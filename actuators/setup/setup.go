// Package setup is the actuators' one wiring file: it turns the actuators
// section of the server's configuration (and what the server owns: the
// inventory, the simulator) into the registry of actuators the applier
// runs. Every actuator is registered here, explicitly, with the condition
// that enables it; nothing registers itself.
//
// It wires; it performs no action.
package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/actuators/cephreweight"
	"github.com/ballast-cloud/ballast/actuators/cephupmap"
	"github.com/ballast-cloud/ballast/actuators/hoststate"
	"github.com/ballast-cloud/ballast/actuators/migrate"
	"github.com/ballast-cloud/ballast/actuators/nop"
	"github.com/ballast-cloud/ballast/actuators/nova"
	"github.com/ballast-cloud/ballast/actuators/novaservice"
	"github.com/ballast-cloud/ballast/actuators/simmigrate"
	"github.com/ballast-cloud/ballast/actuators/sleep"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
)

// Config is the `actuators:` section of the server's configuration.
type Config struct {
	// Applier tunes plan execution.
	Applier applier.Config `yaml:"applier"`
	// Libvirt enables migrate when it lists hosts.
	Libvirt migrate.Config `yaml:"libvirt"`
	// Ceph, when present (even empty: librados' defaults), enables
	// ceph_upmap and ceph_reweight.
	Ceph *cephmon.Config `yaml:"ceph"`
	// Nova, when present, enables change_nova_service_state and makes
	// change_host_state set the nova-compute service too.
	Nova *nova.Config `yaml:"nova"`
	// Sleep bounds sleep actions.
	Sleep sleep.Config `yaml:"sleep"`
}

// Validate applies every default and checks every field, naming the bad
// ones (actuators.libvirt.hosts[2].uri: …).
func (c *Config) Validate() error {
	errs := []error{c.Applier.Validate(), c.Sleep.Validate()}
	if len(c.Libvirt.Hosts) > 0 {
		errs = append(errs, c.Libvirt.Validate())
	}
	if c.Ceph != nil {
		errs = append(errs, c.Ceph.Validate())
	}
	if c.Nova != nil {
		errs = append(errs, c.Nova.Validate())
	}
	return prefixed("actuators.", errs...)
}

// prefixed joins errs, each line prefixed with the section name.
func prefixed(prefix string, errs ...error) error {
	var out []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, prefixed(prefix, j.Unwrap()...))
			continue
		}
		out = append(out, fmt.Errorf("%s%w", prefix, err))
	}
	return errors.Join(out...)
}

// Simulator is the simulated cluster (*sim.Sim): it executes sim_migrate,
// and stands in for the inventory and Nova when those are not configured.
type Simulator interface {
	simmigrate.Cluster
	SetHostState(host string, state model.HostState, reason string) error
}

// Deps are what the server owns and the actuators act on.
type Deps struct {
	// Inventory records host states for change_host_state (the Watcher
	// API's persistence; it should implement hoststate.StateReader too).
	Inventory hoststate.Inventory
	// Simulator enables sim_migrate (optional).
	Simulator Simulator
	// HTTPClient is used for Nova (optional).
	HTTPClient *http.Client
}

// Actuators is the wired registry and what must be closed with it.
type Actuators struct {
	Registry actuators.Registry
	closers  []func() error
}

// Close releases the connections (libvirt, Ceph).
func (a *Actuators) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// New validates cfg and builds every enabled actuator. Connections to
// libvirt and Ceph are opened at first use.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Actuators, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := &Actuators{Registry: actuators.Registry{}}
	reg := func(t action.Type, a actuators.Actuator, err error) error {
		if err != nil {
			return fmt.Errorf("actuator %s: %w", t, err)
		}
		out.Registry[t] = a
		return nil
	}
	fail := func(err error) (*Actuators, error) {
		_ = out.Close()
		return nil, err
	}

	// Always: nop and sleep.
	n, err := nop.New(nop.Config{}, logger)
	if err := reg(action.Nop, n, err); err != nil {
		return fail(err)
	}
	sl, err := sleep.New(cfg.Sleep, logger)
	if err := reg(action.Sleep, sl, err); err != nil {
		return fail(err)
	}

	// migrate: libvirt hosts listed.
	if len(cfg.Libvirt.Hosts) > 0 {
		m, err := migrate.New(cfg.Libvirt, logger)
		if err := reg(action.Migrate, m, err); err != nil {
			return fail(prefixed("actuators.", err))
		}
		out.closers = append(out.closers, m.Close)
	}

	// ceph_upmap and ceph_reweight: a ceph section.
	if cfg.Ceph != nil {
		mon, err := cephmon.New(*cfg.Ceph, logger)
		if err != nil {
			return fail(prefixed("actuators.", err))
		}
		out.closers = append(out.closers, mon.Close)
		u, err := cephupmap.New(cephupmap.Config{}, cephupmap.Deps{Mon: mon}, logger)
		if err := reg(action.CephUpmap, u, err); err != nil {
			return fail(err)
		}
		r, err := cephreweight.New(cephreweight.Config{}, cephreweight.Deps{Mon: mon}, logger)
		if err := reg(action.CephReweight, r, err); err != nil {
			return fail(err)
		}
	}

	// change_nova_service_state: a nova section, else the simulator.
	var services novaservice.Services
	var hook hoststate.NovaHook
	if cfg.Nova != nil {
		c, err := nova.New(*cfg.Nova, deps.HTTPClient, logger)
		if err != nil {
			return fail(prefixed("actuators.", err))
		}
		services, hook = c, c
	} else if deps.Simulator != nil {
		services = simInventory{deps.Simulator}
	} else if r, ok := deps.Inventory.(hoststate.StateReader); ok {
		// No Nova: a compute service is enabled when Ballast's inventory
		// says the host is.
		services = inventoryServices{deps.Inventory, r}
	}
	if services != nil {
		s, err := novaservice.New(novaservice.Config{}, novaservice.Deps{Services: services}, logger)
		if err := reg(action.ChangeNovaServiceState, s, err); err != nil {
			return fail(err)
		}
	}

	// change_host_state: an inventory, else the simulator.
	inv := deps.Inventory
	if inv == nil && deps.Simulator != nil {
		inv = simInventory{deps.Simulator}
	}
	if inv != nil {
		h, err := hoststate.New(hoststate.Config{}, hoststate.Deps{Inventory: inv, Nova: hook}, logger)
		if err := reg(action.ChangeHostState, h, err); err != nil {
			return fail(err)
		}
	}

	// sim_migrate: the simulator. Without libvirt hosts, the simulator also
	// performs migrate: the engine plans migrations the same way for a real
	// and a simulated cluster.
	if deps.Simulator != nil {
		s, err := simmigrate.New(simmigrate.Config{}, simmigrate.Deps{Cluster: deps.Simulator}, logger)
		if err := reg(action.SimMigrate, s, err); err != nil {
			return fail(err)
		}
		if _, ok := out.Registry[action.Migrate]; !ok {
			out.Registry[action.Migrate] = s
		}
	}
	logger.Info("Actuators ready", "component", "actuators/setup", "action_types", strings.Join(out.Registry.Types(), ","))
	return out, nil
}

// simInventory lets the simulator serve as inventory and Nova: its hosts'
// state is both.
type simInventory struct{ s Simulator }

var (
	_ hoststate.Inventory   = simInventory{}
	_ hoststate.StateReader = simInventory{}
	_ novaservice.Services  = simInventory{}
)

func (i simInventory) SetHostState(_ context.Context, host, state, reason string) error {
	return i.s.SetHostState(host, model.HostState(state), reason)
}

func (i simInventory) HostState(_ context.Context, host string) (string, error) {
	c := i.s.Snapshot()
	for k := range c.Hosts {
		if c.Hosts[k].Name == host {
			return string(c.Hosts[k].EffectiveState()), nil
		}
	}
	return "", fmt.Errorf("simulated host %s: %w", host, hoststate.ErrUnknownHost)
}

func (i simInventory) ServiceEnabled(ctx context.Context, host string) (bool, error) {
	st, err := i.HostState(ctx, host)
	if errors.Is(err, hoststate.ErrUnknownHost) {
		return false, fmt.Errorf("simulated host %s: %w", host, nova.ErrNoService)
	}
	return st == string(model.HostEnabled), err
}

func (i simInventory) SetServiceEnabled(ctx context.Context, host string, enabled bool, reason string) error {
	st := model.HostDisabled
	if enabled {
		st = model.HostEnabled
	}
	return i.SetHostState(ctx, host, string(st), reason)
}

// inventoryServices lets Ballast's host inventory stand in for Nova's
// compute services on clouds without Nova.
type inventoryServices struct {
	inv hoststate.Inventory
	r   hoststate.StateReader
}

var _ novaservice.Services = inventoryServices{}

func (i inventoryServices) ServiceEnabled(ctx context.Context, host string) (bool, error) {
	st, err := i.r.HostState(ctx, host)
	if errors.Is(err, hoststate.ErrUnknownHost) {
		return false, fmt.Errorf("host %s: %w", host, nova.ErrNoService)
	}
	return st == string(model.HostEnabled), err
}

func (i inventoryServices) SetServiceEnabled(ctx context.Context, host string, enabled bool, reason string) error {
	st := model.HostDisabled
	if enabled {
		st = model.HostEnabled
	}
	return i.inv.SetHostState(ctx, host, string(st), reason)
}
