// Package scheduler turns due targets in Postgres into asynq tasks: it
// normalises and resolves identifiers from the cache, plans each account's
// send slots from its limits, gap and working hours, and enqueues tasks for
// the near-term horizon only, under deterministic ids. It wakes on Postgres
// notifications and polls as a fallback, and reconciles: a target queued
// whose task Redis lost is enqueued again.
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/registry"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// Config configures a Scheduler. Store and Redis are required.
type Config struct {
	Store *store.Store
	// Redis is where tasks go; asynq's client is built on it.
	Redis redis.UniversalClient
	// Rules are the providers' rules (identifiers, note length); nil means
	// registry.Default().
	Rules provider.Registry
	// Normalize normalises identifiers; nil means by Rules.
	Normalize store.NormalizeFunc
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Horizon is how far ahead tasks are enqueued (default 1 min). Redis
	// holds only the slots inside it.
	Horizon time.Duration
	// PollInterval is the fallback when no notification comes: the next
	// tick starts at most PollInterval after the last one ended (default
	// 2 s).
	PollInterval time.Duration
	// ReconcileInterval is how often queued targets are checked for lost
	// tasks (default 30 s); ReconcileGrace how old a queued mark must be
	// before it is checked (default 1 min).
	ReconcileInterval, ReconcileGrace time.Duration
	// MaxQueuedPerAccount caps the tasks in Redis per account and action
	// (default 200).
	MaxQueuedPerAccount int
	// PrepareBatch is how many new targets are normalised per query
	// (default 2000).
	PrepareBatch int
	// Lease and RequestTimeout must match the workers' (defaults as
	// worker.Config); they bound orphaned ledger rows.
	Lease, RequestTimeout time.Duration
	// DeadAfter is how old a worker's heartbeat must be (by the database's
	// clock) for it to be dead (default 8 s: four missed heartbeats of 2
	// s); LivenessInterval how often dead workers are looked for (default
	// 1 s). A dead worker's in-flight targets are queued again at once.
	DeadAfter, LivenessInterval time.Duration
	// Metrics receives tick statistics; nil means none.
	Metrics Metrics
	// WithdrawInterval is how often stale invitations are looked for
	// (default 30 s; see withdraw.go).
	WithdrawInterval time.Duration
	// BatchMax, above 1, lets invitations whose slots fall within
	// BatchSpread of each other share batch tasks of up to BatchMax
	// targets, of one account or of several (see batchTasks,
	// docs/throughput.md); 0 or 1, one task per target. BatchSpread
	// defaults to 100 ms: a target waits that much at most for the others
	// of its batch.
	BatchMax    int
	BatchSpread time.Duration
}

// Metrics receives the scheduler's statistics.
type Metrics interface {
	// Tick reports one planning tick.
	Tick(stats TickStats)
}

// TickStats describes one planning tick.
type TickStats struct {
	Duration  time.Duration
	Accounts  int
	Prepared  store.PrepareStats
	Enqueued  int
	Conflicts int
	Failed    int // targets failed while claiming (message too long, template)
	// Lag is how late the most overdue enqueued target was.
	Lag time.Duration
	// Stages is where the tick's time went, stage by stage in order.
	Stages []Stage
	// prepareFull is whether PrepareTargets took a full batch (more may
	// be waiting).
	prepareFull bool
}

// Stage is how long one stage of a tick took.
type Stage struct {
	Name string
	Took time.Duration
}

// stageClock marks the end of each stage of a tick.
type stageClock struct {
	st   *TickStats
	now  func() time.Time
	last time.Time
}

// mark records the stage that ends now, adding to its earlier time when
// it ran before in the tick.
func (c *stageClock) mark(name string) {
	t := c.now()
	d := t.Sub(c.last)
	c.last = t
	for i := range c.st.Stages {
		if c.st.Stages[i].Name == name {
			c.st.Stages[i].Took += d
			return
		}
	}
	c.st.Stages = append(c.st.Stages, Stage{name, d})
}

