// Package rules owns alerting: Prometheus-format recording and alerting
// rules evaluated by Prometheus's own rule manager over the embedded TSDB,
// delivery of the alerts to Alertmanagers (Prometheus's notifier, the
// `alerting` section) and to Ballast's own receivers (Telegram, WeChat Work,
// SMS, webhooks; see Dispatcher), io.ballast.alert.v1 events on the bus, and
// expr-lang triggers that turn events and alerts into audits.
package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	prules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// Config is the `rules` section of the server configuration. Rule files
// and Alertmanagers are configured as in Prometheus (`rule_files`,
// `alerting`); this holds what Ballast adds.
type Config struct {
	// Builtin loads Ballast's default rules (deploy/rules/ballast.rules.yml,
	// built in) besides rule_files (default true).
	Builtin *bool `yaml:"builtin"`
	// RunbookURL is the runbook_url given to alerting rules without one;
	// "%s" is replaced by the alert name. Unset, alerts that have a built-in
	// runbook link the server's <external URL>/runbooks/<alert>, and others
	// get none (no dead links).
	RunbookURL string `yaml:"runbook_url"`
	// ResendDelay is how often firing alerts are sent again to receivers
	// and Alertmanagers (default 1m, as Prometheus).
	ResendDelay model.Duration `yaml:"resend_delay"`
	// ForGracePeriod and OutageTolerance are Prometheus's
	// rules.alert.for-grace-period (10m) and for-outage-tolerance (1h).
	ForGracePeriod  model.Duration `yaml:"for_grace_period"`
	OutageTolerance model.Duration `yaml:"for_outage_tolerance"`

	Notifications NotificationsConfig `yaml:"notifications"`
	Triggers      []TriggerConfig     `yaml:"triggers"`
}

// BuiltinEnabled reports whether the built-in rules are loaded.
func (c Config) BuiltinEnabled() bool { return c.Builtin == nil || *c.Builtin }

// Storage is where rules read and write (the embedded TSDB).
type Storage interface {
	Appendable() storage.Appendable
	Queryable() storage.SampleAndChunkQueryable
}

// Deps are the engine's collaborators. Events and Audits are optional.
type Deps struct {
	Storage Storage
	Engine  promql.QueryEngine
	// Events receives io.ballast.alert.v1 events (nil: none published).
	Events bus.EventPublisher
	// Audits runs the EVENT audits triggers name (nil: triggers refused).
	Audits     AuditTrigger
	Registerer prometheus.Registerer
	// HTTPClient is for Ballast's receivers (default: 30s timeout).
	HTTPClient *http.Client
	// BuiltinRules is the text of the built-in rule file.
	BuiltinRules []byte
	// Runbooks holds <AlertName>.md pages (served at /runbooks/).
	Runbooks fs.FS
	// Now is the clock (tests).
	Now func() time.Time
	// SDMetrics are the service discovery metrics already registered by
	// the process's scrape discovery (they can be registered only once);
	// nil: the engine registers them.
	SDMetrics *discovery.SDMetrics
}

// Engine runs rule evaluation and alert delivery.
type Engine struct {
	deps       Deps
	logger     *slog.Logger
	rules      *prules.Manager
	loader     *loader
	notifier   *notifier.Manager
	discovery  *discovery.Manager
	discCancel context.CancelFunc
	dispatch   *Dispatcher
	events     *alertEvents
	triggers   *Triggers

	mu          sync.Mutex
	externalURL string
	started     bool
	stopOnce    sync.Once
}

