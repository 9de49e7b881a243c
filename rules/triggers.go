package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/audit"
)

// TriggerConfig turns matching events (alerts included) into a run of a
// Watcher EVENT audit, as POST /v1/webhooks/{audit} would.
type TriggerConfig struct {
	// Name identifies the trigger in logs and metrics.
	Name string `yaml:"name"`
	// When is an expr-lang expression over `event` (type, source, subject,
	// time, data) and `alert` (status, labels, annotations, startsAt,
	// endsAt, fingerprint; empty for events that are not alerts), e.g.
	//   alert.status == "firing" && alert.labels.trigger == "workload_balancing"
	When string `yaml:"when"`
	// Audit is the EVENT audit to run: its UUID or name.
	Audit string `yaml:"audit"`
	// Cooldown is the least time between two runs this trigger starts
	// (default 10m): an alert storm runs the audit once. Matches that
	// could not start the audit do not count.
	Cooldown model.Duration `yaml:"cooldown"`
}

const defaultCooldown = 10 * time.Minute

// AuditTrigger runs EVENT audits; decision/audit.Runner is one.
type AuditTrigger interface {
	TriggerEvent(ctx context.Context, ref string) error
}

// TriggerEnv is what a trigger's expression sees.
type TriggerEnv struct {
	Event EventView `expr:"event"`
	Alert AlertView `expr:"alert"`
}

// EventView is an event's envelope and its data decoded as JSON.
type EventView struct {
	Type    string         `expr:"type"`
	Source  string         `expr:"source"`
	Subject string         `expr:"subject"`
	Time    time.Time      `expr:"time"`
	Data    map[string]any `expr:"data"`
}

// AlertView is the alert an io.ballast.alert.v1 event carries.
type AlertView struct {
	Status      string            `expr:"status"`
	Labels      map[string]string `expr:"labels"`
	Annotations map[string]string `expr:"annotations"`
	StartsAt    time.Time         `expr:"startsAt"`
	EndsAt      time.Time         `expr:"endsAt"`
	Fingerprint string            `expr:"fingerprint"`
}

type trigger struct {
	cfg      TriggerConfig
	program  *vm.Program
	cooldown time.Duration

	mu   sync.Mutex
	last time.Time
}

// Triggers evaluates every event against the configured triggers.
type Triggers struct {
	audits AuditTrigger
	now    func() time.Time
	logger *slog.Logger
	runs   *prometheus.CounterVec

	mu   sync.RWMutex
	list []*trigger
}

// Results of a trigger match, the result label of ballast_trigger_runs_total.
const (
	triggerStarted  = "started"
	triggerCooldown = "cooldown"
	triggerRefused  = "refused" // the audit is running or not an EVENT audit
	triggerFailed   = "failed"
)

// NewTriggers builds an empty trigger set; ApplyConfig compiles triggers.
func NewTriggers(audits AuditTrigger, reg prometheus.Registerer, now func() time.Time, logger *slog.Logger) *Triggers {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	t := &Triggers{audits: audits, now: now, logger: logger.With("component", "triggers"),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_trigger_runs_total",
			Help: "Events a trigger matched, by trigger and result (started, cooldown, refused, failed).",
		}, []string{"trigger", "result"})}
	if reg != nil {
		reg.MustRegister(t.runs)
	}
	return t
}

// compileTriggers validates cfgs, naming the bad field.
func compileTriggers(cfgs []TriggerConfig, haveAudits bool) ([]*trigger, error) {
	var errs []error
	seen := map[string]bool{}
	var out []*trigger
	for i, c := range cfgs {
		field := func(f string) string { return fmt.Sprintf("rules.triggers[%d].%s", i, f) }
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: required", field("name")))
			continue
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("%s: %q is used twice", field("name"), c.Name))
			continue
		case c.Audit == "":
			errs = append(errs, fmt.Errorf("%s: required (the UUID or name of an EVENT audit)", field("audit")))
			continue
		case c.Cooldown < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative", field("cooldown")))
			continue
		case !haveAudits:
			errs = append(errs, fmt.Errorf("rules.triggers[%d]: triggers need the decision engine (not run by an ingester)", i))
			continue
		}
		seen[c.Name] = true
		prog, err := expr.Compile(c.When, expr.Env(TriggerEnv{}), expr.AsBool())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field("when"), err))
			continue
		}
		cd := time.Duration(c.Cooldown)
		if cd == 0 {
			cd = defaultCooldown
		}
		out = append(out, &trigger{cfg: c, program: prog, cooldown: cd})
	}
	return out, errors.Join(errs...)
}