// stagesAttr is the tick's stages as a log attribute, the slowest first
// (at most five), e.g. "claim=1.2s enqueue=30ms"; formatted only when the
// record is logged (the debug line is off in production).
type stagesAttr []Stage

func (stages stagesAttr) LogValue() slog.Value { return slog.StringValue(stages.String()) }

func (stages stagesAttr) String() string {
	sorted := slices.Clone(stages)
	slices.SortStableFunc(sorted, func(a, b Stage) int { return cmp.Compare(b.Took, a.Took) })
	var b strings.Builder
	for i, s := range sorted[:min(len(sorted), 5)] {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", s.Name, s.Took.Round(time.Millisecond))
	}
	return b.String()
}

// addPrepared returns the sum of two PrepareStats.
func addPrepared(a, b store.PrepareStats) store.PrepareStats {
	return store.PrepareStats{Seen: a.Seen + b.Seen, Failed: a.Failed + b.Failed, Skipped: a.Skipped + b.Skipped,
		Resolved: a.Resolved + b.Resolved, CacheHits: a.CacheHits + b.CacheHits, NeedLookup: a.NeedLookup + b.NeedLookup,
		Pooled: a.Pooled + b.Pooled}
}

// Scheduler plans and enqueues work. Several may run against the same
// database and Redis.
type Scheduler struct {
	cfg Config
	log *slog.Logger
	// client enqueues tasks. Reconcile replaces it: asynq's client
	// registers a queue in Redis (the set the Inspector, the dashboard
	// and the queue metrics list) only on its first enqueue to it, and
	// after Redis lost its data would never register it again.
	client atomic.Pointer[asynq.Client]
	tmpl   templates
	wake   chan struct{}
	mu     sync.Mutex
	warnMu sync.Mutex
	warned map[warnKey]bool      // accounts told about their pacing once
	waits  map[waitKey]knownWait // account waits last written (under mu)
	// withdrawnAt is when stale invitations were last planned (withdraw.go).
	withdrawnAt time.Time
	// rules keeps the accounts' effective limits and gaps between ticks
	// while the scheduler listens for notifications (see listen).
	rules *store.RulesCache
}

// rulesTTL is how long the scheduler trusts the limits and gaps it read of
// an account when no notification said they changed: what changes with
// time alone (a warm-up ramp's next stage) is seen within it.
const rulesTTL = 30 * time.Second

// epochKey is a Redis key the scheduler keeps; its absence means Redis lost
// its data (a flush, a failover to an empty replica) and every queued
// target must be checked at once.
const epochKey = "outreach:epoch"

// New returns a Scheduler.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil || cfg.Redis == nil {
		return nil, errors.New("scheduler: Store and Redis are required")
	}
	if cfg.Rules == nil {
		cfg.Rules = registry.Default()
	}
	if cfg.Normalize == nil {
		cfg.Normalize = normalizer(cfg.Rules)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 30 * time.Second
	}
	if cfg.ReconcileGrace <= 0 {
		cfg.ReconcileGrace = time.Minute
	}
	if cfg.MaxQueuedPerAccount <= 0 {
		cfg.MaxQueuedPerAccount = 200
	}
	if cfg.PrepareBatch <= 0 {
		cfg.PrepareBatch = 2000
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2*cfg.RequestTimeout + 5*time.Second
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 8 * time.Second
	}
	if cfg.LivenessInterval <= 0 {
		cfg.LivenessInterval = time.Second
	}
	if cfg.BatchSpread <= 0 {
		cfg.BatchSpread = 100 * time.Millisecond
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), rules: store.NewRulesCache(rulesTTL)}
	s.client.Store(asynq.NewClientFromRedisClient(cfg.Redis))
	return s, nil
}