// New builds the engine; nothing is evaluated until ApplyConfig and Run.
// Of cfg, only the evaluation settings (resend_delay, for_grace_period,
// for_outage_tolerance) are read here; they need a restart to change.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Engine, error) {
	if deps.Storage == nil || deps.Engine == nil {
		return nil, errors.New("rules: storage and query engine are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.ResendDelay < 0 || cfg.ForGracePeriod < 0 || cfg.OutageTolerance < 0 {
		return nil, errors.New("rules: resend_delay, for_grace_period and for_outage_tolerance must not be negative")
	}
	durationOr := func(d model.Duration, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return time.Duration(d)
	}
	e := &Engine{deps: deps, logger: logger.With("component", "rules")}
	e.loader = &loader{parser: parser.NewParser(parser.Options{}), logger: logger.With("component", "rules"), builtin: deps.BuiltinRules,
		pages: map[string]bool{}}
	if deps.Runbooks != nil {
		for _, n := range runbookNames(deps.Runbooks) {
			e.loader.pages[strings.ToLower(n)] = true
		}
	}
	e.notifier = notifier.NewManager(&notifier.Options{QueueCapacity: 10000, DrainOnShutdown: true, Registerer: deps.Registerer},
		model.UTF8Validation, logger.With("component", "notifier"))
	sdMetrics := deps.SDMetrics
	if sdMetrics == nil {
		var err error
		if sdMetrics, err = discovery.CreateAndRegisterSDMetrics(deps.Registerer); err != nil {
			return nil, fmt.Errorf("rules: register discovery metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.discCancel = cancel
	e.discovery = discovery.NewManager(ctx, logger.With("component", "discovery"), deps.Registerer, sdMetrics, discovery.Name("notify"))
	if e.discovery == nil {
		cancel()
		return nil, errors.New("rules: cannot create the Alertmanager discovery manager")
	}
	e.dispatch = NewDispatcher(deps.HTTPClient, deps.Registerer, deps.Now, logger)
	e.triggers = NewTriggers(deps.Audits, deps.Registerer, deps.Now, logger)
	senders := multiSender{e.notifier, e.dispatch}
	if deps.Events != nil {
		e.events = newAlertEvents(deps.Events, deps.Now, e.logger)
		senders = append(senders, e.events)
	}
	e.rules = prules.NewManager(&prules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		Appendable:           deps.Storage.Appendable(),
		Queryable:            deps.Storage.Queryable(),
		QueryFunc:            prules.EngineQueryFunc(deps.Engine, deps.Storage.Queryable()),
		NotifyFunc:           e.notifyFunc(senders),
		Context:              context.Background(),
		ExternalURL:          &url.URL{},
		Registerer:           deps.Registerer,
		Logger:               logger.With("component", "rule manager"),
		GroupLoader:          e.loader,
		OutageTolerance:      durationOr(cfg.OutageTolerance, time.Hour),
		ForGracePeriod:       durationOr(cfg.ForGracePeriod, 10*time.Minute),
		ResendDelay:          durationOr(cfg.ResendDelay, time.Minute),
	})
	return e, nil
}

// notifyFunc hands alerts to every sender, with generator URLs pointing at
// the external URL in force.
func (e *Engine) notifyFunc(s multiSender) prules.NotifyFunc {
	return func(ctx context.Context, expr string, alerts ...*prules.Alert) {
		e.mu.Lock()
		ext := e.externalURL
		e.mu.Unlock()
		prules.SendAlerts(s, ext)(ctx, expr, alerts...)
	}
}

// multiSender fans alerts out.
type multiSender []prules.Sender

func (m multiSender) Send(alerts ...*notifier.Alert) {
	for _, s := range m {
		s.Send(alerts...)
	}
}

// ApplyConfig validates and puts in force the rule files, Alertmanagers,
// receivers and triggers. On error nothing changes. externalURL is the
// server's, for generator and runbook links.
func (e *Engine) ApplyConfig(pc *promconfig.Config, cfg Config, externalURL *url.URL) error {
	notifications, err := e.dispatch.compile(cfg.Notifications)
	if err != nil {
		return err
	}
	triggers, err := compileTriggers(cfg.Triggers, e.deps.Audits != nil)
	if err != nil {
		return err
	}
	var files []string
	if cfg.BuiltinEnabled() {
		if len(e.deps.BuiltinRules) == 0 {
			return errors.New("rules.builtin: this build has no built-in rules")
		}
		files = append(files, BuiltinRuleFile)
	}
	for _, pat := range pc.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("rule_files: %q: %w", pat, err)
		}
		if len(fs) == 0 {
			e.logger.Warn("No rule file matches", "rule_files", pat)
		}
		files = append(files, fs...)
	}
	ext := strings.TrimSuffix(externalURL.String(), "/")
	if cfg.RunbookURL != "" {
		e.loader.setRunbook(cfg.RunbookURL, true)
	} else {
		e.loader.setRunbook(ext+"/runbooks/%s", false)
	}
	// Load every rule file first, so that errors name the file and line
	// and a bad file changes nothing.
	var loadErrs []error
	for _, f := range files {
		if _, errs := e.loader.Load(f, false, model.UTF8Validation); len(errs) > 0 {
			loadErrs = append(loadErrs, errs...)
		}
	}
	if len(loadErrs) > 0 {
		return fmt.Errorf("rule_files: %w", errors.Join(loadErrs...))
	}
	// The notifier next: it can still refuse (an Alertmanager TLS file
	// missing) before anything else has changed.
	if err := e.notifier.ApplyConfig(pc); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	sd := map[string]discovery.Configs{}
	for k, v := range pc.AlertingConfig.AlertmanagerConfigs.ToMap() {
		sd[k] = v.ServiceDiscoveryConfigs
	}
	if err := e.rules.Update(time.Duration(pc.GlobalConfig.EvaluationInterval), files, pc.GlobalConfig.ExternalLabels, ext, nil); err != nil {
		return fmt.Errorf("rule_files: %w", err)
	}
	if err := e.discovery.ApplyConfig(sd); err != nil {
		return fmt.Errorf("alerting.alertmanagers: %w", err)
	}
	e.dispatch.apply(notifications, pc.GlobalConfig.ExternalLabels, ext)
	if e.events != nil {
		e.events.setExternal(pc.GlobalConfig.ExternalLabels)
	}
	e.triggers.apply(triggers)
	e.mu.Lock()
	e.externalURL = ext
	e.mu.Unlock()
	groups := e.rules.RuleGroups()
	e.logger.Info("Rules configuration applied", "files", len(files), "groups", len(groups), "alertmanager_configs", len(sd),
		"receivers", len(notifications.receivers), "triggers", len(triggers))
	return nil
}

