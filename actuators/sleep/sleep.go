// Package sleep is the sleep actuator: Watcher's "Wait for a given interval
// in seconds", used between actions that need the world to settle. It waits
// and changes nothing.
package sleep

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
)

// Config bounds the sleeps. Zero values get the defaults noted.
type Config struct {
	// MaxDuration refuses longer sleeps (default 1h): a typo in seconds must
	// not hold a plan for a week.
	MaxDuration time.Duration `yaml:"max_duration"`
	// Tick is how often progress is reported (default 1s).
	Tick time.Duration `yaml:"-"`
}

// Validate applies the defaults and checks the values.
func (c *Config) Validate() error {
	if c.MaxDuration < 0 {
		return fmt.Errorf("sleep.max_duration: %s must not be negative", c.MaxDuration)
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = time.Hour
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	return nil
}

// Sleep waits.
type Sleep struct {
	cfg    Config
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*Sleep)(nil)
	_ actuators.Reconciler = (*Sleep)(nil)
)

// New validates cfg.
func New(cfg Config, logger *slog.Logger) (*Sleep, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sleep{cfg: cfg, logger: logger.With("component", "actuators/sleep")}, nil
}

func (s *Sleep) duration(a action.Action) (time.Duration, error) {
	secs, err := actuators.FloatParam(a, "duration")
	if err != nil {
		return 0, err
	}
	d := time.Duration(secs * float64(time.Second))
	if secs < 0 || d > s.cfg.MaxDuration {
		return 0, fmt.Errorf("sleep: input_parameters.duration %gs is outside [0, %s] (sleep.max_duration)", secs, s.cfg.MaxDuration)
	}
	return d, nil
}

// Precondition checks the duration.
func (s *Sleep) Precondition(_ context.Context, a action.Action) error {
	_, err := s.duration(a)
	return err
}

// Execute waits for the duration, or until ctx ends.
func (s *Sleep) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	d, err := s.duration(a)
	if err != nil {
		return err
	}
	start := time.Now()
	done := time.NewTimer(d)
	defer done.Stop()
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-done.C:
			return nil
		case <-tick.C:
			progress(float64(time.Since(start)) / float64(d))
		case <-ctx.Done():
			return fmt.Errorf("sleep interrupted after %s: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		}
	}
}

// Reconcile reports an interrupted sleep done: the wait is over either way.
func (s *Sleep) Reconcile(context.Context, action.Action) (bool, error) { return true, nil }
