package collect

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/ballast-cloud/ballast/collector/bus"
	dmodel "github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/exporters/inventory"
)

// EventInventory keeps the inventory from the events agents publish on the
// bus: an io.ballast.inventory.v1 event replaces one host and its instances
// (data: model.HostInventory); io.ballast.host.state.v1 and
// io.ballast.instance.lifecycle.v1 events update a host's state or an
// instance between inventories. Unknown event types are ignored.
type EventInventory struct {
	mu     sync.RWMutex
	hosts  map[string]*dmodel.HostInventory
	where  map[string]string // instance UUID → host
	logger *slog.Logger
}

var _ Inventory = (*EventInventory)(nil)

// HostStateEvent is the data of a host state event.
type HostStateEvent struct {
	Host           string `json:"host"`
	State          string `json:"state,omitempty"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	PowerState     string `json:"power_state,omitempty"`
}

// InstanceEvent is the data of an instance lifecycle event: Event is
// created, deleted, migrated or state; Instance carries the new view (its
// Host is the new host after a migration).
type InstanceEvent struct {
	Event    string          `json:"event"`
	Instance dmodel.Instance `json:"instance"`
}

// NewEventInventory returns an empty inventory.
func NewEventInventory(logger *slog.Logger) *EventInventory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EventInventory{hosts: map[string]*dmodel.HostInventory{}, where: map[string]string{},
		logger: logger.With("component", "decision/inventory")}
}

// Types are the event types the inventory consumes.
var Types = []string{bus.TypeInventory, bus.TypeHostState, bus.TypeInstanceLifecycle}

// Run consumes inventory events until ctx ends.
func (e *EventInventory) Run(ctx context.Context, c bus.EventConsumer, group string) error {
	return c.ConsumeEvents(ctx, group, Types, e.Handle)
}

// Handle applies one event; it is a bus.EventHandler.
func (e *EventInventory) Handle(_ context.Context, ev bus.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev.Type {
	case bus.TypeInventory:
		inv, err := decodeInventory(&ev)
		if err != nil {
			return err
		}
		if inv.Host.Name == "" {
			return bus.Permanent("invalid", fmt.Errorf("inventory event %s: host.name is empty", ev.ID))
		}
		name := inv.Host.Name
		if old, ok := e.hosts[name]; ok {
			for _, in := range old.Instances {
				if e.where[in.UUID] == name {
					delete(e.where, in.UUID)
				}
			}
		}
		for i := range inv.Instances {
			inv.Instances[i].Host = name
			// An instance reported by its new host leaves its old one.
			if prev, ok := e.where[inv.Instances[i].UUID]; ok && prev != name {
				e.remove(prev, inv.Instances[i].UUID)
			}
			e.where[inv.Instances[i].UUID] = name
		}
		e.hosts[name] = &inv
	case bus.TypeHostState:
		var hs HostStateEvent
		if err := ev.Decode(&hs); err != nil {
			return bus.Permanent("decode", err)
		}
		h, ok := e.hosts[hs.Host]
		if !ok {
			return nil // the next inventory brings the host
		}
		if hs.State != "" {
			h.Host.State = dmodel.HostState(hs.State)
			h.Host.DisabledReason = hs.DisabledReason
		}
		if hs.PowerState != "" {
			h.Host.PowerState = dmodel.PowerState(hs.PowerState)
		}
	case bus.TypeInstanceLifecycle:
		var ie InstanceEvent
		if err := ev.Decode(&ie); err != nil {
			return bus.Permanent("decode", err)
		}
		id := ie.Instance.UUID
		if prev, ok := e.where[id]; ok {
			e.remove(prev, id)
			delete(e.where, id)
		}
		if ie.Event == "deleted" {
			return nil
		}
		if h, ok := e.hosts[ie.Instance.Host]; ok {
			h.Instances = append(h.Instances, ie.Instance)
			e.where[id] = ie.Instance.Host
		}
	}
	return nil
}

// remove drops instance id from host's list.
func (e *EventInventory) remove(host, id string) {
	if h, ok := e.hosts[host]; ok {
		h.Instances = slices.DeleteFunc(h.Instances, func(in dmodel.Instance) bool { return in.UUID == id })
	}
}

// Inventory returns the hosts and instances known, sorted by name and UUID
// so that the same events give the same model.
func (e *EventInventory) Inventory(context.Context) (*dmodel.Cluster, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	c := &dmodel.Cluster{Version: dmodel.Version, Source: "inventory", Hosts: []dmodel.Host{}, Instances: []dmodel.Instance{}}
	names := make([]string, 0, len(e.hosts))
	for n := range e.hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := e.hosts[n]
		c.Hosts = append(c.Hosts, h.Host)
		c.Instances = append(c.Instances, h.Instances...)
	}
	sort.SliceStable(c.Instances, func(i, j int) bool { return c.Instances[i].UUID < c.Instances[j].UUID })
	return c.Clone(), nil
}

// StaticInventory serves a fixed model (a file, the simulator's snapshot).
type StaticInventory struct{ Cluster *dmodel.Cluster }

var _ Inventory = StaticInventory{}

// Inventory returns the model.
func (s StaticInventory) Inventory(context.Context) (*dmodel.Cluster, error) {
	if s.Cluster == nil {
		return nil, fmt.Errorf("static inventory: no model")
	}
	return s.Cluster, nil
}

// decodeInventory reads an inventory event in either form: the agent's
// (exporters/inventory, with a schema_version) or the model's own
// HostInventory (the simulator's).
func decodeInventory(ev *bus.Event) (dmodel.HostInventory, error) {
	var probe struct {
		SchemaVersion string `json:"schema_version"`
	}
	if err := ev.Decode(&probe); err != nil {
		return dmodel.HostInventory{}, bus.Permanent("decode", err)
	}
	if probe.SchemaVersion == "" {
		var inv dmodel.HostInventory
		if err := ev.Decode(&inv); err != nil {
			return inv, bus.Permanent("decode", err)
		}
		return inv, nil
	}
	if schemaMajor(probe.SchemaVersion) != schemaMajor(inventory.SchemaVersion) {
		return dmodel.HostInventory{}, bus.Permanent("schema", fmt.Errorf("inventory event %s: schema_version %q is not %s.x", ev.ID, probe.SchemaVersion, inventory.SchemaVersion))
	}
	var agent inventory.Inventory
	if err := ev.Decode(&agent); err != nil {
		return dmodel.HostInventory{}, bus.Permanent("decode", err)
	}
	inv, err := FromAgent(&agent)
	if err != nil {
		return inv, bus.Permanent("invalid", fmt.Errorf("inventory event %s: %w", ev.ID, err))
	}
	return inv, nil
}
