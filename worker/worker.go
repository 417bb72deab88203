package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/registry"
	"github.com/outreach-dev/outreach/store"
)

// ClientFunc returns the provider client for an account's provider and
// credentials reference (accounts.credentials_ref). An error means this
// process is not configured for it (its message names the missing
// setting, never a secret): the worker then hands the account's tasks
// back for another worker and never changes the account.
type ClientFunc func(p provider.Name, credentialsRef string) (provider.Client, error)

// Config configures a Worker. Store and Clients are required; the rest
// has defaults.
type Config struct {
	Store   *store.Store
	Clients ClientFunc
	Logger  *slog.Logger
	// Policy is the outcome policy; zero means DefaultPolicy().
	Policy *Policy
	// Rules are the providers' rules (which error types mean what); nil
	// means registry.Default().
	Rules provider.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RequestTimeout bounds one provider call (default 30 s).
	RequestTimeout time.Duration
	// Lease is how long a worker holds a target it is sending before
	// another may take it over (default twice RequestTimeout plus 5 s).
	Lease time.Duration
	// HoldFor is the longest wait for which a task stays in Redis rather
	// than handing its target back to the scheduler (default 1 min).
	HoldFor time.Duration
	// ShortWait is the longest wait for a slot done inside the handler
	// rather than by snoozing the task (default 1.5 s: asynq schedules to
	// the second).
	ShortWait time.Duration
	// UnservedWait is how long a target waits, handed back to the
	// scheduler, when this worker has no client for its account (its
	// credentials are not configured here), so that a worker that has one
	// takes it; it doubles each time this worker meets the target again,
	// up to UnservedWaitMax (defaults 30 s and 5 min).
	UnservedWait, UnservedWaitMax time.Duration
	// HeartbeatInterval is how often a running Server renews the worker's
	// liveness row (default 2 s); see store.RecoverDeadWorkers.
	HeartbeatInterval time.Duration
	// RecordBackoffMax caps the wait between two attempts to record an
	// answer while Postgres is away (default 5 s). An answer is retried
	// for as long as the process lives.
	RecordBackoffMax time.Duration
	Metrics          Metrics
	// Polls configures relation polls and account health (poll.go).
	Polls PollConfig
}

// RecordMetrics is optionally implemented by a Metrics: answers the
// worker holds because recording them failed, and each retry.
type RecordMetrics interface {
	// AnswersHeld adds delta to the answers kept in hand, not yet recorded.
	AnswersHeld(delta int)
	// RecordRetry counts one failed attempt to record an answer.
	RecordRetry()
}

// Metrics receives the worker's outcomes; nil means none.
type Metrics interface {
	// Outcome counts one answer: provider, account name, outcome (sent,
	// deferred, failed, skipped, retried, paused; unserved when this
	// worker had no client for the account and handed the target back
	// without a call, error type no_credentials) and error type.
	Outcome(provider, account, outcome, errorType string)
	// AccountPaused counts a pause or disable with its reason kind.
	AccountPaused(provider, account, kind string)
}

