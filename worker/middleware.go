package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/store"
)

// The handlers decide and record; the middleware around them (Mux
// registers it) logs and counts what they did. A handler tells it through
// the taskReport that the outermost middleware puts into the task's
// context; a handler called without the middleware reports into nothing.

// taskReport is what one task's handler did, for the middleware.
type taskReport struct {
	// log is the handler's logger, with the task, target, account and
	// campaign (nil when the task ended before naming them).
	log *slog.Logger
	// mu guards answers: a batch task records answers from several
	// goroutines.
	mu sync.Mutex
	// answers are the recorded answers of the task's provider calls: one
	// for a target's task, one per target for a batch.
	answers []*answerReport
	// unserved is the target handed back for want of a client (nil
	// otherwise).
	unserved *unservedReport
}

// answerReport is one recorded answer.
type answerReport struct {
	// log is the target's logger within a batch (nil: the task's).
	log *slog.Logger
	at  *store.Attempt
	// action is the action logged: the task's, or settle.
	action        string
	f             store.Finish
	configRefused bool
}

// unservedReport is one target handed back by notServed.
type unservedReport struct {
	account *store.Account
	err     error
	wait    time.Duration
}

type reportKey struct{}

// withReport returns ctx carrying a taskReport, the one ctx already
// carries if any.
func withReport(ctx context.Context) (context.Context, *taskReport) {
	if r, ok := ctx.Value(reportKey{}).(*taskReport); ok {
		return ctx, r
	}
	r := &taskReport{}
	return context.WithValue(ctx, reportKey{}, r), r
}

// addAnswer records one answer for the middleware.
func (r *taskReport) addAnswer(a *answerReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, a)
}

// reportOf returns the taskReport of ctx, or one nobody reads.
func reportOf(ctx context.Context) *taskReport {
	if r, ok := ctx.Value(reportKey{}).(*taskReport); ok {
		return r
	}
	return &taskReport{}
}

// LogTask is asynq middleware that logs the outcome of each task: the
// answer recorded (message "outcome", with the action, outcome, target
// status, error type, HTTP status and invitation id), a pause or disable
// of the account, a refusal of this worker's configuration, and a target
// handed back for want of credentials.
func (w *Worker) LogTask(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		ctx, r := withReport(ctx)
		err := next.ProcessTask(ctx, t)
		log := r.log
		if log == nil {
			log = w.log.With("task", t.Type())
		}
		if u := r.unserved; u != nil {
			a := u.account
			log.WarnContext(ctx, "no credentials for this account in this worker: target handed back",
				"account", a.Name, "provider", a.Provider, "credentials_ref", a.CredentialsRef, "error", u.err.Error(), "wait", u.wait)
		}
		for _, a := range r.answers {
			log := log
			if a.log != nil {
				log = a.log
			}
			f := a.f
			if a.configRefused {
				log.ErrorContext(ctx, "the provider refused this worker's configuration: its accounts are left to other workers for a while; the account is unchanged",
					"account", a.at.Account.Name, "provider", a.at.Account.Provider, "credentials_ref", a.at.Account.CredentialsRef,
					"until", f.NextAttemptAt, "error", f.Detail)
			}
			log.InfoContext(ctx, "outcome", "action", a.action, "outcome", f.Outcome, "target_status", f.TargetStatus,
				"error_type", f.ErrorType, "http_status", f.HTTPStatus, "invitation_id", f.InvitationID)
			if f.Disable || !f.PauseUntil.IsZero() {
				log.WarnContext(ctx, "account paused", "until", f.PauseUntil, "reason", f.PauseReason)
			}
		}
		return err
	})
}

// CountTask is asynq middleware that counts the outcome of each task in
// Config.Metrics (Metrics.Outcome and Metrics.AccountPaused).
func (w *Worker) CountTask(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		ctx, r := withReport(ctx)
		err := next.ProcessTask(ctx, t)
		m := w.cfg.Metrics
		if m == nil {
			return err
		}
		if u := r.unserved; u != nil {
			m.Outcome(string(u.account.Provider), u.account.Name, "unserved", "no_credentials")
		}
		for _, a := range r.answers {
			countAnswer(m, a.at, a.f)
		}
		return err
	})
}

// countAnswer counts one recorded answer and the pause it caused.
func countAnswer(m Metrics, at *store.Attempt, f store.Finish) {
	outcome := string(f.TargetStatus)
	switch {
	case (f.Outcome == store.OutcomeResolved || f.Outcome == store.OutcomeCached) && f.TargetStatus == store.TargetPending:
		outcome = "resolved"
	case f.TargetStatus == store.TargetQueued && f.Outcome == store.OutcomeError:
		outcome = "retried"
	case f.TargetStatus == store.TargetQueued || f.TargetStatus == store.TargetPending:
		outcome = "deferred"
	}
	m.Outcome(string(at.Account.Provider), at.Account.Name, outcome, f.ErrorType)
	switch {
	case f.Disable:
		m.AccountPaused(string(at.Account.Provider), at.Account.Name, "disabled")
	case !f.PauseUntil.IsZero() && f.ErrorType == "":
		m.AccountPaused(string(at.Account.Provider), at.Account.Name, "usage")
	case !f.PauseUntil.IsZero():
		m.AccountPaused(string(at.Account.Provider), at.Account.Name, f.ErrorType)
	}
}
