package watcher

import (
	"context"
	"fmt"

	"github.com/ballast-cloud/ballast/actuators/hoststate"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/web/store"
)

// HostInventory is the inventory the change_host_state actuator records
// host states in: states set by actions are stored (and audit-logged and
// published), and a host's state is the stored one, else the cluster
// model's; a host in neither is unknown.
type HostInventory struct {
	store  *store.Store
	models audit.ModelSource
}

var (
	_ hoststate.Inventory   = (*HostInventory)(nil)
	_ hoststate.StateReader = (*HostInventory)(nil)
)

// NewHostInventory returns the inventory over st and the model source.
func NewHostInventory(st *store.Store, models audit.ModelSource) *HostInventory {
	return &HostInventory{store: st, models: models}
}

// SetHostState implements hoststate.Inventory.
func (h *HostInventory) SetHostState(ctx context.Context, host, state, reason string) error {
	return h.store.SetHostState(ctx, host, state, reason)
}

// HostState implements hoststate.StateReader.
func (h *HostInventory) HostState(ctx context.Context, host string) (string, error) {
	if st, ok, err := h.store.HostState(ctx, host); err != nil || ok {
		return st, err
	}
	c, err := h.models.Model(ctx, collect.DefaultWindow)
	if err != nil {
		return "", fmt.Errorf("cluster model: %w", err)
	}
	for _, hs := range c.Hosts {
		if hs.Name == host {
			if hs.State == "" {
				return string(model.HostEnabled), nil
			}
			return string(hs.State), nil
		}
	}
	return "", fmt.Errorf("%s: %w", host, hoststate.ErrUnknownHost)
}
