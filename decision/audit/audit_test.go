package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseInterval(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 7, 30, 0, time.UTC)
	for _, c := range []struct {
		in          string
		first, next time.Time
		err         string
	}{
		{in: "3600", first: at, next: at.Add(time.Hour)},
		{in: " 60 ", first: at, next: at.Add(time.Minute)},
		{in: "*/5 * * * *", first: time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC), next: time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC)},
		{in: "0 3 * * 1", first: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), next: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)},
		{in: "@hourly", first: time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC), next: time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)},
		{in: "0", err: "seconds must be within"},
		{in: "-5", err: "seconds must be within"},
		{in: "999999999999", err: "seconds must be within"},
		{in: "", err: "interval is empty"},
		{in: "hourly", err: "neither a number of seconds nor a 5-field cron"},
		{in: "* * *", err: "neither a number of seconds nor a 5-field cron"},
		{in: "61 * * * *", err: "neither a number of seconds nor a 5-field cron"},
		{in: "0 0 * * * *", err: "neither a number of seconds nor a 5-field cron"},
		{in: "TZ=Europe/Paris 0 * * * *", err: "cron expressions run in UTC"},
	} {
		s, err := ParseInterval(c.in)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.first, s.First(at), c.in)
		require.Equal(t, c.next, s.Next(at), c.in)
	}
}

// TestStateMachines pins Watcher's tables: every pair of states.
func TestStateMachines(t *testing.T) {
	audits := map[[2]string]bool{}
	for from, tos := range map[string][]string{
		StatePending:   {StateOngoing, StateCancelled},
		StateOngoing:   {StateFailed, StateSucceeded, StateCancelled, StateSuspended},
		StateFailed:    {StateDeleted},
		StateSucceeded: {StateDeleted},
		StateCancelled: {StateDeleted},
		StateSuspended: {StateOngoing, StateDeleted},
	} {
		for _, to := range tos {
			audits[[2]string{from, to}] = true
		}
	}
	for _, from := range AuditStates {
		for _, to := range AuditStates {
			require.Equal(t, audits[[2]string{from, to}], AuditTransitionAllowed(from, to), "%s -> %s", from, to)
		}
		inactive := from == StateCancelled || from == StateDeleted || from == StateFailed || from == StateSuspended
		require.Equal(t, inactive, AuditInactive(from), from)
		require.Equal(t, from == StatePending || from == StateSucceeded, WebhookAllowed(from), from)
	}
	patches := map[[2]string]bool{{StateRecommended, StatePending}: true, {StateRecommended, StateCancelled}: true,
		{StateOngoing, StateCancelling}: true, {StatePending, StateCancelled}: true}
	for _, from := range PlanStates {
		for _, to := range PlanStates {
			require.Equal(t, patches[[2]string{from, to}], PlanPatchAllowed(from, to), "%s -> %s", from, to)
		}
		deletable := from == StateSucceeded || from == StateRecommended || from == StateFailed || from == StateSuperseded ||
			from == StateCancelled
		require.Equal(t, deletable, PlanDeletable(from), from)
	}
	for _, a := range ActionStates {
		for _, p := range PlanStates {
			stateOK, planOK := ActionSkipAllowed(a, p)
			require.Equal(t, a == StatePending, stateOK)
			require.Equal(t, p == StateRecommended || p == StatePending, planOK)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := Config{}.WithDefaults()
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, c.PollInterval)
	require.Equal(t, 30*time.Minute, c.ExpiryCheckInterval)
	require.Equal(t, 24*time.Hour, c.ActionPlanExpiry)
	require.NotEmpty(t, c.Hostname)
	_, err = Config{PollInterval: -time.Second}.WithDefaults()
	require.ErrorContains(t, err, "continuous_audit_interval")
	_, err = Config{Workers: -1}.WithDefaults()
	require.ErrorContains(t, err, "workers")
}
