package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/ballast-cloud/ballast/rules/notify"
)

// NotificationsConfig routes alerts to Ballast's own receivers (Telegram,
// WeChat Work, SMS, webhooks), grouped as Alertmanager groups them. For
// silences and inhibition, send alerts to an Alertmanager instead
// (alerting.alertmanagers); both can be used at once.
type NotificationsConfig struct {
	// GroupBy are the labels alerts are grouped by (default [alertname]);
	// ["..."] puts every alert in a group of its own.
	GroupBy []string `yaml:"group_by"`
	// GroupWait is how long a new group waits for more alerts before its
	// first notification (default 30s).
	GroupWait model.Duration `yaml:"group_wait"`
	// GroupInterval is how long a group waits before notifying about a
	// change (new or resolved alerts), and bounds one delivery with its
	// retries (default 5m).
	GroupInterval model.Duration `yaml:"group_interval"`
	// RepeatInterval is how often an unchanged firing group is notified
	// again (default 4h).
	RepeatInterval model.Duration `yaml:"repeat_interval"`
	// Routes send matching alerts to a receiver. An alert goes to the first
	// route that matches, and further down while a matched route has
	// continue. Without routes every receiver gets every alert.
	Routes []RouteConfig `yaml:"routes"`
	// Receivers are the named destinations.
	Receivers []notify.ReceiverConfig `yaml:"receivers"`
}

// RouteConfig is one route.
type RouteConfig struct {
	Receiver string `yaml:"receiver"`
	// Matchers in PromQL syntax, all of which must match: severity="critical",
	// alertname=~"Ceph.*".
	Matchers []string `yaml:"matchers"`
	Continue bool     `yaml:"continue"`
}

// Defaults of NotificationsConfig.
const (
	defaultGroupWait      = 30 * time.Second
	defaultGroupInterval  = 5 * time.Minute
	defaultRepeatInterval = 4 * time.Hour
)

// groupByAll is group_by's "every label" value.
const groupByAll = "..."

type route struct {
	receiver string
	matchers []*labels.Matcher
	cont     bool
}

// receiver is a built receiver: its integrations.
type receiver struct {
	name         string
	integrations []notify.Integration
}

// Dispatcher groups alerts per receiver and delivers each group with
// retries, Alertmanager-style: group_wait before the first notification,
// group_interval between notifications about changes, repeat_interval for
// unchanged firing groups, resolved alerts once. Its state is in memory: a
// restart notifies firing groups again.
type Dispatcher struct {
	logger *slog.Logger
	now    func() time.Time
	client *http.Client

	mu             sync.Mutex
	groupBy        []string
	groupWait      time.Duration
	groupInterval  time.Duration
	repeatInterval time.Duration
	routes         []route
	receivers      map[string]*receiver
	external       labels.Labels
	externalURL    string
	groups         map[string]*group

	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	nGroups  prometheus.GaugeFunc
	sleepFor func(ctx context.Context, d time.Duration) error
}

// group is the alerts of one receiver that share the group_by labels.
type group struct {
	key      string
	receiver string
	labels   map[string]string
	alerts   map[uint64]*entry
	created  time.Time
	// flushed: the first notification went out (group_wait is over).
	flushed    bool
	lastFlush  time.Time
	lastNotify time.Time
	// changed: alerts started or resolved since the content in pending
	// was taken; it is cleared when a notification is taken (not when it
	// is delivered), so a change during a delivery is not lost.
	changed  bool
	inflight bool
	// pending are the integrations (indexes into the receiver's) that
	// still owe the last notification taken: only they are retried, so a
	// failing SMS does not repeat the Telegram message that went out.
	pending map[int]bool
	// failedRounds counts rounds that left integrations pending; a group
	// holding only resolved alerts is given up after maxResolvedRounds.
	failedRounds int
}

// maxResolvedRounds is how many group_intervals a resolved-only group is
// retried before its resolutions are dropped.
const maxResolvedRounds = 3

