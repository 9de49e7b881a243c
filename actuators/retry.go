package actuators

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RetryableError marks a failure that may pass if the same call is made
// again: a store that is briefly locked, an API answering 503 or 429. After
// is the delay the peer asked for (Retry-After), zero when it said nothing.
type RetryableError struct {
	Err   error
	After time.Duration
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as retryable after the given delay (0: the backoff's).
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, After: after}
}

// Backoff bounds Retry. Zero values get the defaults noted.
type Backoff struct {
	// Initial is the first delay (default 100ms); it doubles up to Max
	// (default 5s).
	Initial, Max time.Duration
	// Attempts bounds the calls (default 5; negative: until ctx ends).
	Attempts int
}

// Retry calls op until it succeeds, fails with an error that is not
// retryable, runs out of attempts or ctx ends. Integrations classify their
// errors with Retryable; this is the one place that waits and tries again,
// honouring a peer's Retry-After (capped by Max, so a peer cannot stall an
// action plan for an hour).
func Retry(ctx context.Context, b Backoff, op func(context.Context) error) error {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Second
	}
	if b.Attempts == 0 {
		b.Attempts = 5
	}
	delay := b.Initial
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		var re *RetryableError
		if err == nil || !errors.As(err, &re) {
			return err
		}
		if b.Attempts > 0 && attempt >= b.Attempts {
			return fmt.Errorf("after %d attempts: %w", attempt, re.Err)
		}
		wait := delay
		if re.After > 0 {
			wait = min(re.After, b.Max)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up retrying: %w)", re.Err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, b.Max)
	}
}