// Worker handles invite and resolve tasks.
type Worker struct {
	cfg    Config
	policy Policy
	log    *slog.Logger
	// unserved counts, per target, how often this worker handed it back
	// for want of a client (see notServed).
	unserved unservedCounts
	// refused holds the credentials the provider refused to this worker
	// (a wrong key, a redirecting URL), and until when it leaves their
	// accounts to other workers (see configRefused).
	refused refusals
	// id is the liveness id while a Server runs (0 without).
	id atomic.Int64
	// held counts the answers kept in hand because recording them failed.
	held atomic.Int64
	// health remembers this worker's latest status check per account.
	health healthChecks
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Clients == nil {
		return nil, errors.New("worker: Store and Clients are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2*cfg.RequestTimeout + 5*time.Second
	}
	if cfg.HoldFor <= 0 {
		cfg.HoldFor = time.Minute
	}
	if cfg.ShortWait <= 0 {
		cfg.ShortWait = 1500 * time.Millisecond
	}
	if cfg.UnservedWait <= 0 {
		cfg.UnservedWait = 30 * time.Second
	}
	if cfg.UnservedWaitMax < cfg.UnservedWait {
		cfg.UnservedWaitMax = max(5*time.Minute, cfg.UnservedWait)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.RecordBackoffMax <= 0 {
		cfg.RecordBackoffMax = 5 * time.Second
	}
	if cfg.Rules == nil {
		cfg.Rules = registry.Default()
	}
	p := DefaultPolicy()
	if cfg.Policy != nil {
		p = *cfg.Policy
	}
	return &Worker{cfg: cfg, policy: p, log: cfg.Logger}, nil
}

// Mux returns the asynq handler of all outreach task types, with the
// middleware that logs and counts each task (LogTask, CountTask).
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(w.LogTask, w.CountTask)
	mux.HandleFunc(TypeInvite, w.HandleInvite)
	mux.HandleFunc(TypeResolve, w.HandleResolve)
	mux.HandleFunc(TypeWithdraw, w.HandleWithdraw)
	mux.HandleFunc(TypeSentList, w.HandleSentList)
	mux.HandleFunc(TypePoll, w.HandlePoll)
	mux.HandleFunc(TypeInviteBatch, w.HandleInviteBatch)
	return mux
}

// HandleInvite sends one invitation.
func (w *Worker) HandleInvite(ctx context.Context, t *asynq.Task) error {
	return w.handle(ctx, t, store.ActionInvite)
}

// HandleResolve looks up one target's profile.
func (w *Worker) HandleResolve(ctx context.Context, t *asynq.Task) error {
	return w.handle(ctx, t, store.ActionLookup)
}

// handle runs one task: begin the attempt, make the provider call, record
// its outcome and follow it up.
func (w *Worker) handle(ctx context.Context, t *asynq.Task, action store.Action) error {
	p, err := parsePayload(t)
	if err != nil {
		return err
	}
	log := w.log.With("task", t.Type(), "target_id", p.TargetID)
	reportOf(ctx).log = log
	at, now, err := w.begin(ctx, p, action)
	if err != nil {
		return w.notBegun(ctx, log, p.TargetID, err, now)
	}
	log = log.With("account_id", at.Account.ID, "campaign_id", at.Target.CampaignID)
	reportOf(ctx).log = log
	dec := w.call(ctx, at, action, now)
	f, retry, retryIn := dec.finish(at, w.cfg.HoldFor)
	f.Action = action
	if at.Settle {
		f.Action = store.ActionLookup
	}
	if err := w.record(context.WithoutCancel(ctx), log, f); err != nil {
		if errors.Is(err, store.ErrStale) {
			log.WarnContext(ctx, "target changed while sending; answer recorded in the ledger only", "outcome", f.Outcome)
			return nil
		}
		return fmt.Errorf("record outcome: %w", err)
	}
	w.afterRecord(ctx, nil, at, action, dec, f)
	if retry {
		return Snooze(retryIn, f.ErrorType)
	}
	return nil
}

// begin asks the store to begin the attempt (reserve the target and a slot
// on its account) at the time it returns as now. A slot due within
// ShortWait is waited for here, up to three times; when ctx ends during
// such a wait, the error is the Snooze the handler returns.
func (w *Worker) begin(ctx context.Context, p Payload, action store.Action) (*store.Attempt, time.Time, error) {
	var now time.Time
	var at *store.Attempt
	var err error
	var nn *store.NotNowError
	for try := 0; ; try++ {
		now = w.cfg.Now()
		at, err = w.cfg.Store.Begin(ctx, store.BeginRequest{
			TargetID: p.TargetID, Action: action, Now: now,
			Lease: w.cfg.Lease, RequestTimeout: w.cfg.RequestTimeout, HoldFor: w.cfg.HoldFor,
			Serves:  w.serves,
			TaskGen: p.Gen, WorkerID: w.id.Load(), Settle: w.canSettle,
		})
		// asynq runs scheduled tasks to the second, so a task often comes
		// up a little early: wait the rest here rather than a whole
		// round trip through Redis.
		if !errors.As(err, &nn) || nn.Released || try >= 3 {
			break
		}
		wait := nn.Until.Sub(now)
		if wait > w.cfg.ShortWait {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, now, Snooze(wait, nn.Reason)
		case <-t.C:
		}
	}
	return at, now, err
}

// notBegun turns the error of begin into the handler's result: nothing
// for a stale task or a target handed back, a snooze until the slot for a
// target that is not due, the hand-back of notServed, and any other error
// (Postgres trouble, a snooze) as it is.
func (w *Worker) notBegun(ctx context.Context, log *slog.Logger, targetID int64, err error, now time.Time) error {
	var nn *store.NotNowError
	var ns *store.NotServedError
	switch {
	case errors.Is(err, store.ErrStale):
		log.DebugContext(ctx, "task no longer needed")
		return nil
	case errors.As(err, &ns):
		return w.notServed(ctx, targetID, ns, now)
	case errors.As(err, &nn):
		if nn.Released {
			log.DebugContext(ctx, "target handed back", "until", nn.Until, "reason", nn.Reason)
			return nil
		}
		return Snooze(nn.Until.Sub(now), nn.Reason)
	default:
		return err // Postgres trouble: asynq retries with backoff
	}
}

// call makes the attempt's provider call (settle, invite or resolve) and
// returns its decision; with no client for the account it makes none.
func (w *Worker) call(ctx context.Context, at *store.Attempt, action store.Action, now time.Time) Decision {
	client, err := w.cfg.Clients(provider.Name(at.Account.Provider), at.Account.CredentialsRef)
	var dec Decision
	if err != nil {
		// Begin asked serves before reserving, so this is only a client
		// that vanished since: no call is made, and this worker's own
		// configuration never changes the account (see notServed).
		dec = w.droppedClient(at, err, now)
	} else {
		// The account's health check, when due, has a timeout of its own:
		// it must not eat the call's.
		var healthy bool
		if dec, healthy = w.healthGate(ctx, at, client, now); !healthy {
			return dec
		}
		// The call and its record run to completion even when a shutdown
		// cancels ctx: the request may already be at the provider.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
		switch {
		case at.Settle:
			dec = w.settle(cctx, at, client)
		case action == store.ActionInvite:
			dec = w.invite(cctx, at, client)
		default:
			dec = w.resolve(cctx, at, client)
		}
		cancel()
	}
	return dec
}

// afterRecord follows up a recorded outcome: it escalates a refused
// resend, notes or clears a refused configuration and reports the outcome
// to the middleware that logs and counts it (LogTask, CountTask), with log
// as its logger when not nil (a target of a batch task).
func (w *Worker) afterRecord(ctx context.Context, log *slog.Logger, at *store.Attempt, action store.Action, dec Decision, f store.Finish) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if dec.resendRefusal {
		w.escalateResend(fctx, at, f)
	}
	if !dec.configRefused && (f.Outcome == store.OutcomeSent || f.Outcome == store.OutcomeResolved) {
		w.refused.clear(at.Account.Provider, at.Account.CredentialsRef)
	}
	logAction := string(action)
	if at.Settle {
		logAction = "settle"
	}
	reportOf(ctx).addAnswer(&answerReport{log: log, at: at, action: logAction, f: f, configRefused: dec.configRefused})
}