// Wake makes the scheduler tick at once.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run ticks until ctx ends: on each notification from Postgres, else
// PollInterval after the last tick ended, and at once again while a tick
// found more work than it could take. It reconciles every
// ReconcileInterval and recovers dead workers every LivenessInterval.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.listen(ctx)
	}()
	defer wg.Wait()
	reconcile := time.NewTicker(s.cfg.ReconcileInterval)
	defer reconcile.Stop()
	liveness := time.NewTicker(s.cfg.LivenessInterval)
	defer liveness.Stop()
	s.log.InfoContext(ctx, "scheduler started", "horizon", s.cfg.Horizon, "poll_interval", s.cfg.PollInterval)
	if err := s.Reconcile(ctx, s.cfg.ReconcileGrace); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "reconcile", "error", err)
	}
	for {
		more, err := s.step(ctx)
		if ctx.Err() != nil {
			s.log.InfoContext(context.WithoutCancel(ctx), "scheduler stopped")
			return nil
		}
		if err != nil {
			s.log.ErrorContext(ctx, "tick", "error", err)
			more = false
		}
		if more {
			continue
		}
		s.idle(ctx, reconcile.C, liveness.C)
	}
}

// idle waits for the next tick: a notification (Wake), or PollInterval
// after the end of the last tick. (A ticker started ticks back to back
// once a tick took longer than PollInterval: at 1,000 accounts with a 250
// ms poll, a tick every 400 ms, each reading every account.) Meanwhile it
// reconciles, recovers dead workers, and checks Redis for a loss, each on
// its own interval, without ticking for them.
func (s *Scheduler) idle(ctx context.Context, reconcile, liveness <-chan time.Time) {
	poll := time.NewTimer(s.cfg.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			return
		case <-poll.C:
			return
		case <-reconcile:
			if err := s.Reconcile(ctx, s.cfg.ReconcileGrace); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "reconcile", "error", err)
			}
			s.foldCounts(ctx)
		case <-liveness:
			if err := s.RecoverDeadWorkers(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "recovering dead workers", "error", err)
			}
			if err := s.checkRedis(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "checking redis", "error", err)
			}
		}
	}
}

// checkRedis checks Redis for a loss, and after one enqueues every queued
// target again.
func (s *Scheduler) checkRedis(ctx context.Context) error {
	lost, err := s.redisLost(ctx)
	if err != nil {
		return fmt.Errorf("check redis: %w", err)
	}
	if lost {
		s.log.InfoContext(ctx, "redis holds no outreach marker (first start, or it lost its data): re-enqueueing every queued target")
		if err := s.Reconcile(ctx, 0); err != nil {
			return err
		}
	}
	return nil
}

// step checks Redis for a loss, then ticks.
func (s *Scheduler) step(ctx context.Context) (bool, error) {
	if err := s.checkRedis(ctx); err != nil {
		return false, err
	}
	st, err := s.Tick(ctx)
	if err != nil {
		return false, err
	}
	return st.prepareFull, nil
}

// redisLost reports whether Redis lost the epoch key, and sets it.
func (s *Scheduler) redisLost(ctx context.Context) (bool, error) {
	set, err := s.cfg.Redis.SetNX(ctx, epochKey, s.cfg.Now().UTC().Format(time.RFC3339), 0).Result()
	if err != nil {
		return false, err
	}
	// The first scheduler ever to run also "finds" it missing; a reconcile
	// then is harmless.
	return set, nil
}

// listen wakes the scheduler on each notification. While it listens, the
// scheduler keeps the accounts' limits and gaps between ticks (s.rules): a
// notification of anything but new targets empties them first, since
// the triggers on accounts, account_limits, account_pacing,
// provider_limits, provider_pacing and account_warmups announce the
// changes they depend on.
func (s *Scheduler) listen(ctx context.Context) {
	defer s.rules.Listening(false)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := s.cfg.Store.Listen(ctx, func(payload string) {
			switch payload {
			case store.ListenStarted:
				s.rules.Listening(true)
			case "targets", "resolved":
			default:
				s.rules.Invalidate()
			}
			s.Wake()
		})
		s.rules.Listening(false)
		if ctx.Err() != nil {
			return
		}
		s.log.WarnContext(ctx, "listening for notifications; polling meanwhile", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(worker.Backoff(min(attempt, 5), time.Second, 30*time.Second)):
		}
	}
}

