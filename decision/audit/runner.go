package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/collect"
)

// Config configures the Runner. Zero values get the defaults noted.
type Config struct {
	// Hostname is recorded on the audits this engine runs (default: the
	// machine's hostname).
	Hostname string `yaml:"hostname"`
	// Workers bounds the audits run at once (default 2).
	Workers int `yaml:"workers"`
	// PollInterval is how often continuous audits are checked for a due
	// run, Watcher's continuous_audit_interval (default 10s).
	PollInterval time.Duration `yaml:"continuous_audit_interval"`
	// ExpiryCheckInterval is how often stale recommendations are expired,
	// Watcher's check_periodic_interval (default 30m).
	ExpiryCheckInterval time.Duration `yaml:"check_periodic_interval"`
	// ActionPlanExpiry is the age at which a RECOMMENDED plan becomes
	// SUPERSEDED (default 24h; negative disables expiry).
	ActionPlanExpiry time.Duration `yaml:"action_plan_expiry"`
	// PlanTimeLimit bounds one plan's search (default: the engine's).
	PlanTimeLimit time.Duration `yaml:"plan_time_limit"`
	// QueueSize bounds the triggers waiting for a worker (default 1024).
	QueueSize int `yaml:"-"`
	// Now replaces the clock, for tests.
	Now func() time.Time `yaml:"-"`
}

// WithDefaults returns c with zero values replaced by defaults, validated;
// errors name the field.
func (c Config) WithDefaults() (Config, error) {
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Hostname = h
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.ExpiryCheckInterval == 0 {
		c.ExpiryCheckInterval = 30 * time.Minute
	}
	if c.ActionPlanExpiry == 0 {
		c.ActionPlanExpiry = 24 * time.Hour
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.Workers < 0:
		return c, fmt.Errorf("workers: %d must be positive", c.Workers)
	case c.PollInterval < 0:
		return c, fmt.Errorf("continuous_audit_interval: %s must be positive", c.PollInterval)
	case c.ExpiryCheckInterval < 0:
		return c, fmt.Errorf("check_periodic_interval: %s must be positive", c.ExpiryCheckInterval)
	case c.PlanTimeLimit < 0:
		return c, fmt.Errorf("plan_time_limit: %s must be positive", c.PlanTimeLimit)
	case c.QueueSize < 0:
		return c, fmt.Errorf("queue size %d must be positive", c.QueueSize)
	}
	return c, nil
}

// Deps are what the Runner works with. Store, Planner and Models are
// required; without a Launcher, auto_trigger plans stay PENDING.
type Deps struct {
	Store      Store
	Planner    Planner
	Models     ModelSource
	Launcher   Launcher
	Registerer prometheus.Registerer
}

// Runner executes audits: ONESHOT at once, EVENT when triggered, CONTINUOUS
// on their schedule; it also expires stale recommendations.
type Runner struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger

	queue chan string
	sem   chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
	// queued counts triggers not yet taken from the queue.
	queued atomic.Int64

	runs     *prometheus.CounterVec
	duration prometheus.Histogram
}

// Outcomes of a run, the result label of ballast_audit_runs_total.
const (
	resultPlanned   = "planned"
	resultFailed    = "failed"
	resultCancelled = "cancelled"
	resultSkipped   = "skipped"
	// resultInterrupted: a shutdown stopped the run; the audit stays
	// ONGOING and runs again at the next start.
	resultInterrupted = "interrupted"
)