// apply puts triggers in force; a trigger kept by name keeps its cooldown.
func (t *Triggers) apply(list []*trigger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range list {
		for _, o := range t.list {
			if o.cfg.Name == n.cfg.Name {
				o.mu.Lock()
				n.last = o.last
				o.mu.Unlock()
			}
		}
		t.runs.WithLabelValues(n.cfg.Name, triggerStarted)
	}
	t.list = list
}

// Len is the number of triggers in force.
func (t *Triggers) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.list)
}

// Handle evaluates one event. It never fails the event: a trigger that
// cannot run is logged and counted.
func (t *Triggers) Handle(ctx context.Context, e bus.Event) error {
	t.mu.RLock()
	list := t.list
	t.mu.RUnlock()
	if len(list) == 0 {
		return nil
	}
	env := TriggerEnv{Event: EventView{Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time}}
	if len(e.Data) > 0 {
		_ = json.Unmarshal(e.Data, &env.Event.Data) // data that is not an object leaves data empty
	}
	if e.Type == bus.TypeAlert {
		var a AlertEvent
		if err := e.Decode(&a); err == nil {
			env.Alert = AlertView{Status: a.Status, Labels: a.Labels, Annotations: a.Annotations,
				StartsAt: a.StartsAt, EndsAt: a.EndsAt, Fingerprint: a.Fingerprint}
		}
	}
	for _, tr := range list {
		out, err := expr.Run(tr.program, env)
		if err != nil {
			// A runtime error (a missing data key used in arithmetic) is the
			// expression's, about this event: log at debug, not per event.
			t.logger.Debug("Trigger expression failed on event", "trigger", tr.cfg.Name, "event", e.ID, "err", err)
			continue
		}
		if ok, _ := out.(bool); !ok {
			continue
		}
		t.fire(ctx, tr, e)
	}
	return nil
}

func (t *Triggers) fire(ctx context.Context, tr *trigger, e bus.Event) {
	logger := t.logger.With("trigger", tr.cfg.Name, "audit", tr.cfg.Audit, "event_type", e.Type, "subject", e.Subject)
	now := t.now()
	tr.mu.Lock()
	if !tr.last.IsZero() && now.Sub(tr.last) < tr.cooldown {
		tr.mu.Unlock()
		t.runs.WithLabelValues(tr.cfg.Name, triggerCooldown).Inc()
		logger.Debug("Trigger matched during its cooldown")
		return
	}
	tr.mu.Unlock()
	err := t.audits.TriggerEvent(ctx, tr.cfg.Audit)
	var te *audit.TriggerError
	switch {
	case err == nil:
		// The cooldown starts only with a run: a refused or failed match
		// leaves the next one free to start it.
		tr.mu.Lock()
		tr.last = now
		tr.mu.Unlock()
		t.runs.WithLabelValues(tr.cfg.Name, triggerStarted).Inc()
		logger.Info("Trigger started the audit")
	case errors.As(err, &te), errors.Is(err, audit.ErrQueueFull):
		t.runs.WithLabelValues(tr.cfg.Name, triggerRefused).Inc()
		logger.Warn("Trigger matched but the audit cannot run now", "reason", err)
	default:
		t.runs.WithLabelValues(tr.cfg.Name, triggerFailed).Inc()
		logger.Error("Trigger could not run the audit", "err", err)
	}
}
