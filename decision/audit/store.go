package audit

import (
	"context"
	"errors"
	"time"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/decision/model"
)

// ErrNotFound is returned by a Store for a record that does not exist (or
// was soft-deleted).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a Store when a compare-and-set finds another
// state than expected: someone else moved the record first.
var ErrConflict = errors.New("state changed concurrently")

// AuditFilter selects audits; empty fields select everything.
type AuditFilter struct {
	Types  []Type
	States []string
}

// AuditStore reads and moves audits.
type AuditStore interface {
	GetAudit(ctx context.Context, uuid string) (*Audit, error)
	ListAudits(ctx context.Context, f AuditFilter) ([]Audit, error)
	// TransitionAudit moves an audit whose state is one of from to the
	// state to (compare-and-set: ErrConflict otherwise), recording message
	// as its status message and, when not empty, hostname.
	TransitionAudit(ctx context.Context, uuid string, from []string, to, message, hostname string) error
	// SetNextRunTime records when a continuous audit runs next.
	SetNextRunTime(ctx context.Context, uuid string, t time.Time) error
}

// SaveRequest is a computed plan to store for an audit run.
type SaveRequest struct {
	AuditUUID string
	Plan      *decision.Plan
	// State is the new plan's state: RECOMMENDED, PENDING (auto_trigger)
	// or SUCCEEDED (nothing to do).
	State string
	// Supersede moves the audit's other RECOMMENDED plans to SUPERSEDED
	// (continuous audits: only the latest recommendation stands).
	Supersede bool
	// AuditState, when set, is the audit's new state, moved from ONGOING
	// in the same transaction (ONESHOT and EVENT runs end SUCCEEDED).
	AuditState string
	Hostname   string
}

// PlanStore stores plans.
type PlanStore interface {
	// OngoingPlan returns the UUID of an ONGOING action plan, or "".
	OngoingPlan(ctx context.Context) (string, error)
	// SavePlan stores the plan, its actions and efficacy atomically, as
	// long as the audit is still ONGOING (ErrConflict otherwise: the run
	// was cancelled meanwhile).
	SavePlan(ctx context.Context, req SaveRequest) (*ActionPlan, error)
	// ExpirePlans moves RECOMMENDED plans created before t to SUPERSEDED
	// and returns their UUIDs.
	ExpirePlans(ctx context.Context, createdBefore time.Time) ([]string, error)
	// TransitionPlan is a compare-and-set of a plan's state.
	TransitionPlan(ctx context.Context, planUUID, from, to, message string) error
}

// Store is everything the Runner persists.
type Store interface {
	AuditStore
	PlanStore
}

// ModelSource provides the cluster model an audit plans on, aggregated over
// the metric window the strategy's parameters ask for.
type ModelSource interface {
	Model(ctx context.Context, w collect.Window) (*model.Cluster, error)
}

// ModelFunc adapts a function to ModelSource.
type ModelFunc func(ctx context.Context, w collect.Window) (*model.Cluster, error)

// Model calls f.
func (f ModelFunc) Model(ctx context.Context, w collect.Window) (*model.Cluster, error) {
	return f(ctx, w)
}

// SnapshotModels adapts a snapshot function (the simulator's Snapshot) to
// ModelSource; the window is ignored because the snapshot already carries
// its own aggregation.
func SnapshotModels(snapshot func() *model.Cluster) ModelSource {
	return ModelFunc(func(context.Context, collect.Window) (*model.Cluster, error) {
		c := snapshot()
		if c == nil {
			return nil, errors.New("no cluster model available")
		}
		return c, nil
	})
}

// BuilderModels adapts the model builder (inventory plus metrics read
// through the datasource) to ModelSource, building at now().
func BuilderModels(b *collect.Builder, now func() time.Time) ModelSource {
	if now == nil {
		now = time.Now
	}
	return ModelFunc(func(ctx context.Context, w collect.Window) (*model.Cluster, error) {
		return b.Build(ctx, now(), w)
	})
}

// Planner computes plans: *decision.Engine.
type Planner interface {
	Plan(ctx context.Context, req decision.Request) (*decision.Plan, error)
}

var _ Planner = (*decision.Engine)(nil)

// Launcher hands a PENDING plan to the applier, which moves it to ONGOING
// and executes it. Start must not block for the plan's execution.
type Launcher interface {
	Start(ctx context.Context, planUUID string) error
}
