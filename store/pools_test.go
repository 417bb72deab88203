package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

func addPoolTargets(t *testing.T, st *store.Store, campaign int64, prefix string, n int) {
	t.Helper()
	var nt []store.NewTarget
	for i := range n {
		nt = append(nt, store.NewTarget{Identifier: fmt.Sprintf("%s-%03d", prefix, i)})
	}
	if _, err := st.AddTargets(context.Background(), campaign, nt); err != nil {
		t.Fatal(err)
	}
}

func claimN(t *testing.T, st *store.Store, account int64, n int, now time.Time) []*store.Target {
	t.Helper()
	got, err := st.ClaimTargets(context.Background(), account, false, n, now.Add(time.Hour), now,
		func(store.Claimed) store.Prepared { return store.Prepared{Message: "hi"} })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Two campaigns on one account with weights 1 and 3 share its slots 1:3,
// counting what each has queued and what the ledger says each sent.
func TestCampaignsShareAnAccountByWeight(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	heavy, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "heavy", AccountID: f.account})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetCampaignShare(ctx, heavy, 3, 0); err != nil {
		t.Fatal(err)
	}
	addPoolTargets(t, f.st, f.campaign, "light", 100)
	addPoolTargets(t, f.st, heavy, "heavy", 100)
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	count := map[int64]int{}
	for round := range 2 {
		for range 10 {
			for _, tg := range claimN(t, f.st, f.account, 4, now) {
				count[tg.CampaignID]++
			}
		}
		if count[f.campaign] != 10*(round+1) || count[heavy] != 30*(round+1) {
			t.Fatalf("after %d claims of 4: light %d, heavy %d; want %d and %d", 10*(round+1), count[f.campaign], count[heavy],
				10*(round+1), 30*(round+1))
		}
		// The queued ones are sent: from now on the ledger counts them.
		if _, err := f.db.Exec(ctx, `WITH s AS (INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome)
				SELECT account_id, id, 'invite', now(), now(), 'sent' FROM targets WHERE status = 'queued' RETURNING target_id)
			UPDATE targets SET status = 'sent', finished_at = now() WHERE id IN (SELECT target_id FROM s)`); err != nil {
			t.Fatal(err)
		}
	}
	// Weight 1 alone: a single campaign takes every slot, oldest first.
	if err := f.st.SetCampaignStatus(ctx, heavy, store.CampaignPaused); err != nil {
		t.Fatal(err)
	}
	if got := claimN(t, f.st, f.account, 5, now); len(got) != 5 {
		t.Errorf("a single active campaign got %d of 5 slots", len(got))
	}
}

