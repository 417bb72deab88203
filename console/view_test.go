package console

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestNextInvitation: the account list's "next invitation" is the latest
// of what holds the account's next invitation (its pause, each full
// invitation window, its gap), moved into its working hours, and says
// which; what has no known end says so instead of a time.
func TestNextInvitation(t *testing.T) {
	// A Wednesday, 10:00 UTC.
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	always := store.Account{Status: store.AccountActive, WorkStart: 0, WorkEnd: 24 * time.Hour, WorkDays: []int{1, 2, 3, 4, 5, 6, 7}}
	officeHours := always
	officeHours.WorkStart, officeHours.WorkEnd, officeHours.WorkDays = 8*time.Hour, 20*time.Hour, []int{1, 2, 3, 4, 5}
	invites := func(used int, frees time.Time, held bool) store.WindowUse {
		return store.WindowUse{Limit: store.Limit{Action: store.ActionInvite, Max: 25, Per: 24 * time.Hour}, Used: used, FreesAt: frees, Held: held}
	}
	lookupsFull := store.WindowUse{Limit: store.Limit{Action: store.ActionLookup, Max: 80, Per: 24 * time.Hour}, Used: 80,
		FreesAt: now.Add(5 * time.Hour)}
	with := func(a store.Account, f func(*store.Account)) store.Account {
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name    string
		account store.Account
		windows []store.WindowUse
		want    nextInvite
	}{
		{"nothing holds it", always, []store.WindowUse{invites(3, time.Time{}, false)}, nextInvite{}},
		{"a lookup window does not hold invitations", always, []store.WindowUse{invites(3, time.Time{}, false), lookupsFull}, nextInvite{}},
		{"the gap", with(always, func(a *store.Account) { a.NextSendAt = now.Add(90 * time.Second) }),
			[]store.WindowUse{invites(3, time.Time{}, false)},
			nextInvite{At: now.Add(90 * time.Second), Why: "gap between invitations"}},
		{"a gap already over", with(always, func(a *store.Account) { a.NextSendAt = now.Add(-time.Minute) }), nil, nextInvite{}},
		{"a full window ends after the gap", with(always, func(a *store.Account) { a.NextSendAt = now.Add(90 * time.Second) }),
			[]store.WindowUse{invites(25, now.Add(20*time.Minute), false), lookupsFull},
			nextInvite{At: now.Add(20 * time.Minute), Why: "window invite · 25 per 1d full"}},
		{"a window full of calls still out", always, []store.WindowUse{invites(25, time.Time{}, true)},
			nextInvite{Why: "window invite · 25 per 1d full of calls still out", Held: true}},
		{"paused for longer than the window", with(always, func(a *store.Account) {
			a.Status, a.PausedUntil = store.AccountPaused, now.Add(2*time.Hour)
		}), []store.WindowUse{invites(25, now.Add(20*time.Minute), false)}, nextInvite{At: now.Add(2 * time.Hour), Why: "paused"}},
		{"paused until resumed", with(always, func(a *store.Account) { a.Status = store.AccountPaused }), nil,
			nextInvite{Why: "paused until resumed", Held: true}},
		{"disabled", with(always, func(a *store.Account) { a.Status = store.AccountDisabled }), nil,
			nextInvite{Why: "disabled until resumed", Held: true}},
		{"inside working hours", officeHours, []store.WindowUse{invites(25, now.Add(time.Hour), false)},
			nextInvite{At: now.Add(time.Hour), Why: "window invite · 25 per 1d full"}},
		// The window frees at 20:30, after closing: Thursday 08:00.
		{"the window frees after closing time", officeHours, []store.WindowUse{invites(25, now.Add(10*time.Hour+30*time.Minute), false)},
			nextInvite{At: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), Why: "outside working hours"}},
		{"closed now", with(officeHours, func(a *store.Account) { a.WorkStart = 11 * time.Hour }), nil,
			nextInvite{At: now.Add(time.Hour), Why: "outside working hours"}},
		{"no working days", with(officeHours, func(a *store.Account) { a.WorkDays = nil }), nil,
			nextInvite{Why: "no working days", Held: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newAccountView(&store.ConsoleAccount{Account: tc.account, Windows: tc.windows}, now).Next
			if !got.At.Equal(tc.want.At) || got.Why != tc.want.Why || got.Held != tc.want.Held {
				t.Errorf("next invitation = %+v; want %+v", got, tc.want)
			}
		})
	}
}
