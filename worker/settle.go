package worker

import (
	"context"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// canSettle reports whether the account's provider can settle an
// uncertain invitation from its own state (its client is a
// provider.Settler). It is store.BeginRequest.Settle.
func (w *Worker) canSettle(a *store.Account) bool {
	c, err := w.cfg.Clients(provider.Name(a.Provider), a.CredentialsRef)
	if err != nil {
		return false
	}
	_, ok := c.(provider.Settler)
	return ok
}

// settle asks the provider whether the target's uncertain invitation went
// out, on a reservation counted as a lookup. If it did, the target is sent
// (with the invitation id when the provider lists it) and nothing is sent
// again; if not, the target is invited at once by the same task.
func (w *Worker) settle(ctx context.Context, at *store.Attempt, c provider.Client) Decision {
	s, ok := c.(provider.Settler)
	if !ok { // cannot happen: Begin asked canSettle
		return w.invite(ctx, at, c)
	}
	res, err := s.Settle(ctx, at.Account.ProviderAccountID, at.Target.ProviderID)
	now := w.cfg.Now()
	if err != nil {
		pe := asProviderError(provider.Name(at.Account.Provider), "settle", err)
		if pe.Kind == provider.KindConfig {
			return w.configRefused(at, pe, now)
		}
		if pe.Kind == provider.KindAlreadyInvited || pe.Kind == provider.KindCannotResendYet || pe.Kind == provider.KindTooSoon ||
			pe.Kind == provider.KindNotFound || pe.Kind == provider.KindRecipient || pe.Kind == provider.KindBadInput {
			// A lookup answers none of these for a person being invited:
			// try again later, the attempt still unsettled.
			pe.Kind, pe.Scope = provider.KindTransient, provider.ScopeTransient
		}
		h := w.history(ctx, at, pe, now)
		dec := w.policy.decideError(at, pe, h, now)
		dec.Next.reason = "settling an unrecorded invitation: " + dec.Next.reason
		return dec
	}
	d := Decision{now: now, Outcome: store.OutcomeResolved, Detail: "settle: " + res.Detail, Settled: true}
	if res.Sent {
		d.SettledSent, d.InvitationID = true, res.InvitationID
		d.Next = Sent("sent (settled from the provider after an unrecorded attempt: " + res.Detail + ")")
		return d
	}
	// It did not go out: invite now, with the same task.
	d.Next = Requeue(now, "waiting: the unrecorded attempt did not reach the provider ("+res.Detail+"); inviting")
	return d
}