// Tick runs one planning pass: resume expired pauses, prepare new targets,
// plan and enqueue each account's slots inside the horizon.
func (s *Scheduler) Tick(ctx context.Context) (TickStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st TickStats
	now := s.cfg.Now()
	clk := &stageClock{st: &st, now: s.cfg.Now, last: now}
	if n, err := s.cfg.Store.ResumeExpiredPauses(ctx, now); err != nil {
		return st, err
	} else if n > 0 {
		s.log.InfoContext(ctx, "accounts resumed after their pause", "count", n)
	}
	if err := s.releaseStoppedSenders(ctx, now); err != nil {
		return st, err
	}
	clk.mark("pauses")
	if err := s.withdrawals(ctx, now); err != nil {
		return st, err
	}
	clk.mark("withdrawals")
	if err := s.planPolls(ctx, now); err != nil {
		return st, err
	}
	clk.mark("polls")
	end := now.Add(s.cfg.Horizon)
	// An account's new targets count as due invitations: the claim
	// normalises those its slots take now (store.ClaimAndPrepare), so that
	// they go from new to queued in one row update. PrepareTargets then
	// normalises the others (pools, accounts without a slot now), and the
	// accounts are planned again when that made work due now: lookups
	// (also those the claim found needed) and pool targets to give to a
	// sender. (The others it normalised belong to accounts whose slots
	// the first pass used.)
	work, err := s.cfg.Store.AccountsWithWork(ctx, now, end, s.rules)
	if err != nil {
		return st, err
	}
	clk.mark("accounts")
	st.Accounts = len(work)
	s.plan(ctx, work, now, end, &st, clk)
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	inline := st.Prepared
	prep, err := s.cfg.Store.PrepareTargets(ctx, s.cfg.PrepareBatch, s.cfg.Normalize)
	if err != nil {
		return st, err
	}
	clk.mark("prepare")
	st.prepareFull = prep.Seen == s.cfg.PrepareBatch
	st.Prepared = addPrepared(inline, prep)
	if prep.NeedLookup > 0 || prep.Pooled > 0 || inline.NeedLookup > 0 {
		if prep.Resolved > 0 {
			// The withdrawal step's hold, for the targets PrepareTargets
			// just resolved (it ran before it).
			if _, err := s.cfg.Store.HoldWithdrawnPeople(ctx, now); err != nil {
				return st, err
			}
			clk.mark("withdrawals")
		}
		if work, err = s.cfg.Store.AccountsWithWork(ctx, now, end, s.rules); err != nil {
			return st, err
		}
		clk.mark("accounts")
		st.Accounts = max(st.Accounts, len(work))
		s.plan(ctx, work, now, end, &st, clk)
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
	}
	st.Duration = s.cfg.Now().Sub(now)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Tick(st)
	}
	switch {
	case st.Duration >= slowTick:
		s.log.WarnContext(ctx, "slow tick: new work waits for it (stages, slowest first)", "accounts", st.Accounts,
			"prepared", st.Prepared.Seen, "enqueued", st.Enqueued, "took", st.Duration, "stages", stagesAttr(st.Stages))
	case st.Enqueued > 0 || st.Prepared.Seen > 0:
		s.log.DebugContext(ctx, "tick", "accounts", st.Accounts, "prepared", st.Prepared.Seen, "enqueued", st.Enqueued,
			"failed", st.Failed, "lag", st.Lag, "took", st.Duration, "stages", stagesAttr(st.Stages))
	}
	return st, nil
}

// planned is an account's slots for one action in this tick.
type planned struct {
	account *store.Account
	slots   []time.Time
}

