package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
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

// TestRecordWaitsWritesWhatMatters checks which account waits the planner
// writes again: not a recorded wait whose end moved a little or whose
// count of queued tasks changed, nor a wait over within seconds (recorded
// as none: a longer one before is cleared), nor a clear of a recorded wait
// about to end; but a wait whose end moved by more than its tolerance.
func TestRecordWaitsWritesWhatMatters(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	t0 := e.clock()
	window := func(queued int, until time.Time) store.AccountWait {
		return store.AccountWait{AccountID: a, Action: store.ActionInvite, Kind: store.WaitWindow,
			Reason: fmt.Sprintf("window `invite 2 per 1s` full (%d queued)", queued), Until: until}
	}
	none := store.AccountWait{AccountID: a, Action: store.ActionInvite}
	version := func() string {
		t.Helper()
		if storetest.AccountWaits(t, e.db) == 0 {
			return ""
		}
		return storetest.AccountWaitsVersion(t, e.db)
	}
	record := func(after time.Duration, w store.AccountWait) {
		t.Helper()
		e.s.recordWaits(e.ctx, []store.AccountWait{w}, t0.Add(after))
	}

	record(0, window(2, t0.Add(30*time.Second)))
	v1 := version()
	if v1 == "" {
		t.Fatal("a wait of 30 s was not recorded")
	}
	record(time.Second, window(1, t0.Add(31*time.Second)))
	if v := version(); v != v1 {
		t.Errorf("rewritten for an end moved by 1 s and another count of queued tasks")
	}
	record(2*time.Second, window(1, t0.Add(40*time.Second)))
	v2 := version()
	if v2 == v1 {
		t.Errorf("not rewritten for an end moved by 9 s of 38")
	}
	record(3*time.Second, window(1, t0.Add(4*time.Second)))
	if v := version(); v != "" {
		t.Errorf("a wait recorded until 40 s stays when the wait ends within a second")
	}
	record(5*time.Second, window(1, t0.Add(10*time.Second)))
	v3 := version()
	if v3 == "" {
		t.Fatal("a wait of 5 s was not recorded")
	}
	record(9*time.Second, none)
	if v := version(); v != v3 {
		t.Errorf("a wait about to end was cleared, not left to end")
	}
	record(12*time.Second, window(2, t0.Add(13*time.Second)))
	if v := version(); v != v3 {
		t.Errorf("a wait of a second was recorded")
	}
}