// entry is one alert of a group. A resolved one leaves the group once
// delivered.
type entry struct {
	alert notify.Alert
	// validUntil is when a firing alert that is not sent again resolves
	// (its rule was removed, or evaluation stopped), as in Alertmanager.
	validUntil time.Time
}

// NewDispatcher builds an unconfigured dispatcher (no receivers);
// ApplyConfig gives it routes and receivers.
func NewDispatcher(client *http.Client, reg prometheus.Registerer, now func() time.Time, logger *slog.Logger) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	d := &Dispatcher{
		logger: logger.With("component", "notifications"), now: now, client: client,
		groupBy: []string{labels.AlertName}, groupWait: defaultGroupWait, groupInterval: defaultGroupInterval,
		repeatInterval: defaultRepeatInterval, receivers: map[string]*receiver{}, groups: map[string]*group{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_notifications_total", Help: "Notifications attempted, by receiver and integration.",
		}, []string{"receiver", "integration"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_notifications_failed_total", Help: "Notification attempts that failed, by receiver, integration and whether they were retried.",
		}, []string{"receiver", "integration", "retried"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ballast_notification_latency_seconds", Help: "Time one delivery attempt took.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"integration"}),
		sleepFor: sleepCtx,
	}
	d.nGroups = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ballast_notification_groups", Help: "Alert groups the dispatcher holds.",
	}, func() float64 { d.mu.Lock(); defer d.mu.Unlock(); return float64(len(d.groups)) })
	if reg != nil {
		reg.MustRegister(d.sent, d.failed, d.latency, d.nGroups)
	}
	return d
}

// compiledNotifications is a validated NotificationsConfig.
type compiledNotifications struct {
	groupBy                []string
	wait, interval, repeat time.Duration
	routes                 []route
	receivers              map[string]*receiver
}

// compile validates cfg and builds its receivers, naming the bad field.
func (d *Dispatcher) compile(cfg NotificationsConfig) (*compiledNotifications, error) {
	c := &compiledNotifications{groupBy: cfg.GroupBy, wait: time.Duration(cfg.GroupWait),
		interval: time.Duration(cfg.GroupInterval), repeat: time.Duration(cfg.RepeatInterval), receivers: map[string]*receiver{}}
	if len(c.groupBy) == 0 {
		c.groupBy = []string{labels.AlertName}
	}
	var errs []error
	for i, l := range c.groupBy {
		if l != groupByAll && !model.LabelName(l).IsValid() {
			errs = append(errs, fmt.Errorf("rules.notifications.group_by[%d]: %q is not a label name", i, l))
		}
	}
	if slices.Contains(c.groupBy, groupByAll) && len(c.groupBy) > 1 {
		errs = append(errs, fmt.Errorf("rules.notifications.group_by: %q cannot be combined with label names", groupByAll))
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"group_wait", &c.wait, defaultGroupWait}, {"group_interval", &c.interval, defaultGroupInterval}, {"repeat_interval", &c.repeat, defaultRepeatInterval}} {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("rules.notifications.%s: must not be negative", f.name))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	for i, rc := range cfg.Receivers {
		if rc.Name == "" {
			errs = append(errs, fmt.Errorf("rules.notifications.receivers[%d].name: required", i))
			continue
		}
		if _, dup := c.receivers[rc.Name]; dup {
			errs = append(errs, fmt.Errorf("rules.notifications.receivers[%d].name: %q is used twice", i, rc.Name))
			continue
		}
		if err := rc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rules.notifications.receivers[%d] (%s): %w", i, rc.Name, err))
			continue
		}
		ints, err := notify.Build(rc, d.client, d.logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules.notifications.receivers[%d] (%s): %w", i, rc.Name, err))
			continue
		}
		c.receivers[rc.Name] = &receiver{name: rc.Name, integrations: ints}
	}
	p := parser.NewParser(parser.Options{})
	for i, rc := range cfg.Routes {
		r := route{receiver: rc.Receiver, cont: rc.Continue}
		if _, ok := c.receivers[rc.Receiver]; !ok && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("rules.notifications.routes[%d].receiver: %q is not a receiver", i, rc.Receiver))
		}
		for j, m := range rc.Matchers {
			ms, err := p.ParseMetricSelector("{" + m + "}")
			if err != nil {
				errs = append(errs, fmt.Errorf("rules.notifications.routes[%d].matchers[%d]: %q: %w", i, j, m, err))
				continue
			}
			r.matchers = append(r.matchers, ms...)
		}
		c.routes = append(c.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// apply puts a compiled configuration in force. Groups of receivers that
// no longer exist are dropped.
func (d *Dispatcher) apply(c *compiledNotifications, external labels.Labels, externalURL string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Equal(d.groupBy, c.groupBy) || !labels.Equal(d.external, external) {
		// Alerts would land in new groups while the old ones expired into
		// false "resolved" notifications: start afresh (firing groups are
		// notified again after group_wait).
		d.groups = map[string]*group{}
	}
	d.externalURL = externalURL
	d.groupBy, d.groupWait, d.groupInterval, d.repeatInterval = c.groupBy, c.wait, c.interval, c.repeat
	d.routes, d.receivers, d.external = c.routes, c.receivers, external
	for k, g := range d.groups {
		if _, ok := d.receivers[g.receiver]; !ok {
			delete(d.groups, k)
		}
	}
}

// Receivers returns the receiver names in force.
func (d *Dispatcher) Receivers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.receivers))
}

