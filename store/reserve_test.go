package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// An account without limits or gap is locked FOR SHARE by a reservation:
// another reservation of it goes ahead while the first is open, and a
// change of its limits waits for it. An account with limits is locked FOR
// UPDATE: its reservations wait for each other.
func TestReservationLockModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		limits   []store.Limit
		parallel bool
	}{
		{"no limits", nil, true},
		{"limited", []store.Limit{{Action: store.ActionInvite, Max: 10, Per: time.Hour}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tc.limits...)
			now := time.Now().Add(time.Second)
			ts := queue(t, f, now, "a")
			ctx := context.Background()
			// Another reservation holds the account as Begin would.
			lock := "FOR UPDATE"
			if tc.parallel {
				lock = "FOR SHARE"
			}
			tx, err := f.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 `+lock, f.account); err != nil {
				t.Fatal(err)
			}
			// Going ahead may take a while on a busy machine; waiting is
			// seen within half a second.
			wait := 500 * time.Millisecond
			if tc.parallel {
				wait = 30 * time.Second
			}
			bctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			_, err = f.st.Begin(bctx, store.BeginRequest{TargetID: ts[0].ID, Action: store.ActionInvite, Now: now,
				Lease: time.Minute, RequestTimeout: 10 * time.Second, HoldFor: time.Minute})
			if tc.parallel && err != nil {
				t.Errorf("Begin while another reservation holds the account: %v, want it to go ahead", err)
			}
			if !tc.parallel && err == nil {
				t.Errorf("Begin while another reservation holds a limited account went ahead, want it to wait")
			}
			if tc.parallel {
				// A change of limits waits for the reservation in progress.
				sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				if err := f.st.SetLimits(sctx, f.account, []store.Limit{{Action: store.ActionInvite, Max: 1, Per: time.Hour}}); err == nil {
					t.Errorf("SetLimits went ahead while a reservation held the account, want it to wait")
				}
			}
		})
	}
}

// Limits set on an account that had none count the reservations made
// before them, in flight or answered.
func TestLimitsSetLaterCountEarlierReservations(t *testing.T) {
	t.Parallel()
	f := setup(t)
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "a", "b", "c")
	at, err := begin(f, ts[0].ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := begin(f, ts[1].ID, now); err != nil {
		t.Fatal(err)
	}
	finishSent(t, f, at, now.Add(time.Millisecond))
	if err := f.st.SetLimits(context.Background(), f.account, []store.Limit{{Action: store.ActionInvite, Max: 2, Per: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	_, err = begin(f, ts[2].ID, now.Add(time.Second))
	var nn *store.NotNowError
	if !errors.As(err, &nn) {
		t.Fatalf("begin after limits of 2 with one sent and one in flight: %v, want NotNowError", err)
	}
}
