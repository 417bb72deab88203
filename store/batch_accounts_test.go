package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// other makes another Unipile account (limits as given, no default pacing)
// with a campaign of its own, on f's database.
func (f fixture) other(t *testing.T, name string, limits ...store.Limit) fixture {
	t.Helper()
	ctx := context.Background()
	acc, err := f.st.CreateAccount(ctx, store.NewAccount{Name: name, Provider: "unipile", ProviderAccountID: "u-" + name,
		Limits: limits, Pacing: store.PacingUnlimited})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "c-" + name, AccountID: acc, MessageTemplate: "Hi {{.FirstName}}"})
	if err != nil {
		t.Fatal(err)
	}
	f.account, f.campaign = acc, camp
	return f
}

// mixedReq is a batch of targets of several accounts, each named with its
// own.
func mixedReq(now time.Time, ts ...*store.Target) store.BatchRequest {
	req := store.BatchRequest{Action: store.ActionInvite, Now: now, Lease: time.Minute, RequestTimeout: 10 * time.Second,
		HoldFor: time.Minute}
	for _, t := range ts {
		req.Targets = append(req.Targets, store.BatchTarget{TargetID: t.ID, TaskGen: t.TaskGen, AccountID: t.AccountID})
	}
	return req
}

// A batch of several accounts reserves for each what its own windows allow,
// counted from its own ledger rows: the others leave with when their
// account's window frees a place, and a target planned for another account
// than its own now leaves for the single path. Each ledger row is its
// target's account's.
func TestBeginBatchAcrossAccounts(t *testing.T) {
	t.Parallel()
	a := setup(t, store.Limit{Action: store.ActionInvite, Max: 2, Per: time.Hour})
	b := a.other(t, "b", store.Limit{Action: store.ActionInvite, Max: 1, Per: time.Hour})
	c := a.other(t, "c")
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	as := queue(t, a, now, "a1", "a2", "a3")
	bs := queue(t, b, now, "b1", "b2")
	cs := queue(t, c, now, "c1", "c2")
	// b's window is full: an invitation answered ten minutes ago.
	sentAt := now.Add(-10 * time.Minute).Truncate(time.Microsecond)
	if _, err := a.db.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at, outcome, window_at)
		VALUES ($1, $2, 'invite', $3, 'sent', $3)`, b.account, bs[0].ID, sentAt); err != nil {
		t.Fatal(err)
	}
	// c2 was planned for account a (it moved since).
	moved := *cs[1]
	moved.AccountID = a.account
	res, err := a.st.BeginBatch(ctx, mixedReq(now, as[0], as[1], as[2], bs[1], cs[0], &moved))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{} // target: ledger row's account
	for _, at := range res.Attempts {
		var account int64
		if err := a.db.QueryRow(ctx, `SELECT account_id FROM sends WHERE id = $1`, at.SendID).Scan(&account); err != nil {
			t.Fatal(err)
		}
		if account != at.Target.AccountID || at.Account.ID != at.Target.AccountID {
			t.Errorf("target %d of account %d: ledger row of account %d, attempt's account %d", at.Target.ID, at.Target.AccountID,
				account, at.Account.ID)
		}
		got[at.Target.ID] = account
	}
	if len(got) != 3 || got[as[0].ID] != a.account || got[as[1].ID] != a.account || got[cs[0].ID] != c.account {
		t.Fatalf("reserved %v, want a1 and a2 (a's room) and c1 (no limits)", got)
	}
	var nr *store.NoRoomError
	// a's window holds its two reservations, still in flight: no telling
	// when they leave it, so a second from now.
	if err := leftErr(res, as[2].ID); !errors.As(err, &nr) || !nr.Until.Equal(now.Add(time.Second)) || !errors.Is(err, store.ErrSingle) {
		t.Errorf("a3 beyond a's room: %v, want no room until %v (ErrSingle to the single path)", err, now.Add(time.Second))
	}
	if err := leftErr(res, bs[1].ID); !errors.As(err, &nr) || !nr.Until.Equal(sentAt.Add(time.Hour)) ||
		nr.Reason != "limit invite 1 per 1h0m0s reached" {
		t.Errorf("b2 with b's window full: %v, want no room until %v", err, sentAt.Add(time.Hour))
	}
	if err := leftErr(res, cs[1].ID); !errors.Is(err, store.ErrSingle) || errors.As(err, &nr) {
		t.Errorf("c2 planned for another account: %v, want ErrSingle", err)
	}
}

// One person among the targets of two accounts of the same batch is
// claimed by one account only (one owner per person): the other target
// leaves for Begin, which skips it with the owner's name.
func TestBeginBatchOnePersonTwoAccounts(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := a.other(t, "b")
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ta := queue(t, a, now, "same-person")
	tb := queue(t, b, now, "same-person")
	res, err := a.st.BeginBatch(ctx, mixedReq(now, ta[0], tb[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attempts) != 1 || len(res.Left) != 1 || !errors.Is(res.Left[0].Err, store.ErrSingle) {
		t.Fatalf("reserved %d, left %+v; want one reserved and the other left for Begin", len(res.Attempts), res.Left)
	}
	var owner int64
	if err := a.db.QueryRow(ctx, `SELECT account_id FROM person_owners WHERE provider_id = 'same-person'`).Scan(&owner); err != nil ||
		owner != res.Attempts[0].Account.ID {
		t.Errorf("owner %d %v, want the reserving account %d", owner, err, res.Attempts[0].Account.ID)
	}
}

// Batches of overlapping accounts reserved at the same time lock the
// accounts in one order: none deadlocks, and no account gets more than its
// window allows, whatever the mix.
func TestBeginBatchesAcrossAccountsConcurrently(t *testing.T) {
	t.Parallel()
	const accounts, per, limit = 4, 16, 5
	f := setup(t, store.Limit{Action: store.ActionInvite, Max: limit, Per: time.Hour})
	now := time.Now().Add(time.Second)
	fs := []fixture{f}
	for i := 1; i < accounts; i++ {
		fs = append(fs, f.other(t, fmt.Sprintf("acc%d", i), store.Limit{Action: store.ActionInvite, Max: limit, Per: time.Hour}))
	}
	var all [][]*store.Target
	for i, fx := range fs {
		var ids []string
		for j := range per {
			ids = append(ids, fmt.Sprintf("p%d-%d", i, j))
		}
		all = append(all, queue(t, fx, now, ids...))
	}
	// The pool's connections open first, so that the batches overlap.
	var warm sync.WaitGroup
	for range 8 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if _, err := f.st.BeginBatch(context.Background(), mixedReq(now)); err != nil {
				t.Error(err)
			}
		}()
	}
	warm.Wait()
	// Eight batches, each taking targets of every account in a different
	// order of accounts.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var mu sync.Mutex
	left := map[int64][]string{}
	for g := range 8 {
		var ts []*store.Target
		for k := range accounts {
			acc := (g + k) % accounts
			ts = append(ts, all[acc][g], all[acc][g+8])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.st.BeginBatch(context.Background(), mixedReq(now, ts...))
			if res != nil {
				mu.Lock()
				for _, l := range res.Left {
					left[l.AccountID] = append(left[l.AccountID], l.Err.Error())
				}
				mu.Unlock()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("batch: %v", err)
		}
	}
	for _, fx := range fs {
		var n int
		if err := f.db.QueryRow(context.Background(), `SELECT count(*) FROM sends WHERE account_id = $1`, fx.account).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > limit {
			t.Errorf("account %d: %d reservations, want at most %d", fx.account, n, limit)
		}
		if n == 0 {
			t.Errorf("account %d: no reservation; its targets left with %q", fx.account, left[fx.account])
		}
	}
}
