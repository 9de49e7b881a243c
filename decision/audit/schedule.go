package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when a continuous audit runs: every N seconds, or on a cron
// expression.
type Schedule struct {
	every time.Duration
	cron  cron.Schedule
}

// cronParser reads Watcher's 5-field cron (minute hour day-of-month month
// day-of-week) and the @hourly-style descriptors, in UTC.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxIntervalSeconds bounds an interval in seconds to ten years, so that a
// next run time never overflows.
const maxIntervalSeconds = 10 * 365 * 24 * 3600

// ParseInterval reads an audit interval: a positive number of seconds
// ("3600") or a 5-field cron expression ("*/5 * * * *"). The error names what
// would be accepted.
func ParseInterval(s string) (Schedule, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return Schedule{}, fmt.Errorf("interval is empty: want a number of seconds or a 5-field cron expression")
	}
	if isDigits(v) || (v[0] == '-' && isDigits(v[1:])) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > maxIntervalSeconds {
			return Schedule{}, fmt.Errorf("interval %q: seconds must be within [1, %d]", s, maxIntervalSeconds)
		}
		return Schedule{every: time.Duration(n) * time.Second}, nil
	}
	if strings.HasPrefix(v, "TZ=") || strings.HasPrefix(v, "CRON_TZ=") {
		return Schedule{}, fmt.Errorf("interval %q: time zones are not accepted; cron expressions run in UTC", s)
	}
	c, err := cronParser.Parse(v)
	if err != nil {
		return Schedule{}, fmt.Errorf("interval %q is neither a number of seconds nor a 5-field cron expression "+
			"(minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\"): %w", s, err)
	}
	return Schedule{cron: c}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// IsCron reports whether the schedule is a cron expression.
func (s Schedule) IsCron() bool { return s.cron != nil }

// First is the first run time of a new schedule: at once for an interval in
// seconds (Watcher's APScheduler interval job starts immediately), the next
// cron time otherwise.
func (s Schedule) First(now time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(now.UTC())
	}
	return now.UTC()
}

// Next is the run time after a run that ended at now.
func (s Schedule) Next(now time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(now.UTC())
	}
	return now.UTC().Add(s.every)
}
