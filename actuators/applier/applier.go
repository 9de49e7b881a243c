// Package applier executes action plans: it runs a plan's actions in the
// order of its DAG (an action starts once all its parents are SUCCEEDED or
// SKIPPED), within the plan's per-host and global concurrency limits and
// with no barriers beyond those, recording every state transition in a
// StateStore before and after it acts.
//
// Watcher's semantics (docs/actuators.md has the full table):
//   - PENDING → ONGOING is recorded before Execute; SUCCEEDED or FAILED
//     after. A precondition that no longer holds makes the action SKIPPED
//     ("Action was skipped automatically: …"); its children still run
//     (Watcher's ALWAYS rule). Children of a FAILED action never run.
//   - Cancel stops launching actions, lets running ones finish (or aborts
//     them when asked), turns PENDING actions CANCELLED and ends the plan
//     CANCELLED. A plan with a FAILED action ends FAILED; one with a SKIPPED
//     action carries "One or more actions were skipped.".
//   - Crash safety: an action found ONGOING when a plan is resumed was
//     interrupted mid-flight. It is never executed again: its actuator's
//     Reconciler observes the infrastructure and the action is recorded
//     SUCCEEDED (it took effect) or FAILED (it did not).
//   - A shutdown is not a cancel: an action it aborts whose Reconciler
//     then sees no effect returns to PENDING and runs when the plan is
//     resumed, so a restart does not fail a plan.
//
// The applier decides nothing and talks to no infrastructure itself: the
// actuators (actuators.Registry) do, and the Watcher API owns the plans and
// stores their states.
package applier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/planner"
)

// Plan is an action plan as the applier runs it: the stored plan with its
// actions' current states.
type Plan struct {
	ID string `json:"uuid"`
	// State is the plan's stored state: PENDING for a plan to start, ONGOING
	// or CANCELLING for one a previous process was running.
	State string `json:"state"`
	// Limits are the planner's concurrency limits; zero fields get the
	// applier's defaults.
	Limits  planner.Limits `json:"concurrency"`
	Actions []Action       `json:"actions"`
}

// Action is one action of a plan with its stored state ("" means PENDING).
type Action struct {
	action.Action
	State string `json:"state"`
}

// PlanLoader returns, after a restart, the plans the applier must resume:
// those in state PENDING (started but not yet picked up), ONGOING or
// CANCELLING, with every action and its state. The Watcher API's persistence
// implements it.
type PlanLoader interface {
	UnfinishedPlans(ctx context.Context) ([]Plan, error)
}

