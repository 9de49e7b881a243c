package applier

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

type metrics struct {
	actions    *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	reconciled *prometheus.CounterVec
	plans      *prometheus.CounterVec
	running    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_applier_actions_total",
			Help: "Actions the applier finished, by action type and final state (succeeded, failed, skipped, cancelled; interrupted: aborted by a shutdown before taking effect, run again on resume).",
		}, []string{"action_type", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ballast_applier_action_duration_seconds",
			Help:    "Time from launching an action (precondition included) to its final state, by action type and final state.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"action_type", "result"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ballast_applier_actions_in_flight",
			Help: "Actions launched and not yet finished, by action type.",
		}, []string{"action_type"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_applier_reconciled_actions_total",
			Help: "Actions found ONGOING after a restart and settled without running them again, by action type and the state recorded.",
		}, []string{"action_type", "result"}),
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_applier_plans_total",
			Help: "Action plan executions that ended, by final state (interrupted: left for the next start to resume).",
		}, []string{"result"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ballast_applier_plans_running",
			Help: "Action plans being applied.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.actions, m.duration, m.inFlight, m.reconciled, m.plans, m.running} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(errors.New("applier: register metrics"), err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(t action.Type, state string, d time.Duration) {
	r := resultLabel(state)
	m.actions.WithLabelValues(string(t), r).Inc()
	m.duration.WithLabelValues(string(t), r).Observe(d.Seconds())
}

func resultLabel(state string) string {
	if state == "" || state == actuators.StatePending {
		// Left for the next start: the plan stopped, or a shutdown
		// aborted the action before it took effect.
		return "interrupted"
	}
	return strings.ToLower(state)
}
