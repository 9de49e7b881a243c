package applier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Messages recorded with states, Watcher's where Watcher has one.
const (
	msgSkipped       = "One or more actions were skipped."
	msgFailed        = "One or more actions failed."
	msgAutoSkip      = "Action was skipped automatically: "
	msgCancelled     = "Action plan was cancelled."
	msgParentFailed  = "Not run: a parent action failed."
	msgNotLaunched   = "Not run: the action plan stopped at a failure."
	msgReconciledOK  = "The applier restarted while the action ran; it had taken effect."
	msgReconciledNot = "The applier restarted while the action ran; it had not taken effect and is not run again."
	msgCancelledActs = "One or more actions were cancelled."
	msgRequeued      = "Aborted by the applier's shutdown before it took effect; it runs again when the plan resumes."
	msgShutdownOK    = "The applier's shutdown aborted the action after it had taken effect."
)

// shutdownReconcileTimeout bounds how long an action aborted at shutdown is
// asked whether it took effect; undecided, it stays ONGOING for the next
// start to reconcile.
const shutdownReconcileTimeout = 10 * time.Second

// runner applies one plan. Its fields are owned by the run goroutine; the
// action goroutines only send outcomes.
type runner struct {
	a         *Applier
	ex        *Execution
	logger    *slog.Logger
	planID    string
	planState string
	limits    struct{ perHost, global int }

	acts     []action.Action
	state    []string
	children [][]int
	// waiting counts each action's parents not yet SUCCEEDED or SKIPPED.
	waiting []int
	// hosts are the hosts a migration occupies (per-host limit); other
	// actions occupy none, as in the planner's schedule.
	hosts [][]string
	// actx is the running actions' context: aborted by Cancel(abort) or
	// at shutdown.
	actx context.Context
}

// outcome is an action's end, sent to the run goroutine.
type outcome struct {
	i     int
	state string
	// unrecorded: the state could not be stored; the plan stops and the
	// next start reconciles.
	unrecorded bool
}

