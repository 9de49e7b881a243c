package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/collect"
)

// ResourceHost names hosts in the audit log.
const ResourceHost = "host"

// SetHostState records a host's state (enabled, disabled or maintenance)
// with the reason, logs the change and publishes io.ballast.host.state.v1
// (which decision/collect's inventory applies to the model).
func (s *Store) SetHostState(ctx context.Context, host, state, reason string) error {
	switch state {
	case "enabled", "disabled", "maintenance":
	default:
		return inputErr("host state %q is not one of enabled, disabled, maintenance", state)
	}
	return s.write(ctx, func(t *tx) error {
		var prev string
		err := t.QueryRowContext(t.ctx, "SELECT state FROM host_states WHERE host = ?", host).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := t.exec(`INSERT INTO host_states (host, state, reason, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at`,
			host, state, nullString(reason), fmtTime(t.now)); err != nil {
			return fmt.Errorf("host %s: %w", host, err)
		}
		a := ActorFrom(t.ctx)
		if err := t.appendLog(&LogEntry{Kind: KindStateChange, Actor: a.Name, Role: a.Role, Remote: a.Remote,
			ResourceType: ResourceHost, ResourceUUID: host, From: prev, To: state, Detail: reason}); err != nil {
			return err
		}
		t.event(bus.TypeHostState, host, collect.HostStateEvent{Host: host, State: state, DisabledReason: reason})
		return nil
	})
}

// HostState returns the state recorded for a host, and whether there is
// one.
func (s *Store) HostState(ctx context.Context, host string) (string, bool, error) {
	var state string
	err := s.db.QueryRowContext(ctx, "SELECT state FROM host_states WHERE host = ?", host).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return state, err == nil, err
}