// New validates cfg and deps.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Runner, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("audit runner: %w", err)
	}
	if deps.Store == nil || deps.Planner == nil || deps.Models == nil {
		return nil, errors.New("audit runner: Store, Planner and Models are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{cfg: cfg, deps: deps, logger: logger.With("component", "decision/audit"),
		queue: make(chan string, cfg.QueueSize), sem: make(chan struct{}, cfg.Workers), running: map[string]bool{},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_audit_runs_total", Help: "Audit runs by audit type and result (planned, failed, cancelled, skipped, interrupted).",
		}, []string{"type", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ballast_audit_run_duration_seconds", Help: "Time from an audit run's start to its plan being stored.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}),
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{r.runs, r.duration} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("audit runner: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Hostname is the host recorded on audits and plans.
func (r *Runner) Hostname() string { return r.cfg.Hostname }

// ErrQueueFull is returned by Trigger when too many triggers wait.
var ErrQueueFull = errors.New("audit trigger queue is full")

// Trigger asks for an audit to run as soon as a worker is free (ONESHOT
// after creation, EVENT on a webhook). It does not block.
func (r *Runner) Trigger(auditUUID string) error {
	r.queued.Add(1)
	select {
	case r.queue <- auditUUID:
		return nil
	default:
		r.queued.Add(-1)
		return ErrQueueFull
	}
}

// TriggerEvent runs the EVENT audit ref (a UUID or a name), as Watcher's
// POST /v1/webhooks/{audit} does: only an EVENT audit, only while PENDING or
// SUCCEEDED. The errors are ErrNotFound, *TriggerError (wrong type or
// state) and ErrQueueFull.
func (r *Runner) TriggerEvent(ctx context.Context, ref string) error {
	a, err := r.deps.Store.GetAudit(ctx, ref)
	if err != nil {
		return err // the store's "Audit <ref> could not be found" is Watcher's text
	}
	if a.Type != Event {
		return &TriggerError{Msg: fmt.Sprintf("Audit type %s is disallowed.", a.Type)}
	}
	if !WebhookAllowed(a.State) {
		return &TriggerError{Msg: fmt.Sprintf("Audit state %s is disallowed.", a.State)}
	}
	return r.Trigger(a.UUID)
}

// TriggerError is an audit that cannot be triggered; Msg is Watcher's text.
type TriggerError struct{ Msg string }

func (e *TriggerError) Error() string { return e.Msg }

// Busy returns how many audits are queued or running.
func (r *Runner) Busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running) + int(r.queued.Load())
}

// Run schedules audits until ctx is done, then waits for running audits
// (whose context is cancelled) to stop. On start it resumes the work a
// previous process left: ONESHOT audits still PENDING, and ONESHOT or EVENT
// audits caught ONGOING.
func (r *Runner) Run(ctx context.Context) error {
	defer r.wg.Wait()
	r.recover(ctx)
	r.Poll(ctx)
	r.expire(ctx)
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	expiry := time.NewTicker(r.cfg.ExpiryCheckInterval)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-r.queue:
			r.dispatch(ctx, id, func(ctx context.Context) { _ = r.Execute(ctx, id) })
			r.queued.Add(-1)
		case <-poll.C:
			r.Poll(ctx)
		case <-expiry.C:
			r.expire(ctx)
		}
	}
}

func (r *Runner) recover(ctx context.Context) {
	for _, f := range []AuditFilter{
		{Types: []Type{Oneshot}, States: []string{StatePending, StateOngoing}},
		{Types: []Type{Event}, States: []string{StateOngoing}},
	} {
		audits, err := r.deps.Store.ListAudits(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Error("Cannot list audits to resume", "err", err)
			}
			return
		}
		for _, a := range audits {
			id := a.UUID
			r.dispatch(ctx, id, func(ctx context.Context) { _ = r.Execute(ctx, id) })
		}
	}
}

// dispatch runs fn on a worker unless the audit is already running.
func (r *Runner) dispatch(ctx context.Context, id string, fn func(context.Context)) {
	r.mu.Lock()
	if r.running[id] {
		r.mu.Unlock()
		return
	}
	r.running[id] = true
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, id)
			r.mu.Unlock()
		}()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		fn(ctx)
	}()
}

// Poll starts every continuous audit whose run is due, finishes those past
// their end_time and picks up ONESHOT audits whose trigger was lost.
func (r *Runner) Poll(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	pending, err := r.deps.Store.ListAudits(ctx, AuditFilter{Types: []Type{Oneshot}, States: []string{StatePending}})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("Cannot list pending audits", "err", err)
		}
		return
	}
	for _, a := range pending {
		id := a.UUID
		r.dispatch(ctx, id, func(ctx context.Context) { _ = r.Execute(ctx, id) })
	}
	audits, err := r.deps.Store.ListAudits(ctx, AuditFilter{Types: []Type{Continuous}, States: []string{StatePending, StateOngoing}})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("Cannot list continuous audits", "err", err)
		}
		return
	}
	now := r.cfg.Now().UTC()
	for _, a := range audits {
		if r.isRunning(a.UUID) {
			continue
		}
		sched, err := ParseInterval(a.Interval)
		if err != nil {
			r.transition(ctx, &a, StateFailed, err.Error())
			continue
		}
		if a.EndTime != nil && now.After(*a.EndTime) {
			// Watcher: past its end_time the audit is SUCCEEDED and never
			// runs again.
			r.transition(ctx, &a, StateSucceeded, "")
			continue
		}
		next := a.NextRunTime
		if next == nil {
			t := sched.First(now)
			if a.StartTime != nil && t.Before(*a.StartTime) {
				t = *a.StartTime
			}
			if err := r.deps.Store.SetNextRunTime(ctx, a.UUID, t); err != nil {
				r.logger.Error("Cannot schedule audit", "audit", a.UUID, "err", err)
				continue
			}
			next = &t
		}
		if now.Before(*next) || (a.StartTime != nil && now.Before(*a.StartTime)) {
			continue
		}
		id := a.UUID
		r.dispatch(ctx, id, func(ctx context.Context) { r.runContinuous(ctx, id, sched) })
	}
}

