package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/store"
)

// TypeInviteBatch is a task that sends the invitations of several due
// targets, of one account or of several whose slots fall together
// (docs/throughput.md): one reservation and one record for the batch, a
// ledger row per target written before its call.
const TypeInviteBatch = "invite:batch"

// BatchPayload is the body of a batch task: its targets with their task
// generations, ids only, and the account of those that name none (a batch
// of one account names it once, here).
type BatchPayload struct {
	AccountID int64         `json:"account_id,omitempty"`
	Targets   []BatchTarget `json:"targets"`
}

// BatchTarget is one target of a batch task; AccountID is the account it
// was planned for, 0 for BatchPayload.AccountID.
type BatchTarget struct {
	Payload
	AccountID int64 `json:"account_id,omitempty"`
}

// NewBatchTask builds the batch task of targets (at least one), in the
// invites queue. A batch of one account names it once, under the id
// "invites:ACCOUNT:FIRST" (FIRST the first target's id and generation); a
// batch of several accounts has the id "invites:any:FIRST".
func NewBatchTask(targets []BatchTarget) (*asynq.Task, []asynq.Option) {
	p := BatchPayload{AccountID: targets[0].AccountID, Targets: slices.Clone(targets)}
	for _, bt := range targets {
		if bt.AccountID != p.AccountID {
			p.AccountID = 0
		}
	}
	if p.AccountID != 0 {
		for i := range p.Targets {
			p.Targets[i].AccountID = 0
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("marshal payload: %v", err)) // cannot happen for ints
	}
	owner := "any"
	if p.AccountID != 0 {
		owner = strconv.FormatInt(p.AccountID, 10)
	}
	id := "invites:" + owner + ":" + strconv.FormatInt(targets[0].TargetID, 10)
	if g := targets[0].Gen; g > 0 {
		id += ":" + strconv.Itoa(g)
	}
	return asynq.NewTask(TypeInviteBatch, b), []asynq.Option{asynq.TaskID(id), asynq.Queue(QueueInvites), asynq.MaxRetry(maxRetry)}
}

// AccountBatch is the targets of one account as a batch task's targets.
func AccountBatch(accountID int64, targets ...Payload) []BatchTarget {
	out := make([]BatchTarget, len(targets))
	for i, p := range targets {
		out[i] = BatchTarget{Payload: p, AccountID: accountID}
	}
	return out
}

func parseBatchPayload(t *asynq.Task) (BatchPayload, error) {
	var p BatchPayload
	err := json.Unmarshal(t.Payload(), &p)
	if err == nil && (p.AccountID < 0 || len(p.Targets) == 0) {
		err = errors.New("no target")
	}
	for _, tp := range p.Targets {
		if err == nil && (tp.TargetID <= 0 || tp.Gen < 0 || tp.AccountID < 0 || tp.AccountID == 0 && p.AccountID == 0) {
			err = errors.New("bad target")
		}
	}
	if err != nil {
		return p, fmt.Errorf("bad %s payload %q: %v: %w", t.Type(), t.Payload(), err, asynq.SkipRetry)
	}
	return p, nil
}

// HandleInviteBatch sends a batch's invitations: it reserves what it can
// of the batch in one transaction (store.BeginBatch), makes the calls a
// few at a time, records every answer (store.FinishBatch) before the task
// is acknowledged, reserves again together the targets whose account's
// windows free a place within ShortWait, once they have, and runs each
// other target the batch left through the single-target path, here. A
// target that must wait longer leaves the batch: it is handed back to the
// scheduler, since the batch's task is not its own to snooze. A worker that dies mid-batch leaves ledger rows in flight
// under its id, recovered like any other (docs/recovery.md).
func (w *Worker) HandleInviteBatch(ctx context.Context, t *asynq.Task) error {
	p, err := parseBatchPayload(t)
	if err != nil {
		return err
	}
	log := w.log.With("task", t.Type(), "targets", len(p.Targets))
	if p.AccountID != 0 {
		log = log.With("account_id", p.AccountID)
	}
	req := store.BatchRequest{AccountID: p.AccountID, Action: store.ActionInvite, Now: w.cfg.Now(),
		Lease: w.cfg.Lease, RequestTimeout: w.cfg.RequestTimeout, HoldFor: w.cfg.HoldFor, Serves: w.serves, WorkerID: w.id.Load()}
	for _, tp := range p.Targets {
		req.Targets = append(req.Targets, store.BatchTarget{TargetID: tp.TargetID, TaskGen: tp.Gen, AccountID: tp.AccountID})
	}
	var left []store.BatchLeft
	for try := 0; ; try++ {
		res, err := w.cfg.Store.BeginBatch(ctx, req)
		if err != nil {
			// Postgres trouble: asynq retries the batch; the targets done
			// by then are stale for it.
			return err
		}
		fs := w.batchCalls(ctx, res.Attempts, req.Now)
		w.recordBatch(context.WithoutCancel(ctx), log, p.AccountID == 0, res.Attempts, fs)
		// Targets whose account's windows free a place within ShortWait
		// (its tasks run a little late or early) are reserved again
		// together once it has, up to three times; the others take the
		// single-target path.
		soon, until := w.roomSoon(res.Left, req.Now, &left)
		if len(soon) == 0 || try >= 3 {
			left = append(left, soon...)
			break
		}
		log.DebugContext(ctx, "batch: waiting for the accounts' windows to free a place, then reserving these targets again",
			"left", len(soon), "until", until)
		if err := w.waitUntil(ctx, until); err != nil {
			left = append(left, soon...)
			break
		}
		req.Now, req.Targets = w.cfg.Now(), req.Targets[:0]
		for _, l := range soon {
			req.Targets = append(req.Targets, l.BatchTarget)
		}
	}
	return w.batchLeft(ctx, log, left)
}

