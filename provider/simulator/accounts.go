package simulator

import (
	"math"
	"sort"
	"time"

	"golang.org/x/time/rate"

	"github.com/outreach-dev/outreach/provider"
)

// Account configures one sending account of one provider: a Unipile
// account_id, a Partoo API key, or an Altegio location_id.
type Account struct {
	Provider provider.Name
	ID       string
	// Limits are rolling limits on successful invitations. nil means
	// Config.DefaultLimits; an empty, non-nil slice means no limit.
	Limits []Window
	// LookupLimits limit Unipile profile lookups the same way.
	LookupLimits []Window
	// Burst is the request rate beyond which the account gets 429; the
	// zero value means Config.DefaultBurst.
	Burst Burst
	// Error, if set, is the error every request of this account answers:
	// a Unipile type such as "disconnected_account", or for Partoo and
	// Altegio one of the types listed on Scenario.Error.
	Error string
}

type accountKey struct {
	provider provider.Name
	id       string
}

// account is the live state of one account. Its slices of times stay
// sorted, so that counting a window is a binary search.
type account struct {
	cfg      Account
	limiter  *rate.Limiter
	sent     []time.Time // successful invitations
	lookups  []time.Time // Unipile profile lookups
	invites  []int       // indices into the record of successful invitations
	pending  map[string]*invitation
	ordered  []*invitation // Unipile invitations in the order sent
	invitees map[string]int
}

// invitation is a Unipile invitation.
type invitation struct {
	ID          string
	Account     string
	ProviderID  string
	PublicID    string
	Message     string
	SentAt      time.Time
	Withdrawn   bool
	WithdrawnAt time.Time
}

// SetAccount registers or reconfigures an account at run time. Its
// history (sent invitations, limits used) is kept.
func (s *Simulator) SetAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setAccountLocked(a)
}

func (s *Simulator) setAccountLocked(a Account) {
	k := accountKey{a.Provider, a.ID}
	acc := s.accounts[k]
	if acc == nil {
		acc = newAccount()
		s.accounts[k] = acc
	}
	acc.cfg = a
	acc.limiter = nil
	b := a.Burst
	if b.Rate == 0 {
		b = s.cfg.DefaultBurst
	}
	if b.Rate > 0 {
		acc.limiter = rate.NewLimiter(rate.Limit(b.Rate), max(b.Size, 1))
	}
}

func newAccount() *account {
	return &account{pending: make(map[string]*invitation), invitees: make(map[string]int)}
}

// accountFor returns the account, creating it with the defaults unless the
// simulator is strict (then nil). Callers hold s.mu.
func (s *Simulator) accountFor(p provider.Name, id string) *account {
	k := accountKey{p, id}
	if acc := s.accounts[k]; acc != nil {
		return acc
	}
	if s.cfg.Strict {
		return nil
	}
	s.setAccountLocked(Account{Provider: p, ID: id})
	return s.accounts[k]
}

func (a *account) limits(def []Window) []Window {
	if a.cfg.Limits != nil {
		return a.cfg.Limits
	}
	return def
}

func (a *account) lookupLimits(def []Window) []Window {
	if a.cfg.LookupLimits != nil {
		return a.cfg.LookupLimits
	}
	return def
}

// burst takes one token; it returns how long to wait when there is none.
func (a *account) burst(now time.Time) (time.Duration, bool) {
	if a.limiter == nil {
		return 0, true
	}
	r := a.limiter.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// countIn counts the times in (now-per, now] of a sorted slice.
func countIn(times []time.Time, now time.Time, per time.Duration) int {
	lo := sort.Search(len(times), func(i int) bool { return times[i].After(now.Add(-per)) })
	hi := sort.Search(len(times), func(i int) bool { return times[i].After(now) })
	return max(hi-lo, 0)
}

// full reports the first window that one more event at now would break.
func full(times []time.Time, now time.Time, windows []Window) (Window, bool) {
	for _, w := range windows {
		if w.Per > 0 && countIn(times, now, w.Per) >= w.Max {
			return w, true
		}
	}
	return Window{}, false
}

// insertSorted adds t, keeping times sorted (appending in the usual case).
func insertSorted(times []time.Time, t time.Time) []time.Time {
	if n := len(times); n == 0 || !t.Before(times[n-1]) {
		return append(times, t)
	}
	i := sort.Search(len(times), func(i int) bool { return times[i].After(t) })
	times = append(times, time.Time{})
	copy(times[i+1:], times[i:])
	times[i] = t
	return times
}

// usage is the highest share of a limit used after a successful send, as
// a percentage, and whether the send crossed 50, 75, 90 or 95 of it.
func usage(times []time.Time, now time.Time, windows []Window) (float64, bool) {
	best, crossed := 0.0, false
	for _, w := range windows {
		if w.Max <= 0 || w.Per <= 0 {
			continue
		}
		n := countIn(times, now, w.Per)
		pct := 100 * float64(n) / float64(w.Max)
		prev := 100 * float64(n-1) / float64(w.Max)
		for _, th := range []float64{50, 75, 90, 95} {
			if prev < th && pct >= th {
				crossed = true
			}
		}
		best = math.Max(best, pct)
	}
	return math.Round(best*100) / 100, crossed
}