func (w *Worker) invite(ctx context.Context, at *store.Attempt, c provider.Client) Decision {
	inv := provider.Invitation{
		AccountID:   at.Account.ProviderAccountID,
		RecipientID: at.Target.ProviderID,
		Message:     at.Target.Message,
		Options:     at.Target.ProviderOptions,
	}
	if v, ok := at.Target.Vars["email"].(string); ok {
		inv.Email = v
	}
	inv.Name = recipientName(at)
	sent, err := c.Invite(ctx, inv)
	now := w.cfg.Now()
	if err != nil {
		pe := asProviderError(provider.Name(at.Account.Provider), "invite", err)
		if pe.Kind == provider.KindConfig {
			return w.configRefused(at, pe, now)
		}
		h := w.history(ctx, at, pe, now)
		return w.policy.decideError(at, pe, h, now)
	}
	return w.policy.decideSent(at, sent, now)
}

func recipientName(at *store.Attempt) string {
	if v, ok := at.Target.Vars["name"].(string); ok && v != "" {
		return v
	}
	if at.Person != nil {
		if n := at.Person.FirstName + " " + at.Person.LastName; len(n) > 1 {
			return n
		}
	}
	return at.Target.Identifier
}

func (w *Worker) resolve(ctx context.Context, at *store.Attempt, c provider.Client) Decision {
	now := w.cfg.Now()
	r, ok := c.(provider.Resolver)
	if !ok {
		// Providers without a lookup take the identifier as the id.
		return Decision{now: now, Outcome: store.OutcomeResolved, Next: HandBack(now, ""),
			Person: &store.Person{Provider: at.Account.Provider, NormalizedIdentifier: at.Target.NormalizedIdentifier,
				ProviderID: at.Target.NormalizedIdentifier, LookedUpBy: at.Account.ID}}
	}
	outcome := store.OutcomeResolved
	var prof provider.Profile
	var err error
	if p := at.Person; p != nil && p.ProviderID != "" && p.LookedUpBy == at.Account.ID {
		// Another target of this account resolved the person meanwhile:
		// nobody is looked up twice.
		outcome = store.OutcomeCached
		prof = provider.Profile{ProviderID: p.ProviderID, FirstName: p.FirstName, LastName: p.LastName, Headline: p.Headline,
			NetworkDistance: p.NetworkDistance, IsRelationship: p.IsRelationship, InvitationStatus: p.InvitationStatus}
	} else {
		prof, err = r.Resolve(ctx, at.Account.ProviderAccountID, at.Target.NormalizedIdentifier)
	}
	now = w.cfg.Now()
	if err != nil {
		pe := asProviderError(provider.Name(at.Account.Provider), "resolve", err)
		if pe.Kind == provider.KindAlreadyInvited || pe.Kind == provider.KindCannotResendYet || pe.Kind == provider.KindTooSoon {
			// Not answers a lookup gives; treat them as a passing fault.
			pe.Kind, pe.Scope = provider.KindTransient, provider.ScopeTransient
		}
		if pe.Kind == provider.KindConfig {
			return w.configRefused(at, pe, now)
		}
		h := w.history(ctx, at, pe, now)
		dec := w.policy.decideError(at, pe, h, now)
		if pe.Kind == provider.KindNotFound {
			dec.Next.reason = "profile not found: " + pe.Error()
		}
		return dec
	}
	// Ready for its invitation at once, unless the profile says otherwise.
	d := Decision{now: now, Outcome: outcome, Next: HandBack(now, ""),
		Person: &store.Person{Provider: at.Account.Provider, NormalizedIdentifier: at.Target.NormalizedIdentifier,
			ProviderID: prof.ProviderID, FirstName: prof.FirstName, LastName: prof.LastName, Headline: prof.Headline,
			LookedUpBy: at.Account.ID, NetworkDistance: prof.NetworkDistance, IsRelationship: prof.IsRelationship,
			InvitationStatus: prof.InvitationStatus}}
	switch {
	case prof.ProviderID == "":
		d.ErrorType, d.Next, d.Person = "no_provider_id", Fail("the profile has no provider id").stamped(now), nil
	case prof.Connected():
		// The person is cached with the id for the record; a skipped
		// target takes no person's slot.
		d.ErrorType, d.Next = "already_connected", Skip("already connected ("+prof.NetworkDistance+")").stamped(now)
	case prof.PendingInvitation():
		d.ErrorType, d.Next = "invitation_pending", Skip("an invitation is already pending ("+prof.InvitationType+")").stamped(now)
	}
	return d
}

