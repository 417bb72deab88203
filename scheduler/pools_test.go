package scheduler

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// A pool's targets go, when planned, to the senders with slots now, in
// proportion to their slots: none to a sender whose window is full. When
// no sender has a slot, the pool's targets wait and say so. A disabled
// sender's waiting targets go back to the pool.
func TestTickSpreadsPoolTargetsBySlots(t *testing.T) {
	// Hourly windows, planned 50 minutes ahead: the waits end well after
	// the database's clock, whatever the test's own clock says.
	e := newEnv(t, func(c *Config) { c.Horizon = 50 * time.Minute })
	big, small, full := e.account("big"), e.account("small"), e.account("full")
	for id, l := range map[int64]store.Limit{
		big:   {Action: store.ActionInvite, Max: 4, Per: time.Hour},
		small: {Action: store.ActionInvite, Max: 2, Per: time.Hour},
		full:  {Action: store.ActionInvite, Max: 1, Per: 3 * time.Hour},
	} {
		if err := e.st.SetLimits(e.ctx, id, []store.Limit{l}); err != nil {
			t.Fatal(err)
		}
	}
	// The full sender sent its one invitation of the hour.
	e.exec(`INSERT INTO sends (account_id, action, reserved_at, window_at, outcome) VALUES ($1, 'invite', $2, $2, 'sent')`,
		full, e.clock().Add(-time.Minute))
	campaign, err := e.st.CreatePoolCampaign(e.ctx, store.Campaign{Name: "pool"}, []int64{big, small, full})
	if err != nil {
		t.Fatal(err)
	}
	e.add(campaign, members(1, 20)...)

	e.tick()
	queued := func() map[int64]int {
		rows, err := e.db.Query(e.ctx, `SELECT account_id, count(*) FROM targets WHERE status = 'queued' GROUP BY 1`)
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
	q := queued()
	t.Logf("queued by sender after one tick: big %d, small %d, full %d", q[big], q[small], q[full])
	if q[full] != 0 || q[small] == 0 || q[big] <= q[small] {
		t.Errorf("queued by sender: big %d, small %d, full %d; want none for the full sender and more for the bigger budget",
			q[big], q[small], q[full])
	}
	// They are sent: every sender's window is full, the pool waits and
	// says until when.
	e.exec(`WITH s AS (INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome)
			SELECT account_id, id, 'invite', $1, $1, 'sent' FROM targets WHERE status = 'queued' RETURNING target_id)
		UPDATE targets SET status = 'sent', finished_at = $1 WHERE id IN (SELECT target_id FROM s)`, e.clock())
	e.tick()
	var wait, reason string
	var until *time.Time
	if err := e.db.QueryRow(e.ctx, `SELECT wait, reason, until FROM target_waits WHERE campaign_id = $1 AND account_id IS NULL LIMIT 1`,
		campaign).Scan(&wait, &reason, &until); err != nil {
		t.Fatal(err)
	}
	if wait != "pool" || reason != "pool out of budget" || until == nil || !until.After(e.clock()) {
		t.Errorf("an unassigned target of a pool without slots waits %q: %q until %v", wait, reason, until)
	}
	// An hour later the windows are free again (not the full sender's);
	// the small sender is disabled with its targets handed back: they go
	// back to the pool, due at once.
	e.advance(time.Hour + time.Minute)
	e.tick()
	if q := queued(); q[big] != 4 || q[small] != 2 {
		t.Fatalf("queued an hour later: %v; want 4 and 2 again", q)
	}
	e.exec(`UPDATE targets SET status = 'pending', wait_reason = 'account disabled', next_attempt_at = $2
		WHERE account_id = $1 AND status = 'queued'`, small, e.clock().Add(time.Hour))
	if err := e.st.DisableAccount(e.ctx, small, "test"); err != nil {
		t.Fatal(err)
	}
	e.tick()
	var held, back int
	if err := e.db.QueryRow(e.ctx, `SELECT count(*) FILTER (WHERE account_id = $1 AND status = 'pending'),
			count(*) FILTER (WHERE account_id IS NULL AND status = 'pending' AND next_attempt_at <= $2)
		FROM targets`, small, e.clock().Add(time.Minute)).Scan(&held, &back); err != nil {
		t.Fatal(err)
	}
	if held != 0 || back != 20-6-4 {
		t.Errorf("after the small sender was disabled: it holds %d waiting targets, %d are due in the pool; want 0 and %d",
			held, back, 20-6-4)
	}
}