// Run evaluates rules and delivers alerts until ctx ends. events, when not
// nil, is where triggers read events from (all types, in group "triggers").
func (e *Engine) Run(ctx context.Context, events bus.EventConsumer) error {
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	run(func() { _ = e.discovery.Run() })
	run(func() { e.notifier.Run(e.discovery.SyncCh()) })
	run(func() { e.dispatch.Run(ctx, time.Second) })
	if e.events != nil {
		run(func() { e.events.run(ctx) })
	}
	if events != nil && e.deps.Audits != nil {
		run(func() {
			if err := events.ConsumeEvents(ctx, "triggers", nil, e.triggers.Handle); err != nil && ctx.Err() == nil {
				e.logger.Error("Trigger event consumer stopped", "err", err)
			}
		})
	}
	run(e.rules.Run) // returns once stopped
	<-ctx.Done()
	e.stop()
	wg.Wait()
	return nil
}

// Close releases an engine that was never run.
func (e *Engine) Close() {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		e.discCancel()
	}
}

// stop stops evaluation first, then the notifier (Prometheus's order: the
// notifier must outlive the last evaluation).
func (e *Engine) stop() {
	e.stopOnce.Do(func() {
		e.rules.Stop()
		e.notifier.Stop()
		e.discCancel()
	})
}

// RuleGroups and AlertingRules serve /api/v1/rules and /api/v1/alerts.
func (e *Engine) RuleGroups() []*prules.Group           { return e.rules.RuleGroups() }
func (e *Engine) AlertingRules() []*prules.AlertingRule { return e.rules.AlertingRules() }

// Alertmanagers and DroppedAlertmanagers serve /api/v1/alertmanagers.
func (e *Engine) Alertmanagers() []*url.URL        { return e.notifier.Alertmanagers() }
func (e *Engine) DroppedAlertmanagers() []*url.URL { return e.notifier.DroppedAlertmanagers() }

// Receivers lists Ballast's own receivers in force.
func (e *Engine) Receivers() []string { return e.dispatch.Receivers() }

// Summary is what Check found.
type Summary struct {
	Files, Groups, Rules, Alerts, Receivers, Triggers int
}

// Check validates a configuration without running it, as ApplyConfig
// would (receivers built, secret files read, triggers compiled, every rule
// file loaded), for `ballast check config`.
func Check(pc *promconfig.Config, cfg Config, builtin []byte) (Summary, error) {
	var sum Summary
	notifications, err := NewDispatcher(nil, nil, nil, nil).compile(cfg.Notifications)
	if err != nil {
		return sum, err
	}
	triggers, err := compileTriggers(cfg.Triggers, true)
	if err != nil {
		return sum, err
	}
	sum.Receivers, sum.Triggers = len(notifications.receivers), len(triggers)
	var files []string
	if cfg.BuiltinEnabled() && len(builtin) > 0 {
		files = append(files, BuiltinRuleFile)
	}
	for _, pat := range pc.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			return sum, fmt.Errorf("rule_files: %q: %w", pat, err)
		}
		if len(fs) == 0 {
			return sum, fmt.Errorf("rule_files: no file matches %q", pat)
		}
		files = append(files, fs...)
	}
	s, err := CheckRuleFiles(files, builtin)
	s.Receivers, s.Triggers = sum.Receivers, sum.Triggers
	return s, err
}

// CheckRuleFiles loads rule files (BuiltinRuleFile stands for builtin) as
// the rule manager does and counts what they hold; errors name file and
// line.
func CheckRuleFiles(files []string, builtin []byte) (Summary, error) {
	l := &loader{parser: parser.NewParser(parser.Options{}), logger: slog.New(slog.DiscardHandler), builtin: builtin}
	var sum Summary
	var errs []error
	for _, f := range files {
		rgs, ferrs := l.Load(f, false, model.UTF8Validation)
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		sum.Files++
		for _, g := range rgs.Groups {
			sum.Groups++
			for _, r := range g.Rules {
				sum.Rules++
				if r.Alert != "" {
					sum.Alerts++
				}
			}
		}
	}
	return sum, errors.Join(errs...)
}