// prepare checks a plan's shape: IDs, parents, no cycle, known states and
// action types with an actuator.
func (a *Applier) prepare(p Plan) (*runner, error) {
	if p.ID == "" {
		return nil, errors.New("action plan has no uuid")
	}
	switch p.State {
	case "", actuators.StatePending, actuators.StateOngoing, actuators.StateCancelling:
	default:
		return nil, fmt.Errorf("action plan %s is %s: only PENDING, ONGOING and CANCELLING plans can be applied", p.ID, p.State)
	}
	n := len(p.Actions)
	r := &runner{a: a, planID: p.ID, acts: make([]action.Action, n), state: make([]string, n),
		children: make([][]int, n), waiting: make([]int, n), hosts: make([][]string, n)}
	r.limits.perHost, r.limits.global = cmp.Or(p.Limits.PerHost, a.cfg.PerHost), cmp.Or(p.Limits.Global, a.cfg.Global)
	if r.limits.perHost < 0 || r.limits.global < 0 {
		return nil, fmt.Errorf("action plan %s: concurrency limits %+v must not be negative", p.ID, p.Limits)
	}
	idx := make(map[string]int, n)
	for i, pa := range p.Actions {
		if pa.ID == "" {
			return nil, fmt.Errorf("action plan %s: action %d has no uuid", p.ID, i)
		}
		if _, dup := idx[pa.ID]; dup {
			return nil, fmt.Errorf("action plan %s: action uuid %s appears twice", p.ID, pa.ID)
		}
		idx[pa.ID] = i
		st := cmp.Or(pa.State, actuators.StatePending)
		switch st {
		case actuators.StatePending, actuators.StateOngoing, actuators.StateSucceeded, actuators.StateFailed,
			actuators.StateSkipped, actuators.StateCancelled:
		default:
			return nil, fmt.Errorf("action plan %s: action %s has state %q", p.ID, pa.ID, pa.State)
		}
		if _, err := a.deps.Actuators.Lookup(pa.Type); err != nil && (st == actuators.StatePending || st == actuators.StateOngoing) {
			return nil, fmt.Errorf("action plan %s: action %s: %w", p.ID, pa.ID, err)
		}
		r.acts[i], r.state[i] = pa.Action, st
		if pa.Type == action.Migrate || pa.Type == action.SimMigrate {
			r.hosts[i] = pa.Hosts()
		}
	}
	for i, pa := range p.Actions {
		for _, pid := range pa.Parents {
			j, ok := idx[pid]
			if !ok {
				return nil, fmt.Errorf("action plan %s: action %s has unknown parent %s", p.ID, pa.ID, pid)
			}
			if !slices.Contains(r.children[j], i) {
				r.children[j] = append(r.children[j], i)
				r.waiting[i]++
			}
		}
	}
	if err := r.acyclic(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *runner) acyclic() error {
	indeg := slices.Clone(r.waiting)
	var queue []int
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	seen := 0
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		seen++
		for _, c := range r.children[i] {
			if indeg[c]--; indeg[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	if seen != len(r.acts) {
		return fmt.Errorf("action plan %s: the actions' parents form a cycle", r.planID)
	}
	return nil
}

func releases(state string) bool {
	return state == actuators.StateSucceeded || state == actuators.StateSkipped
}

// run applies the plan and returns how it ended.
func (r *runner) run() Result {
	r.logger.Info("Applying action plan", "actions", len(r.acts), "per_host", r.limits.perHost, "global", r.limits.global)
	if !r.reconcileAll() {
		return r.interrupted("interrupted actions could not be reconciled and recorded")
	}
	for i, st := range r.state {
		if releases(st) {
			for _, c := range r.children[i] {
				r.waiting[c]--
			}
		}
	}
	// ready holds the launchable actions by the planner's estimated start,
	// then plan order: the applier follows the planner's schedule.
	var ready []int
	byStart := func(x, y int) int {
		return cmp.Or(cmp.Compare(r.acts[x].EstimatedStartSeconds, r.acts[y].EstimatedStartSeconds), cmp.Compare(x, y))
	}
	push := func(i int) {
		k, _ := slices.BinarySearchFunc(ready, i, byStart)
		ready = slices.Insert(ready, k, i)
	}
	for i, st := range r.state {
		if st == actuators.StatePending && r.waiting[i] == 0 {
			push(i)
		}
	}
	results := make(chan outcome)
	busy := map[string]int{}
	running := 0
	var failedStop, storeBroken bool
	// A plan that had stopped launching at a failure before a restart does
	// not start launching again when it is resumed.
	failedStop = !r.a.cfg.ContinueOnFailure && slices.Contains(r.state, actuators.StateFailed)
	fits := func(i int) bool {
		for _, h := range r.hosts[i] {
			if busy[h] >= r.limits.perHost {
				return false
			}
		}
		return true
	}
	for {
		cancel, shutdown := r.ex.flags()
		if !cancel && !shutdown && !failedStop && !storeBroken {
			kept := ready[:0]
			for k, i := range ready {
				if running >= r.limits.global {
					kept = append(kept, ready[k:]...)
					break
				}
				if !fits(i) {
					kept = append(kept, i)
					continue
				}
				for _, h := range r.hosts[i] {
					busy[h]++
				}
				running++
				r.a.metrics.inFlight.WithLabelValues(string(r.acts[i].Type)).Inc()
				go func(i int) { results <- r.perform(i) }(i)
			}
			ready = kept
		}
		if running == 0 {
			break
		}
		select {
		case o := <-results:
			running--
			for _, h := range r.hosts[o.i] {
				busy[h]--
			}
			r.a.metrics.inFlight.WithLabelValues(string(r.acts[o.i].Type)).Dec()
			r.state[o.i] = o.state
			switch {
			case o.unrecorded:
				storeBroken = true
			case o.state == actuators.StateFailed && !r.a.cfg.ContinueOnFailure:
				failedStop = true
			case releases(o.state):
				for _, c := range r.children[o.i] {
					if r.waiting[c]--; r.waiting[c] == 0 && r.state[c] == actuators.StatePending {
						push(c)
					}
				}
			}
		case <-r.ex.wake:
		}
	}
	cancel, shutdown := r.ex.flags()
	switch {
	case storeBroken:
		return r.interrupted("the store failed to record a state")
	case cancel:
		return r.finish(actuators.StateCancelled, msgCancelled)
	case shutdown && (slices.Contains(r.state, actuators.StateOngoing) ||
		(!failedStop && slices.Contains(r.state, actuators.StatePending))):
		// Actions that have not run, or that the shutdown aborted before
		// they took effect, run when the plan is resumed.
		return r.interrupted("the applier stopped")
	}
	return r.finish("", "")
}

// finish records the remaining PENDING actions CANCELLED and the plan's
// final state: to when given, else FAILED or SUCCEEDED from the actions.
func (r *runner) finish(to, msg string) Result {
	var wg sync.WaitGroup
	unrecorded := false
	var mu sync.Mutex
	for i, st := range r.state {
		if st != actuators.StatePending {
			continue
		}
		why := msgCancelled
		if to == "" {
			why = msgNotLaunched
			if r.waiting[i] > 0 && r.parentFailed(i) {
				why = msgParentFailed
			}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := r.a.transitionAction(r.a.base, r.acts[i].ID, actuators.StatePending, actuators.StateCancelled, why)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				r.state[i] = actuators.StateCancelled
				r.a.metrics.actions.WithLabelValues(string(r.acts[i].Type), resultLabel(actuators.StateCancelled)).Inc()
			case errors.Is(err, actuators.ErrStateConflict):
				// Skipped by a user meanwhile: the only change the API makes.
				r.state[i] = actuators.StateSkipped
			default:
				r.logger.Error("Recording action CANCELLED", "action", r.acts[i].ID, "err", err)
				unrecorded = true
			}
		}(i)
	}
	wg.Wait()
	if unrecorded {
		return r.interrupted("the store failed to record a state")
	}
	counts := r.counts()
	if to == "" {
		to = actuators.StateSucceeded
		switch {
		case counts[actuators.StateFailed] > 0:
			to, msg = actuators.StateFailed, msgFailed
		case counts[actuators.StateCancelled] > 0:
			to, msg = actuators.StateFailed, msgCancelledActs
		}
	}
	if counts[actuators.StateSkipped] > 0 {
		msg = joinMsg(msg, msgSkipped)
	}
	from := r.planState
	if to == actuators.StateCancelled {
		from = actuators.StateCancelling
	}
	err := r.a.transitionPlan(r.a.base, r.planID, from, to, msg)
	if errors.Is(err, actuators.ErrStateConflict) && from == actuators.StateOngoing {
		// The API recorded CANCELLING without calling Cancel: the plan ends
		// CANCELLED whatever its actions did.
		to = actuators.StateCancelled
		err = r.a.transitionPlan(r.a.base, r.planID, actuators.StateCancelling, to, joinMsg(msgCancelled, msg))
	}
	if err != nil {
		r.logger.Error("Recording the action plan's final state", "state", to, "err", err)
		return Result{Message: msg, Actions: counts, Err: fmt.Errorf("record plan %s %s: %w", r.planID, to, err)}
	}
	r.logger.Info("Action plan applied", "state", to, "succeeded", counts[actuators.StateSucceeded],
		"failed", counts[actuators.StateFailed], "skipped", counts[actuators.StateSkipped], "cancelled", counts[actuators.StateCancelled])
	return Result{State: to, Message: msg, Actions: counts}
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

func (r *runner) parentFailed(i int) bool {
	for p, cs := range r.children {
		if slices.Contains(cs, i) && (r.state[p] == actuators.StateFailed || r.state[p] == actuators.StateCancelled) {
			return true
		}
	}
	return false
}

func (r *runner) counts() map[string]int {
	out := map[string]int{}
	for _, st := range r.state {
		out[st]++
	}
	return out
}

func (r *runner) interrupted(why string) Result {
	r.logger.Warn("Action plan interrupted; it will be resumed at the next start", "reason", why)
	return Result{Message: "interrupted: " + why, Actions: r.counts(), Err: fmt.Errorf("plan %s interrupted: %s", r.planID, why)}
}

// perform runs action i: validation and precondition while PENDING, then
// ONGOING recorded, Execute, and the outcome recorded.
func (r *runner) perform(i int) outcome {
	a := r.acts[i]
	act, _ := r.a.deps.Actuators.Lookup(a.Type) // checked by prepare
	logger := r.logger.With("action", a.ID, "action_type", a.Type)
	start := time.Now()
	end := func(from, to, msg string) outcome {
		r.a.metrics.observe(a.Type, to, time.Since(start))
		if err := r.a.transitionAction(r.a.base, a.ID, from, to, msg); err != nil {
			logger.Error("Recording action state", "from", from, "to", to, "err", err)
			if errors.Is(err, actuators.ErrStateConflict) && from == actuators.StatePending {
				return outcome{i: i, state: actuators.StateSkipped}
			}
			return outcome{i: i, state: from, unrecorded: true}
		}
		logger.Info("Action "+to, "message", msg, "took", time.Since(start))
		return outcome{i: i, state: to}
	}
	if err := action.Validate(&a); err != nil {
		return end(actuators.StatePending, actuators.StateFailed, err.Error())
	}
	if err := act.Precondition(r.actx, a); err != nil {
		switch {
		case errors.Is(err, actuators.ErrSkip):
			return end(actuators.StatePending, actuators.StateSkipped, msgAutoSkip+actuators.SkipReason(err))
		case r.actx.Err() != nil:
			if r.shutdownOnly() {
				return outcome{i: i, state: actuators.StatePending} // runs when the plan resumes
			}
			return end(actuators.StatePending, actuators.StateCancelled, "Aborted before it started.")
		}
		return end(actuators.StatePending, actuators.StateFailed, "Precondition: "+err.Error())
	}
	if cancel, _ := r.ex.flags(); cancel {
		return end(actuators.StatePending, actuators.StateCancelled, msgCancelled)
	}
	// Recorded before executing: a restarted applier that finds the action
	// ONGOING reconciles it instead of running it again.
	if err := r.a.transitionAction(r.a.base, a.ID, actuators.StatePending, actuators.StateOngoing, ""); err != nil {
		if errors.Is(err, actuators.ErrStateConflict) {
			// A user skipped it after it was launched (PENDING → SKIPPED is
			// the only change the API makes to a running plan's actions).
			logger.Info("Action changed by someone else before it started; not run", "err", err)
			return outcome{i: i, state: actuators.StateSkipped}
		}
		logger.Error("Recording action ONGOING", "err", err)
		return outcome{i: i, state: actuators.StatePending, unrecorded: true}
	}
	progress := func(f float64) {
		if r.a.deps.Progress != nil {
			r.a.deps.Progress(r.planID, a.ID, min(max(f, 0), 1))
		}
	}
	logger.Debug("Executing action", "parameters", a.InputParameters)
	err := act.Execute(r.actx, a, progress)
	switch {
	case err == nil:
		progress(1)
		return end(actuators.StateOngoing, actuators.StateSucceeded, "")
	case errors.Is(err, actuators.ErrSkip):
		return end(actuators.StateOngoing, actuators.StateSkipped, msgAutoSkip+actuators.SkipReason(err))
	case r.actx.Err() != nil && r.shutdownOnly():
		return r.abortedAtShutdown(i, act, end, logger)
	case r.actx.Err() != nil:
		// Aborted. An actuator whose work completed before the abort took
		// hold returns nil (a migration that finished anyway).
		return end(actuators.StateOngoing, actuators.StateCancelled, "Aborted: "+err.Error())
	}
	return end(actuators.StateOngoing, actuators.StateFailed, err.Error())
}

// shutdownOnly reports whether the actions' context ended because the
// applier is stopping, not because a user cancelled the plan.
func (r *runner) shutdownOnly() bool {
	cancel, shutdown := r.ex.flags()
	return shutdown && !cancel
}

// abortedAtShutdown settles action i, which the applier's shutdown aborted
// (nobody cancelled it). Its actuator returned, so nothing of it runs any
// more; its Reconciler tells whether it took effect: if it did, the action
// is SUCCEEDED; if not, the abort undid it and it returns to PENDING, to run
// when the plan resumes, so a restart does not fail the plan. Undecided, or
// without a Reconciler, it stays ONGOING for the next start to reconcile.
func (r *runner) abortedAtShutdown(i int, act actuators.Actuator, end func(from, to, msg string) outcome, logger *slog.Logger) outcome {
	rec, ok := act.(actuators.Reconciler)
	if !ok {
		return outcome{i: i, state: actuators.StateOngoing}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.actx), shutdownReconcileTimeout)
	defer cancel()
	done, err := rec.Reconcile(ctx, r.acts[i])
	switch {
	case err != nil:
		logger.Warn("Cannot tell whether the action aborted at shutdown took effect; the next start reconciles it", "err", err)
		return outcome{i: i, state: actuators.StateOngoing}
	case done:
		return end(actuators.StateOngoing, actuators.StateSucceeded, msgShutdownOK)
	}
	return end(actuators.StateOngoing, actuators.StatePending, msgRequeued)
}

// reconcileAll settles the actions a previous process left ONGOING,
// concurrently, through their actuators' Reconcilers. It returns false when
// a state could not be recorded, or the applier stopped before it could
// tell.
func (r *runner) reconcileAll() bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := true
	for i, st := range r.state {
		if st != actuators.StateOngoing {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			to, msg := r.reconcile(i)
			var err error
			if to == "" {
				// The applier is stopping: the action stays ONGOING for
				// the next start to reconcile.
				err = errors.New("undecided at shutdown")
			} else {
				err = r.a.transitionAction(r.a.base, r.acts[i].ID, actuators.StateOngoing, to, msg)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.logger.Error("Recording a reconciled action", "action", r.acts[i].ID, "state", to, "err", err)
				ok = false
				return
			}
			r.state[i] = to
			r.a.metrics.reconciled.WithLabelValues(string(r.acts[i].Type), resultLabel(to)).Inc()
			r.logger.Info("Reconciled interrupted action", "action", r.acts[i].ID, "action_type", r.acts[i].Type, "state", to)
		}(i)
	}
	wg.Wait()
	return ok
}

func (r *runner) reconcile(i int) (state, msg string) {
	a := r.acts[i]
	act, _ := r.a.deps.Actuators.Lookup(a.Type)
	rec, ok := act.(actuators.Reconciler)
	if !ok {
		return actuators.StateFailed, fmt.Sprintf("The applier restarted while the action ran and %s actions cannot tell whether they took effect; it is not run again.", a.Type)
	}
	ctx, cancel := context.WithTimeout(r.a.base, r.a.cfg.ReconcileTimeout)
	defer cancel()
	var done bool
	err := actuators.Retry(ctx, actuators.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Attempts: -1},
		func(ctx context.Context) error {
			d, err := rec.Reconcile(ctx, a)
			if errors.Is(err, actuators.ErrNotObservable) {
				return err
			}
			if err != nil {
				r.logger.Warn("Reconciling interrupted action", "action", a.ID, "err", err)
				return actuators.Retryable(err, 0)
			}
			done = d
			return nil
		})
	switch {
	case err != nil && r.a.base.Err() != nil:
		return "", ""
	case err != nil:
		return actuators.StateFailed, "The applier restarted while the action ran and could not tell whether it took effect (" + err.Error() + "); it is not run again."
	case done:
		return actuators.StateSucceeded, msgReconciledOK
	}
	return actuators.StateFailed, msgReconciledNot
}