// escalateResend counts the account's cannot_resend_yet refusals again
// once this one is recorded, and pauses the account when they reach the
// policy's count. Refusals of several targets answered at the same moment
// each counted the others before any was recorded; counting after
// recording, the last of them to record sees them all.
func (w *Worker) escalateResend(ctx context.Context, at *store.Attempt, f store.Finish) {
	p := w.policy
	n, err := w.cfg.Store.CountRefusals(ctx, at.Account.ID,
		w.errorTypes(at.Account.Provider, provider.KindCannotResendYet, f.ErrorType), 0, f.Now.Add(-p.ResendEscalateWindow), true)
	if err != nil {
		w.log.WarnContext(ctx, "reading the account's recent answers", "account_id", at.Account.ID, "error", err)
		return
	}
	if n < p.ResendEscalateCount {
		return
	}
	reason := resendEscalationReason(n, f.ErrorType, p.ResendEscalateWindow)
	if err := w.cfg.Store.ExtendPause(ctx, at.Account.ID, f.Now.Add(p.ResendEscalatePause), reason); err != nil {
		w.log.WarnContext(ctx, "pausing the account", "account_id", at.Account.ID, "error", err)
		return
	}
	if err := w.cfg.Store.WarmupWarning(ctx, at.Account.ID, f.Now, reason); err != nil {
		w.log.WarnContext(ctx, "stepping the account's warm-up back", "account_id", at.Account.ID, "error", err)
	}
	w.log.WarnContext(ctx, "account paused", "account_id", at.Account.ID, "until", f.Now.Add(p.ResendEscalatePause), "reason", reason)
	if m := w.cfg.Metrics; m != nil {
		m.AccountPaused(string(at.Account.Provider), at.Account.Name, f.ErrorType)
	}
}