// runContinuous runs a due continuous audit and schedules its next run.
// The audit is read again first: the list Poll worked from may predate a
// run that finished meanwhile (the running set only excludes concurrent
// runs, not a stale list).
func (r *Runner) runContinuous(ctx context.Context, id string, sched Schedule) {
	a, err := r.deps.Store.GetAudit(ctx, id)
	if err != nil {
		return
	}
	now := r.cfg.Now()
	switch {
	case a.EndTime != nil && now.After(*a.EndTime):
		r.transition(ctx, a, StateSucceeded, "")
		return
	case a.StartTime != nil && now.Before(*a.StartTime), a.NextRunTime != nil && now.Before(*a.NextRunTime):
		return
	}
	if err := r.Execute(ctx, id); errors.Is(err, ErrInterrupted) {
		return // still due: the next start runs it
	}
	// The run is over (planned or failed): its schedule is recorded even if
	// a shutdown began meanwhile, or the next start would run it again.
	if err := r.deps.Store.SetNextRunTime(context.WithoutCancel(ctx), id, sched.Next(r.cfg.Now())); err != nil && !errors.Is(err, ErrNotFound) {
		r.logger.Error("Cannot schedule audit", "audit", id, "err", err)
	}
}

func (r *Runner) isRunning(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// transition moves an audit from its current state, logging failures other
// than a concurrent change.
func (r *Runner) transition(ctx context.Context, a *Audit, to, message string) {
	err := r.deps.Store.TransitionAudit(ctx, a.UUID, []string{a.State}, to, message, "")
	if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		r.logger.Error("Cannot change audit state", "audit", a.UUID, "to", to, "err", err)
	}
}

// Expire moves RECOMMENDED plans older than action_plan_expiry to
// SUPERSEDED and returns how many it moved.
func (r *Runner) Expire(ctx context.Context) (int, error) {
	if r.cfg.ActionPlanExpiry < 0 {
		return 0, nil
	}
	ids, err := r.deps.Store.ExpirePlans(ctx, r.cfg.Now().UTC().Add(-r.cfg.ActionPlanExpiry))
	return len(ids), err
}

func (r *Runner) expire(ctx context.Context) {
	n, err := r.Expire(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("Cannot expire action plans", "err", err)
		}
		return
	}
	if n > 0 {
		r.logger.Info("Expired action plans", "count", n, "older_than", r.cfg.ActionPlanExpiry)
	}
}

// startable reports whether a run may start from the audit's state: ONESHOT
// from PENDING, EVENT from PENDING or SUCCEEDED (every trigger runs it
// again), CONTINUOUS from PENDING or ONGOING; ONGOING also resumes a run a
// crash interrupted.
func startable(a *Audit) bool {
	switch a.State {
	case StatePending, StateOngoing:
		return true
	case StateSucceeded:
		return a.Type == Event
	}
	return false
}