// plan places every account's slots inside the horizon, claims targets for
// them in one transaction per claimChunk accounts (a claim per account took
// four round trips each, three seconds a tick over 1,000 accounts), and
// enqueues their tasks.
func (s *Scheduler) plan(ctx context.Context, work []*store.AccountWork, now, end time.Time, st *TickStats, clk *stageClock) {
	for _, w := range work {
		a := w.Account
		switch summary := a.PacingSummary(); {
		case a.Provider == provider.Unipile && !a.Pace(store.ActionInvite).Paced() && s.warnOnce("unpaced", a.ID):
			s.log.WarnContext(ctx, "LinkedIn account opted out of pacing (pacing 'unlimited') without invite limits or gap of its own: "+
				"it sends as fast as it can, which risks a restriction (docs/pacing.md)", "account_id", a.ID, "account", a.Name)
		case (summary == "default" || summary == "custom+default") && s.warnOnce("defaults", a.ID):
			s.log.InfoContext(ctx, "account runs on its provider's default pacing where it sets none of its own (docs/pacing.md)",
				"account_id", a.ID, "account", a.Name, "pacing", summary)
		}
	}
	for _, job := range []struct {
		action store.Action
		typ    string
	}{
		{store.ActionInvite, worker.TypeInvite},
		{store.ActionLookup, worker.TypeResolve},
	} {
		lookup := job.action == store.ActionLookup
		plans := map[int64]planned{}
		var wants []store.ClaimWant
		var waits []store.AccountWait
		for _, w := range work {
			due, queued, ahead := w.DueInvites, w.QueuedInvites, w.QueuedInvites-w.SendingInvites
			if lookup {
				due, queued, ahead = w.DueLookups, w.QueuedLookups, w.QueuedLookups-w.SendingLookups
			}
			if !due {
				continue
			}
			// The cap counts every task in Redis; the windows and the gap
			// only those not started (a target being sent has its call in
			// w.Recent and w.NextCall already).
			room := s.cfg.MaxQueuedPerAccount - queued
			slots := planSlots(w.Account, w.Recent, job.action, ahead, w.NextCall[job.action], now, end, room)
			if len(slots) == 0 && room > 0 {
				// Due work and no slot: say why, and until when
				// (target_waits shows it for the account's due targets).
				waits = append(waits, explainWait(w.Account, w.Recent, job.action, ahead, w.NextCall[job.action], now))
				continue
			}
			waits = append(waits, store.AccountWait{AccountID: w.Account.ID, Action: job.action})
			if len(slots) == 0 {
				continue
			}
			plans[w.Account.ID] = planned{account: w.Account, slots: slots}
			wants = append(wants, store.ClaimWant{AccountID: w.Account.ID, N: len(slots)})
		}
		clk.mark("plan")
		s.recordWaits(ctx, waits, now)
		clk.mark("waits")
		s.assignPools(ctx, lookup, work, plans, now, end)
		clk.mark("pools")
		taken := map[int64]int{} // slots given per account, in claim order
		for _, chunk := range claimChunks(wants) {
			prepare := func(c store.Claimed) store.Prepared {
				pl := plans[c.Target.AccountID]
				var p store.Prepared
				if !lookup {
					p = s.tmpl.render(pl.account.Provider, s.maxMessageChars(pl.account.Provider), c)
				}
				if p.Err != nil {
					st.Failed++
					s.log.InfoContext(ctx, "target failed before sending", "account_id", pl.account.ID,
						"campaign_id", c.Target.CampaignID, "target_id", c.Target.ID, "reason", p.Err)
					return p
				}
				// The queued targets of an account take its slots in
				// claim order, as enqueueClaimed gives them.
				if j := taken[c.Target.AccountID]; j < len(pl.slots) {
					p.At = pl.slots[j]
				}
				taken[c.Target.AccountID]++
				return p
			}
			var claimed map[int64][]*store.Target
			var err error
			if lookup {
				claimed, err = s.cfg.Store.ClaimTargetsBatch(ctx, lookup, chunk, end, now, prepare)
			} else {
				var prep store.PrepareStats
				claimed, prep, err = s.cfg.Store.ClaimAndPrepare(ctx, chunk, end, now, s.cfg.Normalize, prepare)
				st.Prepared = addPrepared(st.Prepared, prep)
			}
			clk.mark(string(job.action) + " claim")
			if err != nil {
				if ctx.Err() == nil {
					s.log.ErrorContext(ctx, "claiming targets", "accounts", len(chunk), "error", err)
				}
				continue
			}
			s.enqueueClaimed(ctx, job.typ, claimed, plans, now, st)
			clk.mark(string(job.action) + " enqueue")
		}
	}
}

