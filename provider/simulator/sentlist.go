package simulator

import (
	"strconv"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// The sent-invitations list beyond outreach's own calls: invitations sent
// by hand on LinkedIn (or by another tool), and invitations that leave the
// list because the person answered.

// InviteOutside adds a pending invitation from the Unipile account to the
// person providerID, sent at the time at outside the API (by hand, another
// tool): it shows in the sent list and can be withdrawn, but is not in
// Requests. It returns the invitation id, or "" if the account does not
// exist (a strict simulator) or already has one pending to the person.
func (s *Simulator) InviteOutside(account, providerID string, at time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accountFor(provider.Unipile, account)
	if acc == nil {
		return ""
	}
	if prev := acc.pending[providerID]; prev != nil && !prev.Withdrawn {
		return ""
	}
	p := s.personByProviderID(providerID)
	s.nextID++
	inv := &invitation{ID: strconv.FormatUint(7_200_000_000_000_000_000+s.nextID, 10), Account: account,
		ProviderID: providerID, PublicID: p.Slug, SentAt: at}
	acc.pending[providerID] = inv
	acc.ordered = append(acc.ordered, inv)
	s.invitations[inv.ID] = inv
	return inv.ID
}

// Answer makes the person providerID answer the Unipile account's pending
// invitation (accept or decline, as LinkedIn shows neither in the sent
// list): it leaves the sent list, and a cancel of it is 404. It reports
// whether there was one.
func (s *Simulator) Answer(account, providerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accounts[accountKey{provider.Unipile, account}]
	if acc == nil {
		return false
	}
	inv := acc.pending[providerID]
	if inv == nil || inv.Withdrawn {
		return false
	}
	delete(acc.pending, providerID)
	delete(s.invitations, inv.ID)
	return true
}
