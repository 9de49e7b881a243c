// Package audit owns Watcher's audits: what an audit, an action plan and an
// action are as records, the state machines that govern them (Watcher's,
// exactly), the schedule of continuous audits (seconds or 5-field cron), and
// the Runner that executes audits: it reads the cluster model, asks the
// decision engine for a plan, saves it with its actions and efficacy,
// supersedes older recommendations, expires stale ones and, for auto_trigger
// audits, hands the plan to the applier.
//
// The package defines the small interfaces it consumes (Store, ModelSource,
// Planner, Launcher); persistence lives in web/store and execution in
// actuators. It never executes an action and never speaks HTTP.
package audit

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/goal"
)

// Type is an audit type.
type Type string

// Audit types.
const (
	Oneshot    Type = "ONESHOT"
	Continuous Type = "CONTINUOUS"
	Event      Type = "EVENT"
)

// Types lists the audit types, in Watcher's order.
var Types = []Type{Oneshot, Continuous, Event}

// Audit, action plan and action states (Watcher's names; the action and plan
// states are the same strings the applier uses in actuators).
const (
	StatePending     = "PENDING"
	StateOngoing     = "ONGOING"
	StateSucceeded   = "SUCCEEDED"
	StateFailed      = "FAILED"
	StateCancelled   = "CANCELLED"
	StateSuspended   = "SUSPENDED"
	StateDeleted     = "DELETED"
	StateRecommended = "RECOMMENDED"
	StateSuperseded  = "SUPERSEDED"
	StateCancelling  = "CANCELLING"
	StateSkipped     = "SKIPPED"
)

// Audit is an audit record.
type Audit struct {
	ID   int64
	UUID string
	Name string
	Type Type
	// State is one of AuditStates.
	State string
	// GoalUUID and GoalName name the goal; StrategyUUID and StrategyName
	// are empty when the engine picks the goal's default strategy.
	GoalUUID, GoalName         string
	StrategyUUID, StrategyName string
	// Parameters are the strategy parameters, defaults filled in.
	Parameters map[string]any
	// Interval is seconds or a cron expression (CONTINUOUS only).
	Interval string
	// Scope is Watcher's audit scope JSON (a list).
	Scope       json.RawMessage
	AutoTrigger bool
	Force       bool
	// NextRunTime, StartTime and EndTime are UTC.
	NextRunTime, StartTime, EndTime *time.Time
	// Hostname is the engine host that ran the audit last.
	Hostname      string
	StatusMessage string
	CreatedAt     time.Time
	UpdatedAt     *time.Time
	DeletedAt     *time.Time
}

// ActionPlan is an action plan record.
type ActionPlan struct {
	ID                         int64
	UUID                       string
	AuditUUID                  string
	StrategyUUID, StrategyName string
	State                      string
	EfficacyIndicators         []goal.Indicator
	GlobalEfficacy             []goal.Indicator
	Hostname                   string
	StatusMessage              string
	// Extra holds Ballast's additions (concurrency limits, estimated
	// duration, depth, notes) as the plan's JSON.
	Extra     json.RawMessage
	CreatedAt time.Time
	UpdatedAt *time.Time
	DeletedAt *time.Time
}

// Action is an action record.
type Action struct {
	ID              int64
	UUID            string
	ActionPlanUUID  string
	Type            action.Type
	InputParameters map[string]any
	State           string
	// Parents are the UUIDs of the actions that must finish first.
	Parents []string
	// Description is this action's own summary ("live-migrate vm1 from a
	// to b"); the API shows the type's description, as Watcher does.
	Description   string
	StatusMessage string
	CreatedAt     time.Time
	UpdatedAt     *time.Time
	DeletedAt     *time.Time
}

// AuditStates lists the audit states.
var AuditStates = []string{StatePending, StateOngoing, StateSucceeded, StateFailed, StateCancelled, StateSuspended, StateDeleted}

// PlanStates lists the action plan states.
var PlanStates = []string{StateRecommended, StatePending, StateOngoing, StateSucceeded, StateFailed, StateDeleted,
	StateCancelled, StateSuperseded, StateCancelling}

// ActionStates lists the action states.
var ActionStates = []string{StatePending, StateOngoing, StateSucceeded, StateFailed, StateDeleted, StateCancelled,
	StateCancelling, StateSkipped}

// auditTransitions is Watcher's AuditStateTransitionManager table: the
// transitions a user may ask for (PATCH /state and DELETE).
var auditTransitions = map[string][]string{
	StatePending:   {StateOngoing, StateCancelled},
	StateOngoing:   {StateFailed, StateSucceeded, StateCancelled, StateSuspended},
	StateFailed:    {StateDeleted},
	StateSucceeded: {StateDeleted},
	StateCancelled: {StateDeleted},
	StateSuspended: {StateOngoing, StateDeleted},
}

// AuditTransitionAllowed reports whether Watcher lets a user move an audit
// from one state to another.
func AuditTransitionAllowed(from, to string) bool {
	return slices.Contains(auditTransitions[from], to)
}

// AuditInactive reports whether an audit in this state is never run again
// (Watcher's INACTIVE_STATES).
func AuditInactive(state string) bool {
	switch state {
	case StateCancelled, StateDeleted, StateFailed, StateSuspended:
		return true
	}
	return false
}

// planPatchTransitions are the plan transitions PATCH /state allows.
var planPatchTransitions = [][2]string{
	{StateRecommended, StatePending},
	{StateRecommended, StateCancelled},
	{StateOngoing, StateCancelling},
	{StatePending, StateCancelled},
}

// PlanPatchAllowed reports whether PATCH may move a plan from one state to
// another. RECOMMENDED→PENDING launches the plan.
func PlanPatchAllowed(from, to string) bool {
	return slices.Contains(planPatchTransitions, [2]string{from, to})
}

// PlanDeletable reports whether a plan in this state may be deleted.
func PlanDeletable(state string) bool {
	switch state {
	case StateSucceeded, StateRecommended, StateFailed, StateSuperseded, StateCancelled:
		return true
	}
	return false
}

// ActionSkipAllowed reports whether a user may skip an action: only PENDING
// → SKIPPED, and only while its plan is RECOMMENDED or PENDING.
func ActionSkipAllowed(actionState, planState string) (stateOK, planOK bool) {
	return actionState == StatePending, planState == StateRecommended || planState == StatePending
}

// WebhookAllowed reports whether an EVENT audit in this state can be
// triggered.
func WebhookAllowed(state string) bool {
	return state == StatePending || state == StateSucceeded
}
