package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// addTargets adds n targets t1..tn to the fixture's campaign and returns
// their ids in order.
func addTargets(t *testing.T, f fixture, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var nt []store.NewTarget
	for i := 1; i <= n; i++ {
		nt = append(nt, store.NewTarget{Identifier: fmt.Sprintf("t%d", i)})
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, nt); err != nil {
		t.Fatal(err)
	}
	rows, _ := f.db.Query(ctx, `SELECT id FROM targets WHERE campaign_id = $1 ORDER BY id`, f.campaign)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// allEvents reads the whole stream once every committed event is
// readable: the horizon is the oldest transaction running in the whole
// cluster, so another test's open transaction can hold it back a moment.
func allEvents(t *testing.T, f fixture) []store.Event {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := f.db.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		evs, err := f.st.EventsAfter(ctx, store.EventCursor{}, store.EventFilter{}, 100000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d committed events readable after 60s: a transaction stays open", len(evs), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exec(t *testing.T, f fixture, sql string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Each change a user cares about is one event, whoever writes it: a
// batch UPDATE of targets (one statement) gives one event per target that
// reached a terminal status and one notification; other updates give
// none; accounts and campaigns likewise.
func TestEventsFromTriggers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	ids := addTargets(t, f, 4)

	conn, err := f.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+store.EventsChannel); err != nil {
		t.Fatal(err)
	}
	// notifications counts those that come, waiting for the first want
	// of them as long as a busy machine may need, then briefly for more.
	notifications := func(want int) int {
		n := 0
		for {
			wait := quiet
			if n < want {
				wait = expected
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			_, err := conn.Conn().WaitForNotification(wctx)
			cancel()
			if err != nil {
				return n
			}
			n++
		}
	}

	// Not terminal: no event.
	exec(t, f, `UPDATE targets SET status = 'queued' WHERE campaign_id = $1`, f.campaign)
	exec(t, f, `UPDATE targets SET attempts = attempts + 1 WHERE campaign_id = $1`, f.campaign)
	if evs := allEvents(t, f); len(evs) != 0 {
		t.Fatalf("events after non-terminal updates: %+v", evs)
	}
	if n := notifications(0); n != 0 {
		t.Fatalf("%d notifications for no event", n)
	}
	// One statement, three targets terminal.
	exec(t, f, `UPDATE targets SET status = CASE id WHEN $2 THEN 'failed' ELSE 'sent' END, last_error = CASE id WHEN $2 THEN 'bad' END,
		invitation_id = CASE id WHEN $2 THEN NULL ELSE 'inv' || id END WHERE id = ANY ($1)`, ids[:3], ids[1])
	if n := notifications(1); n != 1 {
		t.Fatalf("notifications for one statement: %d, want 1", n)
	}
	// Terminal again to the same status: nothing new; a different one: one.
	exec(t, f, `UPDATE targets SET status = 'sent', updated_at = now() WHERE id = $1`, ids[0])
	exec(t, f, `UPDATE targets SET status = 'skipped', last_error = 'already connected' WHERE id = $1`, ids[3])
	exec(t, f, `UPDATE accounts SET status = 'paused', paused_until = now() + interval '1 hour', pause_reason = '429' WHERE id = $1`, f.account)
	exec(t, f, `UPDATE accounts SET next_send_at = now() WHERE id = $1`, f.account)
	exec(t, f, `UPDATE accounts SET status = 'disabled', paused_until = NULL, pause_reason = '401' WHERE id = $1`, f.account)
	if err := f.st.ResumeAccount(ctx, f.account); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetCampaignStatus(ctx, f.campaign, store.CampaignPaused); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetCampaignStatus(ctx, f.campaign, store.CampaignDone); err != nil {
		t.Fatal(err)
	}

	type ev struct {
		kind   store.EventKind
		target int64
	}
	var got []ev
	for _, e := range allEvents(t, f) {
		got = append(got, ev{e.Kind, e.TargetID})
		if e.AccountID != f.account {
			t.Errorf("event %d: account %d, want %d", e.ID, e.AccountID, f.account)
		}
	}
	want := []ev{
		{store.EventTargetSent, ids[0]}, {store.EventTargetFailed, ids[1]}, {store.EventTargetSent, ids[2]},
		{store.EventTargetSkipped, ids[3]},
		{store.EventAccountPaused, 0}, {store.EventAccountDisabled, 0}, {store.EventAccountResumed, 0},
		{store.EventCampaignDone, 0},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	var data map[string]any
	evs := allEvents(t, f)
	if err := json.Unmarshal(evs[1].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["reason"] != "bad" || data["identifier"] != "t2" || data["status"] != "failed" {
		t.Errorf("failed target's data: %v", data)
	}
	if err := json.Unmarshal(evs[4].Data, &data); err != nil || data["reason"] != "429" {
		t.Errorf("pause data: %v (%v)", data, err)
	}
}

// Acceptances and withdrawals are events of their own (migration 00015),
// written by row triggers when accepted_at and withdrawn_at are set, once;
// code can add events with outreach_event (RecordEvent).
func TestEventsOfAcceptanceAndWithdrawal(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	ids := addTargets(t, f, 3)
	exec(t, f, `UPDATE targets SET status = 'sent', accepted_at = now() WHERE id = $1`, ids[0])
	exec(t, f, `UPDATE targets SET accepted_at = now() WHERE id = $1`, ids[0]) // already accepted
	exec(t, f, `UPDATE targets SET status = 'sent' WHERE id = $1`, ids[1])
	exec(t, f, `UPDATE targets SET withdrawn_at = now() WHERE id = $1`, ids[1])
	exec(t, f, `UPDATE targets SET withdrawn_at = now() WHERE id = $1`, ids[1]) // already withdrawn
	if _, err := f.st.RecordEvent(ctx, "campaign.note", f.account, f.campaign, ids[2], json.RawMessage(`{"x":"y"}`)); err != nil {
		t.Fatal(err)
	}
	var kinds []store.EventKind
	for _, e := range allEvents(t, f) {
		kinds = append(kinds, e.Kind)
	}
	// The row trigger fires before the statement trigger.
	want := []store.EventKind{store.EventTargetAccepted, store.EventTargetSent, store.EventTargetSent, store.EventTargetWithdrawn, "campaign.note"}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds: %v, want %v", kinds, want)
	}
}

// A reader that continues from the last event it read never skips an
// event whose id was taken before but whose transaction committed after:
// the late transaction's events stay invisible to readers until it ends.
// (A reader of "id > cursor" reads the later id first and skips it.)
//
// Not parallel: its open transaction holds back every reader of the
// cluster (which is the mechanism).
func TestEventsLateCommitNotSkipped(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ids := addTargets(t, f, 2)

	late, err := f.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback(ctx)
	if _, err := late.Exec(ctx, `UPDATE targets SET status = 'sent' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	exec(t, f, `UPDATE targets SET status = 'failed' WHERE id = $1`, ids[1]) // takes a later id, commits first

	var naive []int64
	rows, _ := f.db.Query(ctx, `SELECT id FROM events WHERE id > 0 ORDER BY id`)
	naive, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(naive) != 1 {
		t.Fatalf("setup: committed events %v (%v)", naive, err)
	}

	var cur store.EventCursor
	var read []store.Event
	next := func() {
		evs, err := f.st.EventsAfter(ctx, cur, store.EventFilter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			read = append(read, e)
			cur = e.Cursor()
		}
	}
	next()
	if len(read) != 0 {
		t.Fatalf("read %v while an older transaction runs", read)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Until other transactions of the cluster let the horizon pass (a
	// transaction that ended between a reader's snapshot and its look at
	// pg_stat_activity holds it back a moment).
	for deadline := time.Now().Add(60 * time.Second); len(read) < 2 && time.Now().Before(deadline); {
		next()
		time.Sleep(10 * time.Millisecond)
	}
	if len(read) != 2 || read[0].TargetID != ids[0] || read[1].TargetID != ids[1] {
		t.Fatalf("read %+v, want the late transaction's then the other's", read)
	}
	// The SQL function users call gives the same (read again while the
	// horizon is held back a moment, as above).
	after := func(from int64, want int) ([]int64, error) {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			rows, _ := f.db.Query(ctx, `SELECT target_id FROM outreach_events_after($1, 10)`, from)
			got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil || len(got) >= want || time.Now().After(deadline) {
				return got, err
			}
		}
	}
	got, err := after(0, 2)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]int64{ids[0], ids[1]}) {
		t.Fatalf("outreach_events_after: %v (%v)", got, err)
	}
	got, err = after(read[0].ID, 1)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]int64{ids[1]}) {
		t.Fatalf("outreach_events_after(first): %v (%v)", got, err)
	}
	_, err = f.db.Exec(ctx, `SELECT * FROM outreach_events_after(999999, 10)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "P0002" {
		t.Fatalf("after a missing event: %v, want no_data_found", err)
	}
}

// A reader that found nothing because the horizon held an event back
// learns from EventsHeld that it must look again, even when the older
// transaction ended between the two reads (the webhook runner, which
// then asked the horizon again, found nothing held and waited for a
// notification that never came).
func TestEventsHeldAfterTheOlderTransactionEnds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ids := addTargets(t, f, 1)
	older := storetest.OpenTransaction(t, f.db)
	exec(t, f, `UPDATE targets SET status = 'failed' WHERE id = $1`, ids[0])
	evs, err := f.st.EventsAfter(ctx, store.EventCursor{}, store.EventFilter{}, 10)
	if err != nil || len(evs) != 0 {
		t.Fatalf("read %v (%v) while an older transaction runs", evs, err)
	}
	older()
	if held, err := f.st.EventsHeld(ctx, store.EventCursor{}); err != nil || !held {
		t.Fatalf("EventsHeld = %v (%v) after the older transaction ended, want true: the event was never read", held, err)
	}
	all := allEvents(t, f)
	if held, err := f.st.EventsHeld(ctx, all[len(all)-1].Cursor()); err != nil || held {
		t.Fatalf("EventsHeld after the last event = %v (%v), want false", held, err)
	}
}

// Many writers commit events in transactions of random length while a
// reader follows the stream: the reader gets every committed event exactly
// once, in strictly increasing stream order, and nothing else.
func TestEventsConcurrentWritersReaderMissesNone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const writers, perWriter = 4, 40
	ids := addTargets(t, f, writers*perWriter)

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := ids[w*perWriter+i]
				err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
					// Some transactions take their xid, wait for others,
					// then write: ids and xids interleave with commits.
					if i%3 == 0 {
						if _, err := tx.Exec(ctx, `UPDATE targets SET attempts = attempts + 1 WHERE id = $1`, id); err != nil {
							return err
						}
						if _, err := tx.Exec(ctx, `SELECT pg_sleep(0.002 * random())`); err != nil {
							return err
						}
					}
					_, err := tx.Exec(ctx, `UPDATE targets SET status = 'sent' WHERE id = $1`, id)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var cur store.EventCursor
	seen := map[int64]int{}
	var read []store.Event
	finished := false
	var deadline time.Time
	for {
		select {
		case <-done:
			finished = true
		default:
		}
		evs, err := f.st.EventsAfter(ctx, cur, store.EventFilter{}, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if c := e.Cursor(); c.XID < cur.XID || (c.XID == cur.XID && c.ID <= cur.ID) {
				t.Fatalf("event %+v read after %+v: out of order", c, cur)
			}
			cur = e.Cursor()
			seen[e.TargetID]++
			read = append(read, e)
		}
		if finished && len(evs) == 0 {
			if len(read) == writers*perWriter {
				break
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(60 * time.Second)
			} else if time.Now().After(deadline) {
				t.Fatalf("reader stuck at %d of %d events", len(read), writers*perWriter)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := allEvents(t, f)
	if len(read) != len(all) || len(all) != writers*perWriter {
		t.Fatalf("reader read %d events, table has %d, want %d", len(read), len(all), writers*perWriter)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("target %d: read %d times", id, seen[id])
		}
	}
}

// A transaction open in another database of the cluster does not hold
// back this database's readers (it cannot write its events), while one
// in this database does.
func TestEventsHorizonIgnoresOtherDatabases(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	ids := addTargets(t, f, 1)
	other := testenv.DB(t, testenv.DatabaseURL(t))
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE accounts SET name = name`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	exec(t, f, `UPDATE targets SET status = 'sent' WHERE id = $1`, ids[0])
	// Other tests' transactions may hold it a moment; the one above holds
	// it until the test ends if the horizon counts it.
	if evs := allEvents(t, f); len(evs) != 1 {
		t.Fatalf("events: %+v", evs)
	}
}
