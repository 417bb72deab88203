package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestCampaignCountsFollowTheTargets changes targets the ways the system
// and its users do (insert in bulk, end, retry, change a reason, delete,
// delete a campaign), from several connections at once while other
// connections fold the counters, and checks that the console's counts and
// reasons equal a count of the targets themselves.
func TestCampaignCountsFollowTheTargets(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{})
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	var other int64
	if err := f.db.QueryRow(ctx, `INSERT INTO campaigns (name, account_id) VALUES ('other', $1) RETURNING id`, f.account).Scan(&other); err != nil {
		t.Fatal(err)
	}
	// One bulk insert per campaign, some already ended as a user may load them.
	exec(`INSERT INTO targets (campaign_id, identifier, status, error_type)
		SELECT c, 'p-' || c || '-' || i, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'pending' END,
			CASE WHEN i % 10 = 0 THEN 'invalid_recipient' END
		FROM unnest($1::bigint[]) c, generate_series(1, 400) i`, []int64{f.campaign, other})

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := w*100 + i + 1
				var sql string
				switch id % 5 {
				case 0:
					sql = `UPDATE targets SET status = 'sent', finished_at = now() WHERE identifier = $1`
				case 1:
					sql = `UPDATE targets SET status = 'skipped', error_type = 'already_connected' WHERE identifier = $1`
				case 2:
					sql = `UPDATE targets SET status = 'failed', error_type = NULL, last_error = 'boom ' || $1 WHERE identifier = $1`
				case 3:
					sql = `UPDATE targets SET status = 'queued' WHERE identifier = $1`
				default:
					sql = `UPDATE targets SET status = 'pending', error_type = NULL, last_error = NULL WHERE identifier = $1`
				}
				for _, c := range []int64{f.campaign, other} {
					if _, err := f.db.Exec(ctx, sql, fmt.Sprintf("p-%d-%d", c, id)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := f.st.FoldCampaignCounts(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Some invitations are accepted, one of them twice (a webhook and a
	// poll); one acceptance is taken back by hand.
	exec(`UPDATE targets SET accepted_at = now() WHERE status = 'sent' AND identifier LIKE '%5'`)
	exec(`UPDATE targets SET accepted_at = now() WHERE status = 'sent' AND identifier LIKE '%5'`)
	exec(`UPDATE targets SET accepted_at = NULL WHERE campaign_id = $1 AND status = 'sent' AND identifier LIKE '%15'`, f.campaign)
	// A reason changes on an ended target; a few targets are deleted.
	exec(`UPDATE targets SET error_type = 'user_unreachable' WHERE campaign_id = $1 AND status = 'failed' AND identifier LIKE '%0'`, f.campaign)
	exec(`DELETE FROM targets WHERE campaign_id = $1 AND identifier LIKE '%7'`, f.campaign)
	// Some targets move to the other campaign, ended or not (00014 moved a
	// target's total only when it had ended).
	exec(`UPDATE targets SET campaign_id = $2 WHERE campaign_id = $1 AND identifier LIKE '%3'`, f.campaign, other)
	check := func(when string) {
		t.Helper()
		got, err := f.st.ConsoleCampaigns(ctx, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			rows, err := f.db.Query(ctx, `SELECT status, count(*) FROM targets WHERE campaign_id = $1 GROUP BY 1`, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{}
			total := 0
			for rows.Next() {
				var st string
				var n int
				if err := rows.Scan(&st, &n); err != nil {
					t.Fatal(err)
				}
				want[st], total = n, total+n
			}
			rows.Close()
			for _, st := range store.TargetStatuses() {
				if c.Counts[string(st)] != want[string(st)] {
					t.Errorf("%s: campaign %s: %d %s, targets say %d", when, c.Name, c.Counts[string(st)], st, want[string(st)])
				}
			}
			var accepted int
			if err := f.db.QueryRow(ctx, `SELECT count(*) FROM targets WHERE campaign_id = $1 AND accepted_at IS NOT NULL`, c.ID).Scan(&accepted); err != nil {
				t.Fatal(err)
			}
			if c.Accepted != accepted || accepted == 0 {
				t.Errorf("%s: campaign %s: %d accepted, targets say %d (want some)", when, c.Name, c.Accepted, accepted)
			}
			if c.Total != total {
				t.Errorf("%s: campaign %s: total %d, targets say %d", when, c.Name, c.Total, total)
			}
			var top int
			if err := f.db.QueryRow(ctx, `SELECT count(*) FROM targets WHERE campaign_id = $1 AND status = 'failed'
				AND error_type = 'user_unreachable'`, c.ID).Scan(&top); err != nil {
				t.Fatal(err)
			}
			found := top == 0
			for _, r := range c.Reasons {
				if r.Status == "failed" && r.Reason == "user_unreachable" {
					found = r.Count == top
				}
			}
			if !found {
				t.Errorf("%s: campaign %s: reasons %+v, want failed user_unreachable %d", when, c.Name, c.Reasons, top)
			}
		}
	}
	ca, err := f.st.ConsoleAccount(ctx, f.account, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var acceptedByAccount int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM targets WHERE accepted_at IS NOT NULL`).Scan(&acceptedByAccount); err != nil {
		t.Fatal(err)
	}
	if ca.AcceptedDay != acceptedByAccount || ca.AcceptedWeek != acceptedByAccount || ca.Campaigns != 2 {
		t.Errorf("console account: accepted %d today, %d this week, %d campaigns; want %d, %d, 2",
			ca.AcceptedDay, ca.AcceptedWeek, ca.Campaigns, acceptedByAccount, acceptedByAccount)
	}
	check("before the last fold")
	if _, err := f.st.FoldCampaignCounts(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the last fold")
	var rowsLeft int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM campaign_counts`).Scan(&rowsLeft); err != nil {
		t.Fatal(err)
	}
	var keys int
	if err := f.db.QueryRow(ctx, `SELECT count(DISTINCT (campaign_id, status, coalesce(error_type, ''))) + 2 FROM targets
		WHERE status IN ('sent', 'skipped', 'failed')`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if rowsLeft > keys {
		t.Errorf("%d counter rows after a fold; want at most %d: one per campaign, status and reason", rowsLeft, keys)
	}
	// A deleted campaign's counters go with the next fold.
	exec(`DELETE FROM campaigns WHERE id = $1`, other)
	if _, err := f.st.FoldCampaignCounts(ctx); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM campaign_counts WHERE campaign_id = $1`, other).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d counter rows of a deleted campaign after a fold", orphans)
	}
}
