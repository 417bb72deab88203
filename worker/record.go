package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// record writes an answer the provider gave. The answer is never dropped:
// while Postgres is away (a restart, a failover, a full pool) it is kept
// in hand and recording is retried with backoff for as long as the process
// lives, logged and counted (RecordMetrics). Store.Finish is idempotent, so
// a retry after a commit whose acknowledgement was lost changes nothing.
// On shutdown the server waits for it within its grace (see Server). It
// returns nil, ErrStale, or an error no retry can mend (a refused value).
func (w *Worker) record(ctx context.Context, log *slog.Logger, f store.Finish) error {
	m, _ := w.cfg.Metrics.(RecordMetrics)
	held := false
	defer func() {
		if held {
			w.held.Add(-1)
			if m != nil {
				m.AnswersHeld(-1)
			}
		}
	}()
	for try := 0; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := w.cfg.Store.Finish(tctx, f)
		cancel()
		if err == nil {
			if held {
				log.InfoContext(ctx, "answer recorded after retries", "send_id", f.SendID, "attempts", try+1,
					"outcome", f.Outcome, "invitation_id", f.InvitationID)
			}
			return nil
		}
		if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) ||
			errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !held {
			held = true
			w.held.Add(1)
			if m != nil {
				m.AnswersHeld(1)
			}
		}
		if m != nil {
			m.RecordRetry()
		}
		wait := Backoff(try, 100*time.Millisecond, w.cfg.RecordBackoffMax)
		log.WarnContext(ctx, "recording the answer failed; keeping it and retrying", "send_id", f.SendID,
			"outcome", f.Outcome, "invitation_id", f.InvitationID, "attempt", try+1, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// AnswersHeld returns how many answers the worker holds because recording
// them failed so far.
func (w *Worker) AnswersHeld() int { return int(w.held.Load()) }