// claimChunk is how many accounts one claim transaction serves at most,
// claimTargets how many targets it asks for at most (an account asking
// for more gets a transaction of its own): the workers start on the first
// chunk's tasks while the next is claimed (a tick claiming 20,000 targets
// in one transaction kept them idle for its second).
const (
	claimChunk   = 500
	claimTargets = 2000
)

// claimChunks splits wants into the claim transactions' shares, in order.
func claimChunks(wants []store.ClaimWant) [][]store.ClaimWant {
	var out [][]store.ClaimWant
	lo, n := 0, 0
	for i, w := range wants {
		if i > lo && (i-lo == claimChunk || n+w.N > claimTargets) {
			out = append(out, wants[lo:i])
			lo, n = i, 0
		}
		n += w.N
	}
	if lo < len(wants) {
		out = append(out, wants[lo:])
	}
	return out
}

// enqueueClaimed enqueues the claimed targets at their accounts' slots:
// batch tasks where several fall together (batchTasks), a task per target
// otherwise, a few tasks at once (each enqueue is a round trip to Redis).
func (s *Scheduler) enqueueClaimed(ctx context.Context, typ string, claimed map[int64][]*store.Target, plans map[int64]planned,
	now time.Time, st *TickStats) {
	tasks := s.batchTasks(typ, claimed, plans, now, st)
	stats := make([]TickStats, planners)
	next := make(chan plannedTask)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range stats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps := &stats[i]
			for pt := range next {
				if failed.Load() {
					continue
				}
				conflict, err := s.enqueueTask(ctx, typ, pt, now)
				if err != nil {
					// The targets stay queued; reconciliation enqueues them
					// (one by one) once Redis answers again. The tick
					// stops enqueueing: Redis is in trouble.
					failed.Store(true)
					if ctx.Err() == nil {
						s.log.ErrorContext(ctx, "enqueue", "account_id", pt.targets[0].AccountID, "target_id", pt.targets[0].ID,
							"targets", len(pt.targets), "error", err)
					}
					continue
				}
				if conflict {
					ps.Conflicts += len(pt.targets)
				} else {
					ps.Enqueued += len(pt.targets)
				}
			}
		}()
	}
feed:
	for _, pt := range tasks {
		select {
		case next <- pt:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, ps := range stats {
		st.Enqueued += ps.Enqueued
		st.Conflicts += ps.Conflicts
	}
}

// slowTick is how long a tick may take before it is logged as a warning,
// with where its time went: meanwhile no new work is planned.
const slowTick = 5 * time.Second

// planners is how many accounts' tasks a tick enqueues at once.
const planners = 4

// warnOnce reports whether the account was not told about yet for kind,
// and marks it told.
func (s *Scheduler) warnOnce(kind string, id int64) bool {
	s.warnMu.Lock()
	defer s.warnMu.Unlock()
	key := warnKey{kind, id}
	if s.warned[key] {
		return false
	}
	if s.warned == nil {
		s.warned = map[warnKey]bool{}
	}
	s.warned[key] = true
	return true
}

// warnKey is what an account was told about once.
type warnKey struct {
	kind string
	id   int64
}

// enqueue puts a target's task of generation gen in Redis, to run at at.
// It reports a conflict when the task is there already.
func (s *Scheduler) enqueue(ctx context.Context, typ string, targetID int64, gen int, at, now time.Time) (conflict bool, err error) {
	task, opts := worker.NewTaskGen(typ, targetID, gen)
	if at.After(now) {
		opts = append(opts, asynq.ProcessAt(at))
	}
	_, err = s.client.Load().EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return true, nil
	}
	return false, err
}

