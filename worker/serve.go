package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// A worker's own configuration (which provider credentials its process
// has) never changes an account: a task for an account this worker has no
// client for is handed back, untouched, to wait for a worker that has one.

// serves is the worker's store.BeginRequest.Serves: whether it has a
// client for the account's provider and credentials_ref.
// Credentials the provider refused a moment ago count as missing until
// their cool-off ends (see configRefused).
func (w *Worker) serves(a *store.Account) error {
	if _, err := w.cfg.Clients(provider.Name(a.Provider), a.CredentialsRef); err != nil {
		return err
	}
	return w.refused.check(a.Provider, a.CredentialsRef, w.cfg.Now())
}

// configRefused is the decision for a call that the provider answered in a
// way that faults this process's own configuration (provider.KindConfig: our
// API key refused, or a redirect, which means the configured URL is wrong).
// The call was made, so its ledger row stays (refused); the account is
// never changed (other workers may be configured right); the target is
// handed back to the scheduler with the reason, and this worker leaves
// every account of these credentials to other workers for a cool-off that
// doubles while the provider keeps refusing them.
func (w *Worker) configRefused(at *store.Attempt, pe *provider.Error, now time.Time) Decision {
	a := at.Account
	coolOff := w.refused.mark(a.Provider, a.CredentialsRef, pe, now, w.cfg.UnservedWait, w.cfg.UnservedWaitMax)
	typ := pe.Type
	if typ == "" {
		typ = string(pe.Kind)
	}
	return Decision{now: now, Outcome: store.OutcomeRefused, ErrorType: typ, HTTPStatus: pe.HTTPStatus, Detail: pe.Error(),
		Next: HandBack(now.Add(coolOff), fmt.Sprintf("waiting: the provider refused this worker's configuration for %s/%s (%v); the account is unchanged, "+
			"a worker configured right will take it", a.Provider, a.CredentialsRef, pe)),
		configRefused: true}
}

// refusals remembers, per provider and credentials_ref, until when the
// provider's refusal of this worker's configuration keeps it away from
// their accounts, and how many refusals in a row it has seen.
type refusals struct {
	mu sync.Mutex
	m  map[string]refusal
}

type refusal struct {
	until  time.Time
	streak int
	err    string
}

func (r *refusals) check(p provider.Name, ref string, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.m[string(p)+"/"+ref]; ok && x.until.After(now) {
		return fmt.Errorf("the provider refused this worker's configuration until %s: %s", x.until.UTC().Format(time.RFC3339), x.err)
	}
	return nil
}

// mark records a refusal and returns the cool-off: base, doubling with
// each refusal in a row, up to max.
func (r *refusals) mark(p provider.Name, ref string, pe *provider.Error, now time.Time, base, max time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]refusal{}
	}
	x := r.m[string(p)+"/"+ref]
	d := doubling(base, x.streak, max)
	r.m[string(p)+"/"+ref] = refusal{until: now.Add(d), streak: x.streak + 1, err: pe.Error()}
	return d
}

// clear forgets the refusals of credentials the provider accepted again.
func (r *refusals) clear(p provider.Name, ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, string(p)+"/"+ref)
}

// notServedReason says why a target waits when this worker has no client
// for its account. It names the provider and credentials_ref, and the
// missing setting (ClientFunc errors name variables, never secrets).
func notServedReason(a *store.Account, err error) string {
	return fmt.Sprintf("this worker has no credentials for %s/%s (%v); left for a worker that has them",
		a.Provider, a.CredentialsRef, err)
}

// notServed hands a target whose account this worker cannot serve back to
// the scheduler, due after a wait that grows each time this worker meets
// it again, so that a worker with credentials takes it. Nothing was
// reserved: the ledger, the target's attempts and the account are
// unchanged. The middleware logs and counts it (LogTask, CountTask).
func (w *Worker) notServed(ctx context.Context, targetID int64, ns *store.NotServedError, now time.Time) error {
	a := ns.Account
	wait := w.unserved.next(targetID, w.cfg.UnservedWait, w.cfg.UnservedWaitMax)
	reason := notServedReason(a, ns.Err)
	if err := w.cfg.Store.HandBack(ctx, targetID, now.Add(wait), reason); err != nil {
		if errors.Is(err, store.ErrStale) {
			return nil
		}
		return err
	}
	reportOf(ctx).unserved = &unservedReport{account: a, err: ns.Err, wait: wait}
	return nil
}

// droppedClient is the decision for a reservation made for an account
// whose client this worker no longer finds (a ClientFunc that changed its
// answer since Begin asked): no call was made, so the reservation leaves
// the ledger (as a cached lookup's does), and the target's task waits,
// saying why; the account is left alone.
func (w *Worker) droppedClient(at *store.Attempt, err error, now time.Time) Decision {
	wait := w.unserved.next(at.Target.ID, w.cfg.UnservedWait, w.cfg.UnservedWaitMax)
	reason := "waiting: " + notServedReason(at.Account, err)
	return Decision{now: now, Outcome: store.OutcomeCached, Next: Requeue(now.Add(wait), reason)}
}

// unservedCounts counts, per target, the hand-backs of one worker. It
// forgets everything past maxUnservedTargets entries (the waits start
// short again, which costs a little churn and nothing else).
type unservedCounts struct {
	mu sync.Mutex
	n  map[int64]int
}

const maxUnservedTargets = 100_000

// next counts one more hand-back of the target and returns its wait:
// base, doubling per earlier hand-back, up to max.
func (u *unservedCounts) next(targetID int64, base, max time.Duration) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == nil || len(u.n) >= maxUnservedTargets {
		u.n = map[int64]int{}
	}
	n := u.n[targetID]
	u.n[targetID] = n + 1
	return doubling(base, n, max)
}

// CheckAccounts reads every account in the database and logs, loudly, the
// ones this worker cannot serve (a warning each: name, provider,
// credentials_ref and the missing setting, never a secret), then how many
// it can. Their tasks are left to other workers; the accounts are not
// changed. It returns the accounts it cannot serve. Workers call it at
// start.
func (w *Worker) CheckAccounts(ctx context.Context) ([]*store.Account, error) {
	accounts, err := w.cfg.Store.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("check accounts: %w", err)
	}
	var unserved []*store.Account
	for _, a := range accounts {
		if err := w.serves(a); err != nil {
			unserved = append(unserved, a)
			w.log.WarnContext(ctx, "this worker has no credentials for an account: its tasks are left to other workers",
				"account", a.Name, "provider", a.Provider, "credentials_ref", a.CredentialsRef, "error", err.Error())
		}
	}
	switch {
	case len(accounts) > 0 && len(unserved) == len(accounts):
		w.log.ErrorContext(ctx, "this worker can serve none of the accounts: it will hand every task back", "accounts", len(accounts))
	default:
		w.log.InfoContext(ctx, "accounts this worker can serve", "served", len(accounts)-len(unserved), "accounts", len(accounts))
	}
	return unserved, nil
}
