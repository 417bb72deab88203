package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// healthChecks remembers when this worker last checked each account's
// status with its provider, so that calls in a row check once.
type healthChecks struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (h *healthChecks) fresh(id int64, now time.Time, maxAge time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.at[id]
	return ok && maxAge >= 0 && now.Sub(at) < maxAge
}

func (h *healthChecks) mark(id int64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at == nil || len(h.at) > 100_000 {
		h.at = make(map[int64]time.Time)
	}
	h.at[id] = now
}

func (h *healthChecks) forget(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.at, id)
}

// checkHealth asks the provider for the account's status and records it:
// an account not running is paused with the reason, one running again
// after such a pause resumes. It reports whether the account runs. An
// error (the provider unreachable, this process's key refused, a wrong
// URL) changes nothing (DESIGN invariant 11): the caller goes on as if
// it had not asked.
func (w *Worker) checkHealth(ctx context.Context, log *slog.Logger, a *store.Account, c provider.AccountChecker, now time.Time) (bool, error) {
	cfg := w.cfg.Polls.withDefaults()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
	st, err := c.CheckAccount(cctx, a.ProviderAccountID)
	cancel()
	if err != nil {
		var pe *provider.Error
		if errors.As(err, &pe) && pe.Scope == provider.ScopeProcess {
			log.WarnContext(ctx, "account status check refused this worker's configuration; the account is unchanged", "error", err.Error())
		} else {
			log.WarnContext(ctx, "account status check failed; the account is unchanged", "error", err.Error())
		}
		return true, err
	}
	w.health.mark(a.ID, now)
	changes, err := w.cfg.Store.RecordAccountStatus(context.WithoutCancel(ctx), a.Provider, a.ProviderAccountID, st, now, cfg.HealthPause)
	if err != nil {
		return st.Running, err
	}
	w.healthChanged(ctx, log, a, st, changes)
	return st.Running, nil
}

// healthChanged logs and counts what a status did to accounts.
func (w *Worker) healthChanged(ctx context.Context, log *slog.Logger, a *store.Account, st provider.AccountState, changes []store.HealthChange) {
	for _, ch := range changes {
		switch {
		case ch.Paused:
			log.WarnContext(ctx, "account paused: the provider reports it not running", "account", ch.Name, "status", st.Status)
			if w.cfg.Metrics != nil {
				w.cfg.Metrics.AccountPaused(string(a.Provider), ch.Name, "health")
			}
		case ch.Resumed:
			log.InfoContext(ctx, "account resumed: the provider reports it running again", "account", ch.Name, "status", st.Status)
		}
	}
}

// healthGate runs before a LinkedIn call of an attempt: when this worker
// has not checked the account's status within HealthMaxAge and its client
// can, it checks; an account the provider reports not running is paused
// (by checkHealth) and the attempt makes no call: its reservation leaves
// the ledger and its target waits for the pause. ok is false then.
func (w *Worker) healthGate(ctx context.Context, at *store.Attempt, c provider.Client, now time.Time) (Decision, bool) {
	checker, can := c.(provider.AccountChecker)
	cfg := w.cfg.Polls.withDefaults()
	if !can || w.health.fresh(at.Account.ID, now, cfg.HealthMaxAge) {
		return Decision{}, true
	}
	log := w.log.With("account_id", at.Account.ID, "target_id", at.Target.ID)
	running, err := w.checkHealth(ctx, log, at.Account, checker, now)
	if err != nil || running {
		return Decision{}, true
	}
	w.health.forget(at.Account.ID) // check again before the next call
	until := now.Add(cfg.HealthPause)
	reason := store.HealthWait
	return Decision{now: now, Outcome: store.OutcomeCached, Detail: "no call: the provider reports the account not running",
		Next: HandBack(until, reason)}, false
}