// Execute runs one audit now: Watcher's pre_execute (refuse while another
// plan is ONGOING unless force; skip a cancelled audit; move to ONGOING),
// the strategy, the plan's storage (superseding the audit's older
// recommendations for continuous audits) and, with auto_trigger, the launch.
// ONESHOT and EVENT audits end SUCCEEDED, continuous ones stay ONGOING; any
// error makes the audit FAILED.
func (r *Runner) Execute(ctx context.Context, auditUUID string) error {
	start := time.Now()
	a, err := r.deps.Store.GetAudit(ctx, auditUUID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("audit %s: %w", auditUUID, err)
	}
	logger := r.logger.With("audit", a.UUID, "type", a.Type)
	if !startable(a) {
		logger.Debug("Audit skipped", "state", a.State)
		r.runs.WithLabelValues(string(a.Type), resultSkipped).Inc()
		return nil
	}
	if !a.Force {
		ongoing, err := r.deps.Store.OngoingPlan(ctx)
		if err != nil {
			return fmt.Errorf("audit %s: %w", a.UUID, err)
		}
		if ongoing != "" {
			msg := fmt.Sprintf("Action Plan %s is currently running.", ongoing)
			logger.Warn("Audit not run: an action plan is ongoing", "action_plan", ongoing)
			if a.Type == Oneshot {
				r.transition(ctx, a, StateCancelled, msg)
			}
			r.runs.WithLabelValues(string(a.Type), resultCancelled).Inc()
			return nil
		}
	}
	if err := r.deps.Store.TransitionAudit(ctx, a.UUID, []string{a.State}, StateOngoing, "", r.cfg.Hostname); err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			// Cancelled or deleted between the read and now (Watcher bug
			// 2134046: a cancelled audit must not run).
			r.runs.WithLabelValues(string(a.Type), resultSkipped).Inc()
			return nil
		}
		return fmt.Errorf("audit %s: %w", a.UUID, err)
	}
	plan, err := r.plan(ctx, a)
	if err != nil && ctx.Err() != nil {
		return r.interrupted(logger, a, err)
	}
	if err != nil {
		logger.Warn("Audit failed", "err", err)
		r.runs.WithLabelValues(string(a.Type), resultFailed).Inc()
		if terr := r.deps.Store.TransitionAudit(context.WithoutCancel(ctx), a.UUID, []string{StateOngoing}, StateFailed, err.Error(), ""); terr != nil &&
			!errors.Is(terr, ErrConflict) && !errors.Is(terr, ErrNotFound) {
			logger.Error("Cannot mark audit failed", "err", terr)
		}
		return err
	}
	req := SaveRequest{AuditUUID: a.UUID, Plan: plan, State: StateRecommended, Supersede: a.Type == Continuous,
		Hostname: r.cfg.Hostname}
	switch {
	case len(plan.Actions) == 0:
		req.State = StateSucceeded
	case a.AutoTrigger:
		req.State = StatePending
	}
	if a.Type != Continuous {
		req.AuditState = StateSucceeded
	}
	saved, err := r.deps.Store.SavePlan(ctx, req)
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			logger.Info("Audit cancelled while planning; plan discarded")
			r.runs.WithLabelValues(string(a.Type), resultCancelled).Inc()
			return nil
		}
		if ctx.Err() != nil {
			return r.interrupted(logger, a, err)
		}
		r.runs.WithLabelValues(string(a.Type), resultFailed).Inc()
		_ = r.deps.Store.TransitionAudit(context.WithoutCancel(ctx), a.UUID, []string{StateOngoing}, StateFailed, "storing the action plan: "+err.Error(), "")
		return fmt.Errorf("audit %s: save plan: %w", a.UUID, err)
	}
	r.runs.WithLabelValues(string(a.Type), resultPlanned).Inc()
	r.duration.Observe(time.Since(start).Seconds())
	logger.Info("Action plan recommended", "action_plan", saved.UUID, "state", saved.State,
		"actions", len(plan.Actions), "strategy", plan.Strategy, "seconds", time.Since(start).Seconds())
	if req.State == StatePending {
		r.Launch(ctx, saved.UUID)
	}
	return nil
}

// interrupted records a run that a shutdown stopped. The audit is left
// ONGOING: a shutdown is not a failure, and the next start runs ONESHOT and
// EVENT audits again (recover) while a CONTINUOUS one keeps its schedule.
// A plan whose storage was cut short was rolled back with its transaction.
func (r *Runner) interrupted(logger *slog.Logger, a *Audit, err error) error {
	logger.Info("Audit interrupted by shutdown; it runs again at the next start", "err", err)
	r.runs.WithLabelValues(string(a.Type), resultInterrupted).Inc()
	return fmt.Errorf("audit %s: %w: %w", a.UUID, ErrInterrupted, err)
}

// ErrInterrupted is returned by Execute when its context ended before the
// run finished; the audit is left to run again.
var ErrInterrupted = errors.New("interrupted by shutdown")

// plan reads the model over the strategy's metric window and computes the
// plan. The seed derives from the audit so that a run on an unchanged
// cluster recommends the same plan.
func (r *Runner) plan(ctx context.Context, a *Audit) (*decision.Plan, error) {
	scope, err := decision.ParseWatcherScope(a.Scope)
	if err != nil {
		return nil, err
	}
	period, granularity, aggregate := decision.MetricWindow(a.Parameters)
	c, err := r.deps.Models.Model(ctx, collect.Window{Period: period, Granularity: granularity, Aggregate: aggregate})
	if err != nil {
		return nil, fmt.Errorf("cluster model: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte(a.UUID))
	return r.deps.Planner.Plan(ctx, decision.Request{Goal: a.GoalName, Strategy: a.StrategyName, Params: a.Parameters,
		Model: c, TimeLimit: r.cfg.PlanTimeLimit, Seed: int64(h.Sum64() >> 1), Scope: scope})
}

// Launch hands a PENDING plan to the applier. A plan the applier refuses
// is FAILED with the reason in its status message (the caller's request
// does not fail: the plan's state tells the story); without a launcher the
// plan stays PENDING.
func (r *Runner) Launch(ctx context.Context, planUUID string) {
	logger := r.logger.With("action_plan", planUUID)
	if r.deps.Launcher == nil {
		logger.Warn("No applier configured: action plan stays PENDING")
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := r.deps.Launcher.Start(ctx, planUUID); err != nil {
		logger.Error("Applier refused the action plan", "err", err)
		if terr := r.deps.Store.TransitionPlan(ctx, planUUID, StatePending, StateFailed,
			"The applier could not start the plan: "+err.Error()); terr != nil && !errors.Is(terr, ErrConflict) {
			logger.Error("Cannot mark action plan failed", "err", terr)
		}
	}
}
