package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/store"
)

func TestPlanSlots(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday
	sec := func(s float64) time.Time { return now.Add(time.Duration(s * float64(time.Second))) }
	l3per10 := store.Limit{Action: store.ActionInvite, Max: 3, Per: 10 * time.Second}
	l5per60 := store.Limit{Action: store.ActionInvite, Max: 5, Per: time.Minute}
	for _, tc := range []struct {
		name     string
		account  store.Account
		action   store.Action // invite unless set
		recent   map[store.Limit][]time.Time
		queued   int
		nextCall time.Time
		end      time.Time
		n        int
		want     []time.Time
	}{
		{
			name:    "no limits: all now",
			account: store.Account{},
			end:     sec(60), n: 3,
			want: []time.Time{now, now, now},
		},
		{
			name:    "window with room, then frees",
			account: store.Account{Limits: []store.Limit{l3per10}},
			recent:  map[store.Limit][]time.Time{l3per10: {sec(-2), sec(-5)}}, // newest first
			end:     sec(60), n: 4,
			// one free now; then the sends at -5 and -2 leave the window
			want: []time.Time{now, sec(5), sec(8)},
		},
		{
			name:    "queued tasks take the free slots first",
			account: store.Account{Limits: []store.Limit{l3per10}},
			recent:  map[store.Limit][]time.Time{l3per10: {sec(-2), sec(-5)}},
			queued:  1,
			end:     sec(60), n: 4,
			want: []time.Time{sec(5), sec(8)},
		},
		{
			name:    "a request in flight never frees inside the horizon",
			account: store.Account{Limits: []store.Limit{l3per10}},
			recent:  map[store.Limit][]time.Time{l3per10: {{}, {}, sec(-9)}},
			end:     sec(60), n: 4,
			want: []time.Time{sec(1)},
		},
		{
			name:    "the tightest of two windows wins",
			account: store.Account{Limits: []store.Limit{l3per10, l5per60}},
			recent:  map[store.Limit][]time.Time{l5per60: {sec(-1), sec(-2), sec(-3), sec(-50)}},
			end:     sec(60), n: 4,
			want: []time.Time{now, sec(10), sec(57)},
		},
		{
			name:    "minimum gap spaces slots and respects next_send_at",
			account: store.Account{MinGap: 20 * time.Second, GapJitter: 20 * time.Second, NextSendAt: sec(5)},
			end:     sec(80), n: 5,
			want: []time.Time{sec(5), sec(35), sec(65)},
		},
		{
			name: "outside working hours: the next opening",
			account: store.Account{Timezone: "Europe/Paris", WorkStart: 12 * time.Hour, WorkEnd: 13 * time.Hour,
				WorkDays: []int{1, 2, 3, 4, 5}},
			end: sec(2 * 3600), n: 1,
			want: []time.Time{now.Add(time.Hour)}, // 11:00 UTC is 12:00 in Paris
		},
		{
			name: "lookups follow their own gap, from the end of the latest lookup's gap",
			account: store.Account{Gaps: []store.Gap{{Action: store.ActionLookup, Min: 10 * time.Second, Jitter: 10 * time.Second}},
				MinGap: time.Hour},
			action:   store.ActionLookup,
			nextCall: sec(7),
			end:      sec(60), n: 5,
			want: []time.Time{sec(7), sec(22), sec(37), sec(52)},
		},
		{
			name:    "limits without a gap are spread: half of per/max plus up to as much",
			account: store.Account{Limits: []store.Limit{{Action: store.ActionInvite, Max: 10, Per: 20 * time.Second}}},
			end:     sec(6), n: 10,
			want: []time.Time{now, sec(1.5), sec(3), sec(4.5), sec(6)},
		},
		{
			name: "an account opted out (unlimited) keeps its limits without spreading",
			account: store.Account{Pacing: store.PacingUnlimited,
				Limits: []store.Limit{{Action: store.ActionInvite, Max: 3, Per: 20 * time.Second}}},
			end: sec(6), n: 10,
			want: []time.Time{now, now, now},
		},
		{
			name:    "nothing inside the horizon",
			account: store.Account{MinGap: time.Hour, NextSendAt: sec(120)},
			end:     sec(60), n: 1,
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.account.WorkDays == nil { // always open, as the schema's defaults
				tc.account.WorkEnd, tc.account.WorkDays = 24*time.Hour, []int{1, 2, 3, 4, 5, 6, 7}
			}
			if tc.action == "" {
				tc.action = store.ActionInvite
			}
			got := planSlots(&tc.account, tc.recent, tc.action, tc.queued, tc.nextCall, now, tc.end, tc.n)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("planSlots (-want +got):\n%s", diff)
			}
		})
	}
}
