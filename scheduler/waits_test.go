package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/store"
)

// TestExplainWait checks which constraint the planner names when an
// account with due work has no slot, and the time it gives: the
// constraint that frees last, until the next slot.
func TestExplainWait(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 23 November 2026, 07:00 in Paris.
	now := time.Date(2026, 11, 23, 7, 0, 0, 0, paris)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, paris) }
	day := store.Limit{Action: store.ActionInvite, Max: 2, Per: 24 * time.Hour}
	hours := store.Account{ID: 1, Timezone: "Europe/Paris", WorkStart: 9 * time.Hour, WorkEnd: 18 * time.Hour,
		WorkDays: []int{1, 2, 3, 4, 5}}
	always := func(a store.Account) store.Account {
		a.WorkEnd, a.WorkDays = 24*time.Hour, []int{1, 2, 3, 4, 5, 6, 7}
		return a
	}
	withLimit := hours
	withLimit.Limits = []store.Limit{day}
	for _, tc := range []struct {
		name    string
		account store.Account
		recent  map[store.Limit][]time.Time
		queued  int
		action  store.Action
		want    store.AccountWait
	}{
		{
			name:    "closed: until 09:00",
			account: hours, action: store.ActionInvite,
			want: store.AccountWait{AccountID: 1, Action: "invite", Kind: "hours", Reason: "outside working hours", Until: at(9, 0)},
		},
		{
			name:    "closed, and the window frees later: the window binds",
			account: withLimit, action: store.ActionInvite,
			recent: map[store.Limit][]time.Time{day: {at(6, 0).Add(-12 * time.Hour), at(10, 30).Add(-24 * time.Hour)}},
			want: store.AccountWait{AccountID: 1, Action: "invite", Kind: "window",
				Reason: "window `invite 2 per 1 day` full", Until: at(10, 30)},
		},
		{
			name:    "closed, and the window frees earlier: the hours bind",
			account: withLimit, action: store.ActionInvite,
			recent: map[store.Limit][]time.Time{day: {at(6, 0).Add(-12 * time.Hour), at(8, 0).Add(-24 * time.Hour)}},
			want:   store.AccountWait{AccountID: 1, Action: "invite", Kind: "hours", Reason: "outside working hours", Until: at(9, 0)},
		},
		{
			name:    "a window full of requests still out",
			account: always(store.Account{ID: 2, Limits: []store.Limit{day}, Pacing: store.PacingUnlimited}), action: store.ActionInvite,
			recent: map[store.Limit][]time.Time{day: {{}}}, queued: 1,
			want: store.AccountWait{AccountID: 2, Action: "invite", Kind: "window",
				Reason: "window `invite 2 per 1 day` full of requests still out (1 queued)", Until: now},
		},
		{
			name:    "the gap",
			account: always(store.Account{ID: 3, MinGap: 10 * time.Minute, NextSendAt: now.Add(4 * time.Minute)}), action: store.ActionInvite,
			want: store.AccountWait{AccountID: 3, Action: "invite", Kind: "gap", Reason: "minimum gap between invitations",
				Until: now.Add(4 * time.Minute)},
		},
		{
			name:    "no gap for lookups",
			account: always(store.Account{ID: 3, MinGap: 10 * time.Minute, NextSendAt: now.Add(4 * time.Minute)}), action: store.ActionLookup,
			want: store.AccountWait{AccountID: 3, Action: "lookup", Kind: "pacing", Reason: "next send slot planned later", Until: now},
		},
		{
			name:    "no working days",
			account: store.Account{ID: 4, WorkEnd: 24 * time.Hour, WorkDays: []int{}}, action: store.ActionInvite,
			want: store.AccountWait{AccountID: 4, Action: "invite", Kind: "hours", Reason: "no working days (work_days is empty)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainWait(&tc.account, tc.recent, tc.action, tc.queued, time.Time{}, now)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("explainWait (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPerText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "1 day", 7 * 24 * time.Hour: "7 days", time.Hour: "1h", 10 * time.Second: "10s", 90 * time.Minute: "1h30m",
	} {
		if got := perText(d); got != want {
			t.Errorf("perText(%s) = %q, want %q", d, got, want)
		}
	}
}
