package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// The relations poll: an account-level task that reads a Unipile account's
// health and its new relations (docs/acceptances.md).
const (
	TypePoll   = "account:poll"
	QueuePolls = "polls"
)

// PollConfig says how often an account's relations are polled, and how
// its health pauses go. The zero value of each field is its default.
type PollConfig struct {
	// Pending is the interval between polls while the account has sent
	// invitations not accepted yet (default 30 minutes); Idle without any
	// (default 6 hours). The account's poll pacing (the 'poll' action:
	// by default 48 a day, 10 to 20 minutes apart) holds either way.
	Pending, Idle time.Duration
	// Unhealthy is the interval between status checks of an account the
	// provider reports not running (default 5 minutes): the check is not
	// a LinkedIn call, and the account resumes at the first that says OK.
	Unhealthy time.Duration
	// HealthPause is how long an account the provider reports not running
	// is paused each time it is seen so (default 1 hour; it resumes
	// earlier when reported running, and is checked again before any call
	// after it ends).
	HealthPause time.Duration
	// HealthMaxAge is how old this worker's last status check of an
	// account may be before a LinkedIn call on it checks again (default
	// 1 minute); negative checks before every call.
	HealthMaxAge time.Duration
	// PageSize is the relations read per page (default 100); MaxPages
	// bounds the pages of one poll (default 20).
	PageSize, MaxPages int
}

func (c PollConfig) withDefaults() PollConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Pending, 30*time.Minute)
	def(&c.Idle, 6*time.Hour)
	def(&c.Unhealthy, 5*time.Minute)
	def(&c.HealthPause, time.Hour)
	def(&c.HealthMaxAge, time.Minute)
	if c.PageSize <= 0 {
		c.PageSize = 100
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 20
	}
	return c
}

// PollPayload is the body of a poll task: an account id only.
type PollPayload struct {
	AccountID int64 `json:"account_id"`
}

// NewPollTask builds the poll task of an account for the poll due at due,
// in the polls queue, under the id "poll:<account>:<due unix>" so that the
// same poll is enqueued once.
func NewPollTask(accountID int64, due time.Time) (*asynq.Task, []asynq.Option) {
	b, _ := json.Marshal(PollPayload{AccountID: accountID})
	return asynq.NewTask(TypePoll, b), []asynq.Option{
		asynq.TaskID("poll:" + strconv.FormatInt(accountID, 10) + ":" + strconv.FormatInt(due.Unix(), 10)),
		asynq.Queue(QueuePolls),
		asynq.MaxRetry(3),
	}
}

// PollMetrics is optionally implemented by a Metrics: acceptances
// recorded, and polls made.
type PollMetrics interface {
	// Accepted counts acceptances recorded, by way (poll, webhook).
	Accepted(provider, account, via string, n int)
	// Poll counts one poll with its outcome (polled, refused, error,
	// unhealthy, deferred).
	Poll(provider, account, outcome string)
}

