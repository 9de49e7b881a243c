package watcher

import (
	"context"
	"errors"

	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/web/store"
)

// Launcher connects the API to the applier: it loads a PENDING plan from
// the store and starts it, and forwards cancellations.
type Launcher struct {
	store   *store.Store
	applier *applier.Applier
}

var (
	_ audit.Launcher = (*Launcher)(nil)
	_ Canceller      = (*Launcher)(nil)
)

// ApplierLauncher returns the launcher for ap, whose StateStore and
// PlanLoader must be st.
func ApplierLauncher(st *store.Store, ap *applier.Applier) *Launcher {
	return &Launcher{store: st, applier: ap}
}

// Start implements audit.Launcher. A plan the applier already runs, or that
// it cannot take because it is stopping, stays as it is: the next Resume
// picks it up. Any other refusal (an action type without an actuator, a
// malformed DAG) is returned and fails the plan.
func (l *Launcher) Start(ctx context.Context, planUUID string) error {
	p, err := l.store.ApplierPlan(ctx, planUUID)
	if err != nil {
		return err
	}
	_, err = l.applier.Start(ctx, p)
	if errors.Is(err, applier.ErrAlreadyRunning) || errors.Is(err, applier.ErrStopped) {
		return nil
	}
	return err
}

// Cancel implements Canceller: running actions finish, as in Watcher. A
// plan the applier is not running (PENDING, cancelled by the API alone)
// needs nothing more.
func (l *Launcher) Cancel(ctx context.Context, planUUID string) error {
	err := l.applier.Cancel(ctx, planUUID, false)
	if errors.Is(err, applier.ErrNotRunning) {
		return nil
	}
	return err
}
