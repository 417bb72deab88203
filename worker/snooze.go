package worker

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// snooze is returned by a handler to run its task again after a delay
// without spending a retry: IsFailure says it is no failure, so asynq does
// not count it, and RetryDelay uses its delay. (asynq checks the retry
// count before it asks IsFailure, which is why MaxRetry is large and
// transient failures are counted in Postgres instead.)
type snooze struct {
	after  time.Duration
	reason string
}

func (s *snooze) Error() string { return fmt.Sprintf("snoozed for %s: %s", s.after, s.reason) }

// Snooze returns an error that makes asynq run the task again after d,
// without counting a retry.
func Snooze(d time.Duration, reason string) error {
	if d < 0 {
		d = 0
	}
	return &snooze{after: d, reason: reason}
}

// IsFailure is the asynq.Config.IsFailure of outreach workers: snoozes are
// not failures.
func IsFailure(err error) bool {
	var s *snooze
	return !errors.As(err, &s)
}

// RetryDelay is the asynq.Config.RetryDelayFunc of outreach workers: a
// snooze's own delay, else exponential backoff with jitter from 1 s to 1 min
// (for failures outside the outcome policy, such as Postgres being down).
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var s *snooze
	if errors.As(err, &s) {
		return s.after
	}
	return Backoff(n, time.Second, time.Minute)
}

// Backoff returns base·2^n capped at max, with "full jitter" between half
// and all of it.
func Backoff(n int, base, max time.Duration) time.Duration {
	return backoff(n, base, max, rand.Int64N)
}

// backoff is Backoff with the random source rnd (uniform in [0, n)).
func backoff(n int, base, max time.Duration, rnd func(n int64) int64) time.Duration {
	d := float64(base) * math.Pow(2, float64(min(n, 40)))
	if d > float64(max) || d <= 0 {
		d = float64(max)
	}
	full := time.Duration(d)
	half := full / 2
	if full-half <= 0 {
		return full
	}
	return half + time.Duration(rnd(int64(full-half)))
}