// HandlePoll runs one poll of an account: its status first (no LinkedIn
// call; a report that it is not running pauses it, one that it runs again
// resumes it), then, if it may make a call now, a paced read of its
// relations, newest first, down to the newest one seen before, recording
// the acceptances among them. It sets when the next poll is due.
func (w *Worker) HandlePoll(ctx context.Context, t *asynq.Task) error {
	var p PollPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.AccountID <= 0 {
		return fmt.Errorf("bad %s payload %q: %v: %w", t.Type(), t.Payload(), err, asynq.SkipRetry)
	}
	cfg := w.cfg.Polls.withDefaults()
	log := w.log.With("task", t.Type(), "account_id", p.AccountID)
	a, err := w.cfg.Store.Account(ctx, p.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	now := w.cfg.Now()
	client, err := w.cfg.Clients(a.Provider, a.CredentialsRef)
	if err != nil {
		// This process cannot serve it: another worker will, once the
		// lease of the poll ends. The account is left alone.
		log.WarnContext(ctx, "no client for the account: its poll is left to other workers", "error", err.Error())
		return nil
	}
	if checker, ok := client.(provider.AccountChecker); ok {
		running, err := w.checkHealth(ctx, log, a, checker, now)
		if err == nil && !running {
			w.pollMetric(a, "unhealthy")
			return w.cfg.Store.SetNextPoll(ctx, a.ID, now.Add(cfg.Unhealthy), "")
		}
		if a, err = w.cfg.Store.Account(ctx, p.AccountID); err != nil {
			return err
		}
	}
	lister, ok := client.(provider.RelationLister)
	if !ok {
		return w.cfg.Store.SetNextPoll(ctx, a.ID, now.Add(cfg.Idle), "")
	}
	at, err := w.cfg.Store.BeginPoll(ctx, a.ID, now, w.cfg.Lease)
	var nn *store.NotNowError
	if errors.As(err, &nn) {
		w.pollMetric(a, "deferred")
		next := nn.Until
		if a.Status == store.AccountPaused && strings0(a.PauseReason, store.HealthPausePrefix) {
			next = minTime(next, now.Add(cfg.Unhealthy)) // keep checking its health
		}
		return w.cfg.Store.SetNextPoll(ctx, a.ID, next, "")
	} else if err != nil {
		return err
	}
	f := w.pollRelations(ctx, log, at, lister, cfg)
	f.Now = w.cfg.Now()
	interval := cfg.Idle
	if at.State.Awaiting > 0 {
		interval = cfg.Pending
	}
	f.NextPollAt = f.Now.Add(interval)
	// The poll's answer is kept and recorded once Postgres is back, like
	// any call's (its ledger row is not left to be closed unanswered).
	if err := w.recordRetry(context.WithoutCancel(ctx), log, "poll's answer", f.SendID, func(ctx context.Context) error {
		return w.cfg.Store.FinishPoll(ctx, f)
	}); err != nil {
		return err
	}
	w.pollMetric(a, string(f.Outcome))
	log.InfoContext(ctx, "relations polled", "outcome", f.Outcome, "error_type", f.ErrorType, "next", f.NextPollAt)
	return nil
}

// pollRelations reads the relations newest first, page by page, until one
// at or before the newest seen, or older than the oldest invitation still
// awaiting an answer, and records the acceptances among them. It returns
// the poll's answer.
func (w *Worker) pollRelations(ctx context.Context, log *slog.Logger, at *store.PollAttempt, l provider.RelationLister, cfg PollConfig) store.PollFinish {
	a, st := at.Account, at.State
	f := store.PollFinish{SendID: at.SendID, AccountID: a.ID, Outcome: store.OutcomePolled}
	// Relations older than the oldest invitation awaiting an answer
	// cannot be its acceptance (a day of margin for clocks); with none
	// awaiting, the first page only moves the newest seen ahead.
	var floor time.Time
	maxPages := cfg.MaxPages
	if st.Awaiting == 0 {
		maxPages = 1
	} else {
		floor = st.OldestAwaiting.Add(-24 * time.Hour)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout*time.Duration(cfg.MaxPages))
	defer cancel()
	var seen []store.Acceptance
	cursor := ""
	pages := 0
read:
	for ; pages < maxPages; pages++ {
		pg, err := l.ListRelations(cctx, a.ProviderAccountID, cursor, cfg.PageSize)
		if err != nil {
			var pe *provider.Error
			f.Outcome, f.Detail = store.OutcomeError, err.Error()
			if errors.As(err, &pe) {
				f.ErrorType, f.HTTPStatus = pe.Type, pe.HTTPStatus
				if pe.HTTPStatus >= 400 && pe.HTTPStatus < 500 {
					f.Outcome = store.OutcomeRefused
				}
			}
			// What was read is recorded; the newest seen does not move,
			// so the next poll reads it all again.
			f.RelationAt, f.RelationMember = time.Time{}, ""
			w.acceptances(ctx, log, a, seen, store.AcceptedByPoll)
			return f
		}
		for _, r := range pg.Relations {
			if !st.RelationAt.IsZero() && !r.CreatedAt.IsZero() &&
				(r.CreatedAt.Before(st.RelationAt) || r.CreatedAt.Equal(st.RelationAt) && r.ProviderID == st.RelationMember) {
				break read
			}
			if !floor.IsZero() && !r.CreatedAt.IsZero() && r.CreatedAt.Before(floor) {
				break read
			}
			if f.RelationAt.IsZero() && !r.CreatedAt.IsZero() {
				f.RelationAt, f.RelationMember = r.CreatedAt, r.ProviderID
			}
			seen = append(seen, store.Acceptance{ProviderID: r.ProviderID, PublicID: r.PublicID, At: r.CreatedAt})
		}
		if pg.Cursor == "" {
			break
		}
		cursor = pg.Cursor
	}
	f.Detail = fmt.Sprintf("%d relations read in %d pages", len(seen), min(pages+1, maxPages))
	if err := w.acceptances(ctx, log, a, seen, store.AcceptedByPoll); err != nil {
		// Not recorded: the newest seen stays, so the next poll reads
		// these relations again.
		f.RelationAt, f.RelationMember = time.Time{}, ""
		f.Detail += "; recording them failed: " + err.Error()
	}
	return f
}

// acceptances records relations seen as acceptances and counts them.
func (w *Worker) acceptances(ctx context.Context, log *slog.Logger, a *store.Account, seen []store.Acceptance, via store.AcceptedVia) error {
	if len(seen) == 0 {
		return nil
	}
	got, err := w.cfg.Store.RecordAcceptances(context.WithoutCancel(ctx), a.Provider, a.ProviderAccountID, seen, via, w.cfg.Now())
	if err != nil {
		log.ErrorContext(ctx, "recording acceptances failed; the next poll reads them again", "error", err)
		return err
	}
	if m, ok := w.cfg.Metrics.(PollMetrics); ok && len(got) > 0 {
		m.Accepted(string(a.Provider), a.Name, string(via), len(got))
	}
	if len(got) > 0 {
		log.InfoContext(ctx, "invitations accepted", "count", len(got), "via", via)
	}
	return nil
}

func (w *Worker) pollMetric(a *store.Account, outcome string) {
	if m, ok := w.cfg.Metrics.(PollMetrics); ok {
		m.Poll(string(a.Provider), a.Name, outcome)
	}
}

func strings0(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