// errorTypes returns the error types the account's provider classifies as
// kind (its provider.Rules), and typ, the type of the answer at hand: the
// ledger's error types that count as answers of that kind.
func (w *Worker) errorTypes(name provider.Name, kind provider.Kind, typ string) []string {
	var types []string
	if rules, err := w.cfg.Rules.Rules(name); err == nil && rules.ErrorTypes != nil {
		types = rules.ErrorTypes(kind)
	}
	return append(types, typ)
}

// history reads the account's recent answers when the policy needs them.
func (w *Worker) history(ctx context.Context, at *store.Attempt, pe *provider.Error, now time.Time) History {
	var h History
	var err error
	switch pe.Kind {
	case provider.KindRateLimited:
		h.RateLimited, err = w.cfg.Store.CountRefusals(ctx, at.Account.ID,
			w.errorTypes(at.Account.Provider, pe.Kind, pe.Type), 429, now.Add(-w.policy.RateLimitMax), false)
		h.RateLimited++
	case provider.KindLimitExceeded:
		h.LimitExceeded, err = w.cfg.Store.CountRefusals(ctx, at.Account.ID, []string{pe.Type}, 0, now.Add(-24*time.Hour), false)
		h.LimitExceeded++
	case provider.KindCannotResendYet:
		h.ResendRefusals, err = w.cfg.Store.CountRefusals(ctx, at.Account.ID,
			w.errorTypes(at.Account.Provider, pe.Kind, pe.Type), 0, now.Add(-w.policy.ResendEscalateWindow), true)
		h.ResendRefusals++
	}
	if err != nil {
		w.log.WarnContext(ctx, "reading the account's recent answers", "account_id", at.Account.ID, "error", err)
	}
	return h
}