// roomSoon splits what a batch left: the targets whose account's windows
// free a place within ShortWait of now, returned with the latest such
// time, and the others, appended to rest.
func (w *Worker) roomSoon(left []store.BatchLeft, now time.Time, rest *[]store.BatchLeft) (soon []store.BatchLeft, until time.Time) {
	for _, l := range left {
		var nr *store.NoRoomError
		if errors.As(l.Err, &nr) && nr.Until.Sub(now) <= w.cfg.ShortWait {
			soon = append(soon, l)
			if nr.Until.After(until) {
				until = nr.Until
			}
			continue
		}
		*rest = append(*rest, l)
	}
	return soon, until
}

// waitUntil waits until the worker's clock reads at least until; ctx ending
// first is its error.
func (w *Worker) waitUntil(ctx context.Context, until time.Time) error {
	wait := until.Sub(w.cfg.Now())
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// batchDone is one reserved target's answer, ready to record.
type batchDone struct {
	dec Decision
	f   store.Finish
}

// batchCalls makes the calls of the reserved attempts, BatchCallsAtOnce at
// a time, and turns each answer into its record. An answer that would
// retry the target's task later hands the target back to the scheduler
// instead, due then.
func (w *Worker) batchCalls(ctx context.Context, ats []*store.Attempt, now time.Time) []batchDone {
	out := make([]batchDone, len(ats))
	sem := make(chan struct{}, store.BatchCallsAtOnce)
	var wg sync.WaitGroup
	for i, at := range ats {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dec := w.call(ctx, at, store.ActionInvite, now)
			f, retry, _ := dec.finish(at, w.cfg.HoldFor)
			f.Action = store.ActionInvite
			if retry {
				f.TargetStatus = store.TargetPending
			}
			out[i] = batchDone{dec: dec, f: f}
		}()
	}
	wg.Wait()
	return out
}

// recordBatch records the batch's answers, in one statement for those that
// change only their ledger row and target, retrying while Postgres is away
// as record does; an answer that failed alone is retried alone (record).
// A mixed batch (of several accounts) logs each answer's account.
func (w *Worker) recordBatch(ctx context.Context, log *slog.Logger, mixed bool, ats []*store.Attempt, done []batchDone) {
	if len(done) == 0 {
		return
	}
	fs := make([]store.Finish, len(done))
	for i, d := range done {
		fs[i] = d.f
	}
	m, _ := w.cfg.Metrics.(RecordMetrics)
	var errs []error
	for try := 0; ; try++ {
		var err error
		errs, err = w.cfg.Store.FinishBatch(ctx, fs)
		if err == nil {
			break
		}
		if try == 0 {
			w.held.Add(int64(len(fs)))
			if m != nil {
				m.AnswersHeld(len(fs))
			}
			defer func() {
				w.held.Add(-int64(len(fs)))
				if m != nil {
					m.AnswersHeld(-len(fs))
				}
			}()
		}
		if m != nil {
			m.RecordRetry()
		}
		wait := Backoff(try, 100*time.Millisecond, w.cfg.RecordBackoffMax)
		log.WarnContext(ctx, "recording the batch's answers failed; keeping them and retrying", "answers", len(fs),
			"attempt", try+1, "retry_in", wait, "error", err)
		time.Sleep(wait)
	}
	for i, at := range ats {
		tlog := log.With("target_id", at.Target.ID, "campaign_id", at.Target.CampaignID)
		if mixed {
			tlog = tlog.With("account_id", at.Account.ID)
		}
		err := errs[i]
		if err != nil && !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrInvalid) &&
			!errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			err = w.record(ctx, tlog, fs[i])
		}
		if errors.Is(err, store.ErrStale) {
			tlog.WarnContext(ctx, "target changed while sending; answer recorded in the ledger only", "outcome", fs[i].Outcome)
			continue
		}
		if err != nil {
			tlog.ErrorContext(ctx, "recording the answer", "outcome", fs[i].Outcome, "error", err)
			continue
		}
		w.afterRecord(ctx, tlog, at, store.ActionInvite, done[i].dec, fs[i])
	}
}

// batchLeft runs the targets the batch did not reserve: nothing for a
// stale one or one handed back already, the single-target path for the
// others (Begin closes and settles earlier attempts, waits a short while
// for a slot, hands the target back when its account is not served here),
// a few at a time. A target whose wait is longer than a handler's is
// handed back to the scheduler. An error (Postgres trouble) makes asynq
// retry the batch: the targets done by then are stale for it.
func (w *Worker) batchLeft(ctx context.Context, log *slog.Logger, left []store.BatchLeft) error {
	sem := make(chan struct{}, store.BatchCallsAtOnce)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, l := range left {
		var nn *store.NotNowError
		if errors.Is(l.Err, store.ErrStale) || errors.As(l.Err, &nn) && nn.Released {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			b, _ := json.Marshal(Payload{TargetID: l.TargetID, Gen: l.TaskGen})
			err := w.handle(ctx, asynq.NewTask(TypeInvite, b), store.ActionInvite)
			var sn *snooze
			if errors.As(err, &sn) {
				err = w.cfg.Store.HandBackQueued(context.WithoutCancel(ctx), l.TargetID, w.cfg.Now().Add(sn.after), sn.reason)
			}
			if err != nil {
				log.WarnContext(ctx, "a target the batch left", "target_id", l.TargetID, "error", err)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
