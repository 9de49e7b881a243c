package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/rules/notify"
	"github.com/ballast-cloud/ballast/tsdb"
)

// audits records the EVENT audits triggers run; "busy" is refused as an
// ONGOING audit is.
type audits struct {
	mu  sync.Mutex
	ran []string
}

func (a *audits) TriggerEvent(_ context.Context, ref string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ref == "busy" {
		return &audit.TriggerError{Msg: "Audit state ONGOING is disallowed."}
	}
	a.ran = append(a.ran, ref)
	return nil
}

func (a *audits) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ran...)
}

// alertmanager records what Prometheus's notifier posts to /api/v2/alerts.
type alertmanager struct {
	*httptest.Server
	mu     sync.Mutex
	alerts []map[string]any
}

func newAlertmanager(t *testing.T) *alertmanager {
	am := &alertmanager{}
	am.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		var got []map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		am.mu.Lock()
		am.alerts = append(am.alerts, got...)
		am.mu.Unlock()
	}))
	t.Cleanup(am.Close)
	return am
}

func (am *alertmanager) got() []map[string]any {
	am.mu.Lock()
	defer am.mu.Unlock()
	return append([]map[string]any(nil), am.alerts...)
}

const testRules = `
groups:
  - name: test
    interval: 100ms
    rules:
      - record: job:test_temperature:max
        expr: max by (job) (test_temperature)
      - alert: TooHot
        expr: test_temperature > 50
        labels:
          severity: critical
          trigger: cooling
        annotations:
          summary: "{{ $labels.room }} is {{ $value }} degrees"
      - alert: HasRunbook
        expr: test_temperature > 1000
        annotations:
          runbook_url: https://wiki.example/HasRunbook
`

const builtinRules = `
groups:
  - name: builtin
    interval: 100ms
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
`