// Send takes alerts from the rule manager (every evaluation for firing
// alerts, then resolved ones for a while). It only records them; Run
// delivers.
func (d *Dispatcher) Send(alerts ...*notifier.Alert) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.receivers) == 0 {
		return
	}
	for _, a := range alerts {
		ls := withExternal(a.Labels, d.external)
		for _, rcv := range d.route(ls) {
			d.add(now, rcv, ls, a)
		}
	}
}

// withExternal adds the external labels ls lacks, as Prometheus's notifier
// does for Alertmanagers.
func withExternal(ls, external labels.Labels) labels.Labels {
	if external.IsEmpty() {
		return ls
	}
	b := labels.NewBuilder(ls)
	external.Range(func(l labels.Label) {
		if ls.Get(l.Name) == "" {
			b.Set(l.Name, l.Value)
		}
	})
	return b.Labels()
}

// route returns the receivers ls goes to.
func (d *Dispatcher) route(ls labels.Labels) []string {
	if len(d.routes) == 0 {
		return slices.Sorted(maps.Keys(d.receivers))
	}
	var out []string
	for _, r := range d.routes {
		if !matches(r.matchers, ls) {
			continue
		}
		if !slices.Contains(out, r.receiver) {
			out = append(out, r.receiver)
		}
		if !r.cont {
			break
		}
	}
	return out
}

