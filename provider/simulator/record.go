package simulator

import (
	"cmp"
	"slices"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// Request is one request the simulator answered, as recorded.
type Request struct {
	// Seq numbers the requests from 1 in the order they were answered.
	Seq int
	// Time is when it was answered, by the simulator's clock.
	Time     time.Time
	Provider provider.Name
	// Op is "invite", "resolve", "list_sent" or "cancel".
	Op string
	// Account is the Unipile account_id, the Partoo API key or the Altegio
	// location_id ("" when the request was refused before it was known).
	Account string
	// Recipient is the Unipile provider_id (for a lookup, the identifier;
	// for a cancel, the invitation id), the Partoo user_id or the Altegio
	// search.
	Recipient string
	// Status is the HTTP status answered.
	Status int
	// Outcome is "sent" for a successful invitation, "ok" for another
	// successful call, else the error type answered (such as
	// "limit_exceeded", "too_many_requests", "invalid_credentials").
	Outcome string
	// InvitationID is the id of a sent Unipile invitation.
	InvitationID string
	// Usage is the usage percentage reported with the answer, 0 if none.
	Usage float64
}

// OutcomeSent is the Outcome of a successful invitation.
const OutcomeSent = "sent"

type dupKey struct {
	provider  provider.Name
	account   string
	recipient string
}

// Duplicate is a person successfully invited more than once by one account.
type Duplicate struct {
	Provider  provider.Name
	Account   string
	Recipient string
	Count     int
}

// Violation is a rolling window that the successful invitations of one
// account exceeded.
type Violation struct {
	Provider provider.Name
	Account  string
	Window   Window
	// At is when the first invitation over the limit was sent, and Count
	// the most invitations seen in one span of the window.
	At    time.Time
	Count int
}

// add records r and returns it with its Seq. Callers hold s.mu.
func (s *Simulator) add(r Request, acc *account) Request {
	r.Seq = len(s.record) + 1
	s.record = append(s.record, r)
	if r.Outcome == OutcomeSent && acc != nil {
		acc.invites = append(acc.invites, r.Seq-1)
		acc.invitees[r.Recipient]++
		if acc.invitees[r.Recipient] > 1 {
			s.dups[dupKey{r.Provider, r.Account, r.Recipient}] = acc.invitees[r.Recipient]
		}
	}
	return r
}

// Requests returns a copy of every recorded request, in order.
func (s *Simulator) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.record)
}

// Invites returns the successful invitations sent by account (of any
// provider), in order.
func (s *Simulator) Invites(account string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for k, acc := range s.accounts {
		if k.id != account {
			continue
		}
		for _, i := range acc.invites {
			out = append(out, s.record[i])
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// SentCount returns how many invitations succeeded in all.
func (s *Simulator) SentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, acc := range s.accounts {
		n += len(acc.invites)
	}
	return n
}

// DuplicateInvites lists every person successfully invited more than once
// by the same account, sorted by provider, account and recipient.
func (s *Simulator) DuplicateInvites() []Duplicate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Duplicate, 0, len(s.dups))
	for k, n := range s.dups {
		out = append(out, Duplicate{Provider: k.provider, Account: k.account, Recipient: k.recipient, Count: n})
	}
	slices.SortFunc(out, func(a, b Duplicate) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Recipient, b.Recipient))
	})
	return out
}

// LimitViolations checks the record of successful invitations of every
// account against windows (rolling: any span of length Per holds at most
// Max) and returns one Violation per account and window exceeded, sorted by
// provider and account. It reads the record only, not the simulator's own
// limits, so end-to-end tests can check the limits they configured.
func (s *Simulator) LimitViolations(windows []Window) []Violation {
	s.mu.Lock()
	type acct struct {
		k     accountKey
		times []time.Time
	}
	var all []acct
	for k, acc := range s.accounts {
		if len(acc.invites) == 0 {
			continue
		}
		times := make([]time.Time, len(acc.invites))
		for i, idx := range acc.invites {
			times[i] = s.record[idx].Time
		}
		all = append(all, acct{k, times})
	}
	s.mu.Unlock()

	var out []Violation
	for _, a := range all {
		slices.SortFunc(a.times, func(x, y time.Time) int { return x.Compare(y) })
		for _, w := range windows {
			if v, ok := violation(a.times, w); ok {
				v.Provider, v.Account = a.k.provider, a.k.id
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Window.Per, b.Window.Per), cmp.Compare(a.Window.Max, b.Window.Max))
	})
	return out
}

// violation slides window w over sorted times with two pointers.
func violation(times []time.Time, w Window) (Violation, bool) {
	var v Violation
	if w.Per <= 0 {
		return v, false
	}
	found := false
	j := 0
	for i, t := range times {
		for !times[j].After(t.Add(-w.Per)) {
			j++
		}
		if n := i - j + 1; n > w.Max {
			if !found {
				v = Violation{Window: w, At: t}
				found = true
			}
			v.Count = max(v.Count, n)
		}
	}
	return v, found
}