// TestEngine runs rules over a real TSDB: a recording rule is stored, an
// alert fires with its runbook link and reaches an Alertmanager, Ballast's
// webhook receiver, the bus as an alert event, and a trigger that runs an
// EVENT audit.
func TestEngine(t *testing.T) {
	dir := t.TempDir()
	st, err := tsdb.Open(tsdb.Config{Path: filepath.Join(dir, "data")}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	app := st.Appender(t.Context())
	now := time.Now()
	for i := range 40 {
		ts := now.Add(time.Duration(i-20) * time.Second).UnixMilli()
		_, err := app.Append(0, labels.FromStrings("__name__", "test_temperature", "job", "sensors", "room", "lab"), ts, 70)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())

	ruleFile := filepath.Join(dir, "test.rules.yml")
	require.NoError(t, os.WriteFile(ruleFile, []byte(testRules), 0o644))
	am := newAlertmanager(t)
	h := newHook(t)
	pc, err := promconfig.Load(fmt.Sprintf(`
global:
  evaluation_interval: 100ms
  external_labels: {cluster: lab}
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
`, ruleFile, strings.TrimPrefix(am.URL, "http://")), nil)
	require.NoError(t, err)

	events := bus.NewInProc(bus.InProcOptions{})
	t.Cleanup(func() { _ = events.Close() })
	reg := prometheus.NewRegistry()
	ran := &audits{}
	e, err := New(Config{ResendDelay: model.Duration(200 * time.Millisecond)}, Deps{Storage: st, Engine: st.Engine(), Events: events, Audits: ran, Registerer: reg,
		BuiltinRules: []byte(builtinRules), Runbooks: fstest.MapFS{"TooHot.md": {Data: []byte("# TooHot")}}}, nil)
	require.NoError(t, err)
	cfg := Config{
		Notifications: NotificationsConfig{GroupWait: 1, Receivers: []notify.ReceiverConfig{webhookReceiver("ops", h.URL)}},
		Triggers: []TriggerConfig{
			{Name: "cool-down", When: `alert.status == "firing" && alert.labels.trigger == "cooling"`, Audit: "cooling-audit"},
			{Name: "never", When: `event.type == "io.ballast.nothing.v1"`, Audit: "other"},
			{Name: "busy", When: `alert.labels.alertname == "AlwaysFiring"`, Audit: "busy"},
		},
	}
	ext, _ := url.Parse("http://ballast.example:9090")
	require.NoError(t, e.ApplyConfig(pc, cfg, ext))

	// Other subscribers see the alert events as well.
	seen := make(chan AlertEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = events.ConsumeEvents(ctx, "test", []string{bus.TypeAlert}, func(_ context.Context, ev bus.Event) error {
			var a AlertEvent
			require.NoError(t, ev.Decode(&a))
			seen <- a
			return nil
		})
	}()
	go func() { defer wg.Done(); _ = e.Run(ctx, events) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	require.Eventually(t, func() bool { return len(am.got()) > 0 }, 30*time.Second, 20*time.Millisecond, "alert reaches the Alertmanager")
	require.Eventually(t, func() bool { return len(ran.list()) > 0 }, 30*time.Second, 20*time.Millisecond, "trigger runs")
	require.Eventually(t, func() bool { return len(h.got()) > 0 }, 30*time.Second, 20*time.Millisecond, "webhook receiver")

	var hot map[string]any
	for _, a := range am.got() {
		if a["labels"].(map[string]any)["alertname"] == "TooHot" {
			hot = a
		}
	}
	require.NotNil(t, hot, "TooHot reached the Alertmanager")
	require.Equal(t, "lab", hot["labels"].(map[string]any)["cluster"], "external labels")
	ann := hot["annotations"].(map[string]any)
	require.Equal(t, "lab is 70 degrees", ann["summary"])
	require.Equal(t, "http://ballast.example:9090/runbooks/TooHot", ann["runbook_url"])
	for _, a := range am.got() {
		if a["labels"].(map[string]any)["alertname"] == "AlwaysFiring" {
			ann, _ := a["annotations"].(map[string]any)
			require.NotContains(t, ann, "runbook_url", "no page, no (dead) link")
		}
	}
	require.True(t, strings.HasPrefix(hot["generatorURL"].(string), "http://ballast.example:9090/graph?g0.expr="))

	require.Equal(t, []string{"cooling-audit"}, ran.list(), "the trigger ran its audit once, the busy one was refused")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.triggers.runs.WithLabelValues("busy", triggerRefused)) == 1
	}, 10*time.Second, 10*time.Millisecond)

	// The rule file's own runbook_url is kept; the built-in rules loaded.
	var files []string
	for _, g := range e.RuleGroups() {
		files = append(files, g.File())
		for _, r := range g.Rules() {
			if r.Name() == "HasRunbook" {
				require.Contains(t, fmt.Sprint(r), "https://wiki.example/HasRunbook")
			}
		}
	}
	require.ElementsMatch(t, []string{BuiltinRuleFile, ruleFile}, files)
	require.Len(t, e.Alertmanagers(), 1)

	// The recording rule and the ALERTS series are in the TSDB.
	require.Eventually(t, func() bool {
		return queryValue(t, st, `job:test_temperature:max{job="sensors"}`) == 70 &&
			queryValue(t, st, `ALERTS{alertname="TooHot",alertstate="firing"}`) == 1
	}, 10*time.Second, 20*time.Millisecond)

	select {
	case a := <-seen:
		require.Equal(t, "firing", a.Status)
		require.NotEmpty(t, a.Fingerprint)
	case <-time.After(10 * time.Second):
		t.Fatal("no alert event on the bus")
	}

	// A bad rule file changes nothing.
	require.NoError(t, os.WriteFile(ruleFile, []byte("groups: [{name: x, rules: [{alert: Bad, expr: 'sum('}]}]"), 0o644))
	err = e.ApplyConfig(pc, cfg, ext)
	require.ErrorContains(t, err, "rule_files")
	require.Len(t, e.RuleGroups(), 2)
}

func queryValue(t *testing.T, st *tsdb.Storage, q string) float64 {
	t.Helper()
	qry, err := st.Engine().NewInstantQuery(t.Context(), st.Queryable(), nil, q, time.Now())
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(t.Context())
	if res.Err != nil {
		return -1
	}
	v, err := res.Vector()
	if err != nil || len(v) != 1 {
		return -1
	}
	return v[0].F
}

func TestTriggerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  []TriggerConfig
		want string
	}{
		{"no name", []TriggerConfig{{When: "true", Audit: "a"}}, "rules.triggers[0].name: required"},
		{"twice", []TriggerConfig{{Name: "x", When: "true", Audit: "a"}, {Name: "x", When: "true", Audit: "a"}}, `rules.triggers[1].name: "x" is used twice`},
		{"no audit", []TriggerConfig{{Name: "x", When: "true"}}, "rules.triggers[0].audit: required"},
		{"syntax", []TriggerConfig{{Name: "x", When: "alert.status ==", Audit: "a"}}, "rules.triggers[0].when:"},
		{"not bool", []TriggerConfig{{Name: "x", When: "alert.status", Audit: "a"}}, "rules.triggers[0].when:"},
		{"unknown field", []TriggerConfig{{Name: "x", When: "alert.nope == 1", Audit: "a"}}, "rules.triggers[0].when:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileTriggers(tc.cfg, true)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := compileTriggers([]TriggerConfig{{Name: "x", When: "true", Audit: "a"}}, false)
	require.ErrorContains(t, err, "triggers need the decision engine")
}

// TestTriggerEvents: triggers see any event's data, and the cooldown
// holds a storm to one run.
func TestTriggerEvents(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	ran := &audits{}
	tr := NewTriggers(ran, nil, clock.Now, nil)
	list, err := compileTriggers([]TriggerConfig{{Name: "maint", Audit: "drain",
		When: `event.type == "io.ballast.host.state.v1" && event.data.state == "maintenance"`}}, true)
	require.NoError(t, err)
	tr.apply(list)
	ev := func(state string) bus.Event {
		e, err := bus.NewEvent("test", bus.TypeHostState, "cn-1", map[string]string{"host": "cn-1", "state": state})
		require.NoError(t, err)
		return e
	}
	require.NoError(t, tr.Handle(t.Context(), ev("enabled")))
	require.Empty(t, ran.list())
	require.NoError(t, tr.Handle(t.Context(), ev("maintenance")))
	require.NoError(t, tr.Handle(t.Context(), ev("maintenance")))
	require.Equal(t, []string{"drain"}, ran.list(), "cooldown")
	clock.Add(11 * time.Minute)
	require.NoError(t, tr.Handle(t.Context(), ev("maintenance")))
	require.Equal(t, []string{"drain", "drain"}, ran.list())
	// Data that is not an object, and runtime errors, are no match.
	bad := ev("x")
	bad.Data = []byte(`[1,2]`)
	require.NoError(t, tr.Handle(t.Context(), bad))
	require.Len(t, ran.list(), 2)
}

func FuzzTriggerHandle(f *testing.F) {
	f.Add("io.ballast.alert.v1", []byte(`{"status":"firing","labels":{"alertname":"X"}}`))
	f.Add("io.ballast.host.state.v1", []byte(`{"state":"maintenance"}`))
	f.Add("x", []byte(`null`))
	list, err := compileTriggers([]TriggerConfig{
		{Name: "a", Audit: "a", When: `alert.status == "firing" && alert.labels.alertname == "X"`},
		{Name: "b", Audit: "b", When: `event.data.state == "maintenance" && len(event.data) > 0`},
		{Name: "c", Audit: "c", When: `event.data.n * 2 > 3`},
	}, true)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		tr := NewTriggers(&audits{}, nil, nil, nil)
		tr.apply(list)
		e := bus.Event{SpecVersion: bus.SpecVersion, ID: "1", Source: "fuzz", Type: typ, Time: time.Now(), Data: data}
		require.NoError(t, tr.Handle(t.Context(), e))
	})
}

// TestAlertEventsExpire: an alert whose rule was removed (no resend)
// resolves when its validity ends, so firing again is news again; external
// labels are part of the alert, and the fingerprint is Alertmanager's.
func TestAlertEventsExpire(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	a := newAlertEvents(nil, clock.Now, slog.New(slog.DiscardHandler))
	a.setExternal(labels.FromStrings("cluster", "lab"))
	alert := func(valid time.Duration) *notifier.Alert {
		return &notifier.Alert{Labels: labels.FromStrings("alertname", "X"), StartsAt: clock.Now(), EndsAt: clock.Now().Add(valid)}
	}
	next := func() AlertEvent {
		t.Helper()
		select {
		case e := <-a.queue:
			var ev AlertEvent
			require.NoError(t, e.Decode(&ev))
			return ev
		default:
			t.Fatal("no event")
			return AlertEvent{}
		}
	}
	a.Send(alert(4 * time.Minute))
	ev := next()
	require.Equal(t, "firing", ev.Status)
	require.Equal(t, "lab", ev.Labels["cluster"])
	require.Equal(t, Fingerprint(labels.FromStrings("alertname", "X", "cluster", "lab")), ev.Fingerprint)
	a.Send(alert(4 * time.Minute))
	require.Empty(t, a.queue, "still firing: no event")
	clock.Add(5 * time.Minute)
	a.expire()
	require.Equal(t, "resolved", next().Status)
	a.Send(alert(4 * time.Minute))
	require.Equal(t, "firing", next().Status)
}