// A campaign's daily cap counts its invitations in the ledger over the
// last day and its queued targets; an older invitation no longer counts.
func TestCampaignDailyCap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if err := f.st.SetCampaignShare(ctx, f.campaign, 1, 3); err != nil {
		t.Fatal(err)
	}
	addPoolTargets(t, f.st, f.campaign, "p", 10)
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got := claimN(t, f.st, f.account, 10, now); len(got) != 3 {
		t.Fatalf("claimed %d under a daily cap of 3", len(got))
	}
	if got := claimN(t, f.st, f.account, 10, now); len(got) != 0 {
		t.Fatalf("claimed %d more with 3 queued under a daily cap of 3", len(got))
	}
	if _, err := f.db.Exec(ctx, `WITH s AS (INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome)
			SELECT account_id, id, 'invite', now(), now(), 'sent' FROM targets WHERE status = 'queued' RETURNING target_id)
		UPDATE targets SET status = 'sent', finished_at = now() WHERE id IN (SELECT target_id FROM s)`); err != nil {
		t.Fatal(err)
	}
	if got := claimN(t, f.st, f.account, 10, now); len(got) != 0 {
		t.Fatalf("claimed %d with 3 sent today under a daily cap of 3", len(got))
	}
	if _, err := f.db.Exec(ctx, `UPDATE sends SET window_at = now() - interval '25 hours', reserved_at = now() - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	if got := claimN(t, f.st, f.account, 10, now); len(got) != 3 {
		t.Fatalf("claimed %d the next day under a daily cap of 3", len(got))
	}
}

// A pool's targets have no sender until planned; each goes to the sender
// with the most room; a paused sender's targets go back to the pool unless
// an invitation may have gone out; a sender taken out of the pool gives
// its targets back; target_waits says when the whole pool is out of
// budget.
func TestPoolAssignsAndMovesTargets(t *testing.T) {
	t.Parallel()
	st, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	ctx := context.Background()
	var accs []int64
	for i := range 3 {
		id, err := st.CreateAccount(ctx, store.NewAccount{Name: fmt.Sprintf("s%d", i), Provider: "unipile",
			ProviderAccountID: fmt.Sprintf("u%d", i), Pacing: store.PacingUnlimited})
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, id)
	}
	other, err := st.CreateAccount(ctx, store.NewAccount{Name: "partoo", Provider: "partoo", ProviderAccountID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreatePoolCampaign(ctx, store.Campaign{Name: "pool"}, accs)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddSender(ctx, camp, other); err == nil || !strings.Contains(err.Error(), "partoo") {
		t.Errorf("adding a Partoo account to a Unipile pool: %v, want refused", err)
	}
	addPoolTargets(t, st, camp, "p", 10)
	if _, err := st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	senders := func() map[int64]int {
		rows, err := db.Query(ctx, `SELECT coalesce(account_id, 0), count(*) FROM targets WHERE status = 'pending' GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int64]int{}
		for rows.Next() {
			var a int64
			var n int
			if err := rows.Scan(&a, &n); err != nil {
				t.Fatal(err)
			}
			out[a] = n
		}
		return out
	}
	if got := senders(); got[0] != 10 {
		t.Fatalf("pending targets by sender after insert: %v; want all 10 without one", got)
	}
	now := time.Now()
	given, err := st.AssignPoolTargets(ctx, false, []store.SenderRoom{{AccountID: accs[0], N: 4}, {AccountID: accs[1], N: 2}}, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if given[accs[0]] != 4 || given[accs[1]] != 2 || given[accs[2]] != 0 {
		t.Fatalf("given %v; want 4 to the first, 2 to the second, none to the third (no room)", given)
	}
	// Asked again with the same room, the senders have it taken already.
	if given, err := st.AssignPoolTargets(ctx, false, []store.SenderRoom{{AccountID: accs[0], N: 4}}, now.Add(time.Minute)); err != nil || len(given) != 0 {
		t.Fatalf("given again %v, %v; want nothing (its room is taken)", given, err)
	}
	if got := claimN(t, st, accs[0], 10, now); len(got) != 4 {
		t.Fatalf("the first sender claimed %d, want its 4", len(got))
	}
	// One of the second sender's targets has an invitation in flight.
	if _, err := db.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at)
		SELECT account_id, id, 'invite', now() FROM targets WHERE account_id = $1 ORDER BY id LIMIT 1`, accs[1]); err != nil {
		t.Fatal(err)
	}
	if err := st.PauseAccount(ctx, accs[1], now.Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	moved, err := st.ReleaseStoppedSenders(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if moved != 1 {
		t.Errorf("moved %d targets of the paused sender, want 1 (the other may have been invited)", moved)
	}
	if got := senders(); got[accs[1]] != 1 || got[0] != 5 {
		t.Errorf("pending by sender after the pause: %v; want 1 kept by the paused sender, 5 in the pool", got)
	}
	// The whole pool out of budget: every active sender has no slot.
	until := now.Add(10 * time.Minute)
	if _, err := st.SetAccountWaits(ctx, []store.AccountWait{
		{AccountID: accs[0], Action: store.ActionInvite, Kind: store.WaitWindow, Reason: "window full", Until: until},
		{AccountID: accs[2], Action: store.ActionInvite, Kind: store.WaitWindow, Reason: "window full", Until: until.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	var wait, reason string
	if err := db.QueryRow(ctx, `SELECT wait, reason FROM target_waits WHERE campaign_id = $1 AND account_id IS NULL LIMIT 1`,
		camp).Scan(&wait, &reason); err != nil {
		t.Fatal(err)
	}
	if wait != "pool" || reason != "pool out of budget" {
		t.Errorf("an unassigned target of a pool out of budget waits %q: %q", wait, reason)
	}
	// outreach status reads the same (store.CampaignProgress).
	progress, err := st.CampaignProgress(ctx, "pool")
	if err != nil || len(progress) != 1 {
		t.Fatalf("campaign progress: %v, %v", progress, err)
	}
	var shown bool
	for _, w := range progress[0].Waiting {
		if w.Wait == "pool" && w.Reason == "pool out of budget" && w.Count == 5 && w.Until != nil && w.Until.Equal(until.Truncate(time.Microsecond)) {
			shown = true
		}
	}
	if !shown {
		t.Errorf("status shows the pool's waits as %+v; want 5 pool out of budget until %s", progress[0].Waiting, until)
	}
	// Taking the first sender out of the pool gives back its pending
	// targets (none: its 4 are queued) and keeps the campaign going.
	if _, err := db.Exec(ctx, `UPDATE targets SET status = 'pending' WHERE account_id = $1 AND status = 'queued'`, accs[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveSender(ctx, camp, accs[0]); err != nil {
		t.Fatal(err)
	}
	if got := senders(); got[accs[0]] != 0 || got[0] != 9 {
		t.Errorf("pending by sender after the first left the pool: %v; want its 4 back in the pool (9)", got)
	}
	if err := st.RemoveSender(ctx, camp, accs[2]); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveSender(ctx, camp, accs[1]); err == nil {
		t.Error("removed the campaign's last sender")
	}
}

// The daily cap holds in the reservation too, whatever the claims let
// through (tasks queued before the cap was set, two schedulers): the
// campaign's invitations of the last day are counted from the ledger.
func TestDailyCapHoldsAtReservation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	t0 := time.Now().Add(time.Second)
	ts := queue(t, f, t0, "a", "b", "c")
	if err := f.st.SetCampaignShare(context.Background(), f.campaign, 1, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		at, err := begin(f, ts[i].ID, t0)
		if err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		finishSent(t, f, at, t0.Add(time.Duration(i+1)*time.Second))
	}
	_, err := begin(f, ts[2].ID, t0.Add(3*time.Second))
	var nn *store.NotNowError
	if !errors.As(err, &nn) || !strings.Contains(nn.Reason, "daily cap") {
		t.Fatalf("third begin under a daily cap of 2: %v, want a NotNowError for the cap", err)
	}
	if want := t0.Add(time.Second + 24*time.Hour).Truncate(time.Microsecond); !nn.Until.Equal(want) || !nn.Released {
		t.Errorf("Until = %v (released %v), want %v, handed back", nn.Until, nn.Released, want)
	}
}

// One target per person in a pool: a second identifier of a person the
// pool already has is skipped as a duplicate, in the same batch of new
// targets or when it is planned later; a person in two pools is in both.
func TestPoolKeepsOneTargetPerPerson(t *testing.T) {
	t.Parallel()
	st, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	ctx := context.Background()
	var accs []int64
	for i := range 2 {
		id, err := st.CreateAccount(ctx, store.NewAccount{Name: fmt.Sprintf("s%d", i), Provider: "unipile",
			ProviderAccountID: fmt.Sprintf("u%d", i), Pacing: store.PacingUnlimited})
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, id)
	}
	one, err := st.CreatePoolCampaign(ctx, store.Campaign{Name: "one"}, accs)
	if err != nil {
		t.Fatal(err)
	}
	two, err := st.CreatePoolCampaign(ctx, store.Campaign{Name: "two"}, accs)
	if err != nil {
		t.Fatal(err)
	}
	// Every identifier "ann-*" is the same person.
	person := func(_ provider.Name, id string) store.Normalized {
		if strings.HasPrefix(id, "ann-") {
			return store.Normalized{Identifier: id, ProviderID: "ACoAnn"}
		}
		return store.Normalized{Identifier: id, ProviderID: id}
	}
	prepare := func() {
		if _, err := st.PrepareTargets(ctx, 1000, person); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddTargets(ctx, one, []store.NewTarget{{Identifier: "ann-1"}, {Identifier: "ann-2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTargets(ctx, two, []store.NewTarget{{Identifier: "ann-1"}}); err != nil {
		t.Fatal(err)
	}
	prepare()
	now := time.Now()
	rooms := []store.SenderRoom{{AccountID: accs[0], N: 5}, {AccountID: accs[1], N: 5}}
	if _, err := st.AssignPoolTargets(ctx, false, rooms, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTargets(ctx, one, []store.NewTarget{{Identifier: "ann-3"}}); err != nil {
		t.Fatal(err)
	}
	prepare()
	if _, err := st.AssignPoolTargets(ctx, false, rooms, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT c.name || '/' || t.identifier, t.status, coalesce(t.error_type, ''), t.account_id IS NOT NULL
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var k, status, typ string
		var assigned bool
		if err := rows.Scan(&k, &status, &typ, &assigned); err != nil {
			t.Fatal(err)
		}
		got[k] = fmt.Sprintf("%s %s %v", status, typ, assigned)
	}
	want := map[string]string{
		"one/ann-1": "pending  true",           // the first
		"one/ann-2": "skipped duplicate false", // same batch
		"one/ann-3": "skipped duplicate false", // planned later
		"two/ann-1": "pending  true",           // another pool
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	var senders int
	if err := db.QueryRow(ctx, `SELECT count(DISTINCT account_id) FROM targets WHERE status = 'pending'`).Scan(&senders); err != nil {
		t.Fatal(err)
	}
	if senders != 2 {
		t.Errorf("Ann's two targets (two pools) went to %d senders; want one each (an account invites a person once)", senders)
	}
}