// Reconcile enqueues again the task of every target marked queued (before
// grace ago) or held past its lease, and closes ledger rows of workers that
// died. A task still in Redis is left alone (same id).
func (s *Scheduler) Reconcile(ctx context.Context, grace time.Duration) error {
	now := s.cfg.Now()
	// A new client registers its queues again on its first enqueue to
	// each (one SADD), in case Redis lost them: the tasks it enqueues stay
	// visible to the dashboard and the queue metrics.
	s.client.Store(asynq.NewClientFromRedisClient(s.cfg.Redis))
	if n, err := s.cfg.Store.ExpireOrphanSends(ctx, now, s.cfg.Lease, s.cfg.RequestTimeout); err != nil {
		return err
	} else if n > 0 {
		s.log.WarnContext(ctx, "closed ledger rows of workers that stopped mid-call", "count", n)
	}
	var after int64
	restored := 0
	for {
		lost, err := s.cfg.Store.QueuedTargets(ctx, now.Add(-grace), now, after, 1000)
		if err != nil {
			return err
		}
		var ids []int64
		for _, l := range lost {
			typ := worker.TypeInvite
			if l.Lookup {
				typ = worker.TypeResolve
			}
			conflict, err := s.enqueue(ctx, typ, l.ID, l.TaskGen, l.NextAttempt, now)
			if err != nil {
				return fmt.Errorf("re-enqueue target %d: %w", l.ID, err)
			}
			if !conflict {
				ids = append(ids, l.ID)
			}
			after = l.ID
		}
		if len(ids) > 0 {
			restored += len(ids)
			if err := s.cfg.Store.Requeue(ctx, ids, now); err != nil {
				return err
			}
		}
		if len(lost) < 1000 {
			break
		}
	}
	if restored > 0 {
		s.log.WarnContext(ctx, "re-enqueued targets whose task was missing from Redis", "count", restored)
	}
	return nil
}

// RecoverDeadWorkers looks for workers that stopped or whose heartbeat is
// older than DeadAfter, and queues the targets they held again at once,
// each under a new task id (asynq still holds the dead worker's task under
// the old one until its own lease expires; the reservation refuses it
// then). The next attempt of each first settles the uncertain one with the
// provider. A target whose enqueue fails stays queued; Reconcile enqueues
// it later.
func (s *Scheduler) RecoverDeadWorkers(ctx context.Context) error {
	now := s.cfg.Now()
	dead, recovered, err := s.cfg.Store.RecoverDeadWorkers(ctx, now, s.cfg.DeadAfter, s.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	for _, d := range dead {
		if d.Stopped && d.Sends == 0 {
			s.log.DebugContext(ctx, "worker stopped cleanly", "worker_id", d.ID, "host", d.Host, "pid", d.PID)
			continue
		}
		s.log.WarnContext(ctx, "worker dead: recovering its in-flight sends", "worker_id", d.ID, "host", d.Host, "pid", d.PID,
			"last_heartbeat", d.HeartbeatAt, "stopped", d.Stopped, "in_flight", d.Sends)
	}
	var firstErr error
	for _, r := range recovered {
		typ := worker.TypeInvite
		if r.Lookup {
			typ = worker.TypeResolve
		}
		if _, err := s.enqueue(ctx, typ, r.ID, r.TaskGen, r.NextAttempt, now); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("enqueue recovered target %d: %w", r.ID, err)
			}
			continue
		}
		s.log.InfoContext(ctx, "target recovered from a dead worker", "target_id", r.ID, "account_id", r.AccountID,
			"worker_id", r.WorkerID, "task_id", worker.TaskIDGen(typ, r.ID, r.TaskGen))
	}
	return firstErr
}