// Config tunes the applier. Zero values get the defaults noted.
type Config struct {
	// AbortOnCancel makes Cancel abort running actions (a live migration is
	// aborted and rolled back by libvirt) unless the caller says otherwise;
	// by default running actions finish, as Watcher does.
	AbortOnCancel bool `yaml:"abort_on_cancel"`
	// ContinueOnFailure keeps launching actions that do not depend on a
	// FAILED one; by default the first failure stops launching, as
	// Watcher's taskflow engine does. Children of a FAILED action never run.
	ContinueOnFailure bool `yaml:"continue_on_failure"`
	// PerHost and Global are the limits for plans that carry none
	// (defaults 2 and 16, the planner's).
	PerHost int `yaml:"per_host"`
	Global  int `yaml:"global"`
	// ReconcileTimeout bounds how long an interrupted action's actuator is
	// asked, with retries, whether it took effect (default 2m); after it the
	// action is FAILED, never run again.
	ReconcileTimeout time.Duration `yaml:"reconcile_timeout"`
	// StoreTimeout bounds the retries of one state transition (default 1m).
	// When it passes, the plan stops where it is and is resumed by the next
	// start.
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// ShutdownTimeout is how long Stop waits for running actions before
	// aborting them (default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Validate applies the defaults and checks the values, naming the field.
func (c *Config) Validate() error {
	def := func(v *int, d int, name string) error {
		if *v < 0 {
			return fmt.Errorf("applier.%s: %d must not be negative", name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	defDur := func(v *time.Duration, d time.Duration, name string) error {
		if *v < 0 {
			return fmt.Errorf("applier.%s: %s must not be negative", name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	return errors.Join(
		def(&c.PerHost, 2, "per_host"),
		def(&c.Global, 16, "global"),
		defDur(&c.ReconcileTimeout, 2*time.Minute, "reconcile_timeout"),
		defDur(&c.StoreTimeout, time.Minute, "store_timeout"),
		defDur(&c.ShutdownTimeout, 30*time.Second, "shutdown_timeout"),
	)
}

// Deps are what the applier acts through.
type Deps struct {
	// Store records every state transition (required).
	Store actuators.StateStore
	// Actuators perform the actions (required).
	Actuators actuators.Registry
	// Loader finds the plans to resume at Run (optional: without it Run
	// resumes nothing).
	Loader PlanLoader
	// Registerer receives the applier's metrics (optional).
	Registerer prometheus.Registerer
	// Progress, when set, is told each running action's progress in [0,1].
	Progress func(planID, actionID string, fraction float64)
}

// Errors Start, Cancel and Resume return.
var (
	ErrAlreadyRunning = errors.New("action plan is already being applied")
	ErrNotRunning     = errors.New("action plan is not being applied")
	ErrStopped        = errors.New("applier is stopping")
)

// Applier runs action plans.
type Applier struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	metrics *metrics

	// base is the lifetime of running actions; Stop cancels it after
	// ShutdownTimeout, aborting what still runs.
	base  context.Context
	abort context.CancelFunc

	mu       sync.Mutex
	runs     map[string]*Execution
	stopping bool
	wg       sync.WaitGroup
}

// New checks cfg and deps and registers the metrics.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Applier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("applier: a state store is required")
	}
	if len(deps.Actuators) == 0 {
		return nil, errors.New("applier: no actuators are registered")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	base, abort := context.WithCancel(context.Background())
	return &Applier{cfg: cfg, deps: deps, logger: logger.With("component", "actuators/applier"), metrics: m,
		base: base, abort: abort, runs: map[string]*Execution{}}, nil
}

// Result is how an execution ended.
type Result struct {
	// State is the plan's final state (SUCCEEDED, FAILED or CANCELLED), or
	// "" when the execution was interrupted (the applier stopped, or the
	// store failed) and the plan is left for the next start to resume.
	State   string
	Message string
	// Actions counts the actions by final state.
	Actions map[string]int
	Err     error
}

// Execution is one plan being applied.
type Execution struct {
	PlanID string

	done   chan struct{}
	result Result

	mu       sync.Mutex
	cancel   bool
	shutdown bool
	wake     chan struct{}
	// abortActions cancels the context of the plan's running actions.
	abortActions context.CancelFunc
}

// Done is closed when the execution ends.
func (e *Execution) Done() <-chan struct{} { return e.done }

// Result is the outcome; valid once Done is closed.
func (e *Execution) Result() Result { return e.result }

// Wait blocks until the execution ends or ctx is done.
func (e *Execution) Wait(ctx context.Context) (Result, error) {
	select {
	case <-e.done:
		return e.result, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (e *Execution) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Execution) flags() (cancel, shutdown bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cancel, e.shutdown
}

// Start validates p and applies it in the background. A PENDING plan is
// moved to ONGOING before Start returns (so the caller sees a conflict at
// once); an ONGOING or CANCELLING plan is resumed: its ONGOING actions are
// reconciled, never executed again. ctx bounds only the start itself.
func (a *Applier) Start(ctx context.Context, p Plan) (*Execution, error) {
	r, err := a.prepare(p)
	if err != nil {
		return nil, err
	}
	ex := &Execution{PlanID: p.ID, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	a.mu.Lock()
	switch {
	case a.stopping:
		a.mu.Unlock()
		return nil, fmt.Errorf("start plan %s: %w", p.ID, ErrStopped)
	case a.runs[p.ID] != nil:
		a.mu.Unlock()
		return nil, fmt.Errorf("start plan %s: %w", p.ID, ErrAlreadyRunning)
	}
	a.runs[p.ID] = ex
	a.wg.Add(1)
	a.mu.Unlock()
	release := func() {
		a.mu.Lock()
		delete(a.runs, p.ID)
		a.mu.Unlock()
		a.wg.Done()
	}

	switch p.State {
	case "", actuators.StatePending:
		if err := a.transitionPlan(ctx, p.ID, actuators.StatePending, actuators.StateOngoing, ""); err != nil {
			release()
			return nil, fmt.Errorf("start plan %s: %w", p.ID, err)
		}
		r.planState = actuators.StateOngoing
	case actuators.StateOngoing:
		r.planState = p.State
	case actuators.StateCancelling:
		r.planState = p.State
		ex.cancel = true
	}
	var actx context.Context
	actx, ex.abortActions = context.WithCancel(a.base)
	r.ex, r.actx = ex, actx
	r.logger = a.logger.With("plan", p.ID)
	a.metrics.running.Inc()
	go func() {
		ex.result = r.run()
		ex.abortActions()
		a.metrics.plans.WithLabelValues(resultLabel(ex.result.State)).Inc()
		a.metrics.running.Dec()
		a.mu.Lock()
		delete(a.runs, p.ID)
		a.mu.Unlock()
		close(ex.done)
		a.wg.Done()
	}()
	return ex, nil
}

// Cancel cancels a plan being applied: the plan is recorded CANCELLING (the
// API may have done so already), no further action starts, PENDING actions
// become CANCELLED and, once the running ones end, the plan CANCELLED.
// abort (or Config.AbortOnCancel) aborts the running actions instead of
// letting them finish. It returns ErrNotRunning for a plan this applier is
// not running: a PENDING plan is cancelled by the API alone.
func (a *Applier) Cancel(ctx context.Context, planID string, abort bool) error {
	a.mu.Lock()
	ex := a.runs[planID]
	a.mu.Unlock()
	if ex == nil {
		return fmt.Errorf("cancel plan %s: %w", planID, ErrNotRunning)
	}
	err := a.transitionPlan(ctx, planID, actuators.StateOngoing, actuators.StateCancelling, "")
	if err != nil && !errors.Is(err, actuators.ErrStateConflict) {
		return fmt.Errorf("cancel plan %s: %w", planID, err)
	}
	ex.mu.Lock()
	ex.cancel = true
	ex.mu.Unlock()
	if abort || a.cfg.AbortOnCancel {
		ex.abortActions()
	}
	ex.signal()
	a.logger.Info("Cancelling action plan", "plan", planID, "abort_running", abort || a.cfg.AbortOnCancel)
	return nil
}

// Resume starts every plan the loader reports unfinished. A plan that cannot
// be started (say, an action type is no longer configured) is recorded
// FAILED with the reason.
func (a *Applier) Resume(ctx context.Context) ([]*Execution, error) {
	if a.deps.Loader == nil {
		return nil, nil
	}
	plans, err := a.deps.Loader.UnfinishedPlans(ctx)
	if err != nil {
		return nil, fmt.Errorf("load unfinished plans: %w", err)
	}
	var out []*Execution
	var errs []error
	for _, p := range plans {
		ex, err := a.Start(ctx, p)
		switch {
		case err == nil:
			a.logger.Info("Resuming action plan", "plan", p.ID, "state", p.State)
			out = append(out, ex)
		case errors.Is(err, ErrAlreadyRunning):
		case errors.Is(err, ErrStopped), errors.Is(err, actuators.ErrStateConflict):
			errs = append(errs, err)
		default:
			a.logger.Error("Cannot resume action plan", "plan", p.ID, "err", err)
			from := p.State
			if from == "" {
				from = actuators.StatePending
			}
			if terr := a.transitionPlan(ctx, p.ID, from, actuators.StateFailed, err.Error()); terr != nil {
				errs = append(errs, fmt.Errorf("resume plan %s: %w (and recording FAILED: %w)", p.ID, err, terr))
			}
		}
	}
	return out, errors.Join(errs...)
}

// Run resumes the unfinished plans, then applies plans as they are started
// until ctx is done, and stops.
func (a *Applier) Run(ctx context.Context) error {
	if _, err := a.Resume(ctx); err != nil && ctx.Err() == nil { // a shutdown during start is no error
		a.logger.Error("Resuming action plans", "err", err)
	}
	<-ctx.Done()
	a.Stop()
	return nil
}

// Stop stops launching actions in every plan, waits up to ShutdownTimeout
// for the running ones, aborts what still runs, and returns once every
// execution has ended. Interrupted plans stay ONGOING in the store for the
// next start to resume.
func (a *Applier) Stop() {
	a.mu.Lock()
	a.stopping = true
	for _, ex := range a.runs {
		ex.mu.Lock()
		ex.shutdown = true
		ex.mu.Unlock()
		ex.signal()
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(a.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.logger.Warn("Aborting running actions at shutdown", "waited", a.cfg.ShutdownTimeout)
		a.abort()
		<-done
	}
	a.abort()
}

// Running lists the IDs of the plans being applied.
func (a *Applier) Running() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.runs))
	for id := range a.runs {
		out = append(out, id)
	}
	return out
}

// storeBackoff retries state writes until StoreTimeout.
var storeBackoff = actuators.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Attempts: -1}

// record runs a state transition, retrying store failures (a conflict is an
// answer, not a failure) for up to StoreTimeout. It does not use the
// actions' context: an aborted action's outcome must still be recorded.
func (a *Applier) record(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.StoreTimeout)
	defer cancel()
	return actuators.Retry(ctx, storeBackoff, func(ctx context.Context) error {
		err := f(ctx)
		if err == nil || errors.Is(err, actuators.ErrStateConflict) {
			return err
		}
		return actuators.Retryable(err, 0)
	})
}

func (a *Applier) transitionAction(ctx context.Context, id, from, to, msg string) error {
	return a.record(ctx, func(ctx context.Context) error {
		return a.deps.Store.TransitionAction(ctx, id, from, to, msg)
	})
}

func (a *Applier) transitionPlan(ctx context.Context, id, from, to, msg string) error {
	return a.record(ctx, func(ctx context.Context) error {
		return a.deps.Store.TransitionPlan(ctx, id, from, to, msg)
	})
}