func matches(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (d *Dispatcher) add(now time.Time, rcv string, ls labels.Labels, a *notifier.Alert) {
	gl := map[string]string{}
	if slices.Contains(d.groupBy, groupByAll) {
		gl = ls.Map()
	} else {
		for _, n := range d.groupBy {
			if v := ls.Get(n); v != "" {
				gl[n] = v
			}
		}
	}
	key := rcv + ":" + labels.FromMap(gl).String()
	g := d.groups[key]
	if g == nil {
		g = &group{key: key, receiver: rcv, labels: gl, alerts: map[uint64]*entry{}, created: now}
		d.groups[key] = g
	}
	fp := ls.Hash()
	resolved := a.ResolvedAt(now)
	al := notify.Alert{Status: statusFiring, Labels: ls.Map(), Annotations: a.Annotations.Map(), StartsAt: a.StartsAt,
		GeneratorURL: a.GeneratorURL, Fingerprint: Fingerprint(ls)}
	if resolved {
		al.Status, al.EndsAt = statusResolved, a.EndsAt
	}
	prev, ok := g.alerts[fp]
	switch {
	case !ok && resolved:
		return // resolved before we knew it fired: nothing to say
	case !ok:
		g.changed = true
	case prev.alert.Status != al.Status:
		g.changed = true
	}
	g.alerts[fp] = &entry{alert: al, validUntil: a.EndsAt}
}

// expire resolves firing alerts nobody confirmed in time.
func (g *group) expire(now time.Time) {
	for _, e := range g.alerts {
		if e.alert.Status == statusFiring && !e.validUntil.IsZero() && !e.validUntil.After(now) {
			e.alert.Status, e.alert.EndsAt = statusResolved, e.validUntil
			g.changed = true
		}
	}
}

// Fingerprint is an alert's identity as Alertmanager computes it (over its
// labels, external labels included), so one alert has one fingerprint in
// Alertmanager, Ballast's notifications and alert events.
func Fingerprint(ls labels.Labels) string {
	set := make(model.LabelSet, ls.Len())
	ls.Range(func(l labels.Label) { set[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return set.Fingerprint().String()
}

// Alert statuses.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// Run checks groups every tick until ctx ends, then waits for deliveries in
// flight (their context is cancelled).
func (d *Dispatcher) Run(ctx context.Context, tick time.Duration) {
	if tick <= 0 {
		tick = time.Second
	}
	var wg sync.WaitGroup
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			for _, job := range d.due() {
				wg.Add(1)
				go func() { defer wg.Done(); d.deliver(ctx, job) }()
			}
		}
	}
}

// job is one notification of one group to its receiver.
type job struct {
	g        *group
	rcv      *receiver
	msg      notify.Message
	to       []int // integrations to deliver to
	deadline time.Duration
}

// due returns the groups whose notification is due, marking them in flight.
func (d *Dispatcher) due() []job {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var jobs []job
	for key, g := range d.groups {
		if g.inflight {
			continue
		}
		if len(g.alerts) == 0 {
			delete(d.groups, key)
			continue
		}
		rcv := d.receivers[g.receiver]
		if rcv == nil {
			delete(d.groups, key)
			continue
		}
		g.expire(now)
		switch {
		case !g.flushed:
			if now.Sub(g.created) < d.groupWait {
				continue
			}
		case now.Sub(g.lastFlush) < d.groupInterval:
			continue
		case !g.changed && len(g.pending) == 0 && (now.Sub(g.lastNotify) < d.repeatInterval || !g.firing()):
			continue
		}
		if g.changed || len(g.pending) == 0 {
			// New content (or a repeat): every integration owes it.
			g.pending = map[int]bool{}
			for i := range rcv.integrations {
				g.pending[i] = true
			}
		}
		g.changed = false
		g.flushed, g.lastFlush, g.inflight = true, now, true
		msg := g.message()
		msg.ExternalURL = d.externalURL
		jobs = append(jobs, job{g: g, rcv: rcv, msg: msg, to: slices.Sorted(maps.Keys(g.pending)), deadline: d.groupInterval})
	}
	return jobs
}

func (g *group) firing() bool {
	for _, e := range g.alerts {
		if e.alert.Status == statusFiring {
			return true
		}
	}
	return false
}

// message is the group's notification: firing alerts first, then resolved
// ones, each in label order.
func (g *group) message() notify.Message {
	m := notify.Message{Receiver: g.receiver, GroupKey: g.key, Status: statusResolved, GroupLabels: maps.Clone(g.labels)}
	for _, e := range g.alerts {
		m.Alerts = append(m.Alerts, e.alert)
	}
	sort.Slice(m.Alerts, func(i, j int) bool {
		a, b := m.Alerts[i], m.Alerts[j]
		if a.Status != b.Status {
			return a.Status == statusFiring
		}
		return labels.FromMap(a.Labels).String() < labels.FromMap(b.Labels).String()
	})
	if len(m.Alerts) > 0 && m.Alerts[0].Status == statusFiring {
		m.Status = statusFiring
	}
	m.CommonLabels = common(m.Alerts, func(a notify.Alert) map[string]string { return a.Labels })
	m.CommonAnnotations = common(m.Alerts, func(a notify.Alert) map[string]string { return a.Annotations })
	return m
}

// common is the key/value pairs every alert shares.
func common(alerts []notify.Alert, get func(notify.Alert) map[string]string) map[string]string {
	if len(alerts) == 0 {
		return map[string]string{}
	}
	out := maps.Clone(get(alerts[0]))
	for _, a := range alerts[1:] {
		m := get(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// deliver sends j's message through every integration of the receiver,
// each with its own retries, within group_interval.
func (d *Dispatcher) deliver(parent context.Context, j job) {
	ctx, cancel := context.WithTimeout(parent, j.deadline)
	defer cancel()
	var wg sync.WaitGroup
	ok := make([]bool, len(j.to))
	for k, i := range j.to {
		if i >= len(j.rcv.integrations) {
			ok[k] = true // the receiver was reconfigured with fewer integrations
			continue
		}
		in := j.rcv.integrations[i]
		msg := j.msg
		if !in.SendResolved {
			msg.Alerts = slices.DeleteFunc(slices.Clone(msg.Alerts), func(a notify.Alert) bool { return a.Status == statusResolved })
			if len(msg.Alerts) == 0 {
				ok[k] = true
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[k] = d.attempt(parent, ctx, j.rcv.name, in, &msg)
		}()
	}
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	g := j.g
	g.inflight = false
	for k, i := range j.to {
		if ok[k] {
			delete(g.pending, i)
		}
	}
	if len(g.pending) > 0 {
		g.failedRounds++
		if g.firing() || g.failedRounds < maxResolvedRounds {
			return // the integrations still pending are tried at the next group_interval
		}
		d.logger.Warn("Giving up on delivering resolved alerts", "receiver", g.receiver, "group_key", g.key, "rounds", g.failedRounds)
		g.pending = nil
	}
	g.failedRounds = 0
	g.lastNotify = d.now()
	for fp, e := range g.alerts {
		if e.alert.Status != statusResolved {
			continue
		}
		// Delivered resolved (or no integration wanted it): forget it,
		// unless it fired again meanwhile (Send replaced the entry).
		if slices.ContainsFunc(j.msg.Alerts, func(a notify.Alert) bool {
			return a.Fingerprint == e.alert.Fingerprint && a.Status == statusResolved
		}) {
			delete(g.alerts, fp)
		}
	}
}

// attempt delivers msg through one integration, retrying what can be
// retried with exponential backoff (or the wait the service asked for)
// until ctx ends.
func (d *Dispatcher) attempt(parent, ctx context.Context, rcv string, in notify.Integration, msg *notify.Message) bool {
	logger := d.logger.With("receiver", rcv, "integration", in.Name, "group_key", msg.GroupKey)
	backoff := time.Second
	for n := 1; ; n++ {
		start := time.Now()
		d.sent.WithLabelValues(rcv, in.Name).Inc()
		retry, err := in.Notifier.Notify(ctx, msg)
		d.latency.WithLabelValues(in.Name).Observe(time.Since(start).Seconds())
		if err == nil {
			logger.Debug("Notification sent", "alerts", len(msg.Alerts), "attempts", n)
			return true
		}
		if parent.Err() != nil {
			logger.Info("Notification interrupted by shutdown", "attempts", n)
			return false
		}
		d.failed.WithLabelValues(rcv, in.Name, fmt.Sprint(retry)).Inc()
		if !retry {
			logger.Error("Notification failed; not retrying", "err", err, "attempts", n)
			return false
		}
		wait := backoff
		var ra *notify.RetryAfterError
		if errors.As(err, &ra) && ra.After > 0 {
			wait = ra.After
		}
		logger.Warn("Notification failed; retrying", "err", err, "attempts", n, "wait", wait)
		if d.sleepFor(ctx, wait) != nil {
			if parent.Err() != nil {
				logger.Info("Notification interrupted by shutdown", "attempts", n)
			} else {
				logger.Error("Notification failed; gave up at group_interval", "err", err, "attempts", n)
			}
			return false
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
