package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// The batch's lock of its targets probes each target's ledger rows by
// index, whatever the planner believes of the ledger: in the throughput
// run the ledger grows by tens of thousands of rows a minute, faster than
// autovacuum analyses it, and an EXISTS over it was planned as one hashed
// scan of the whole ledger per batch (40 ms a batch at 40,000 rows, and
// growing with the ledger).
func TestBeginBatchProbesTheLedger(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	idents := make([]string, 100)
	for i := range idents {
		idents[i] = fmt.Sprintf("probe-%03d", i)
	}
	ts := queue(t, f, now, idents...)
	// The ledger, analysed while empty, then grown.
	for _, sql := range []string{`ANALYZE sends`, `ANALYZE targets`,
		`INSERT INTO sends (account_id, action, reserved_at, window_at, outcome)
			SELECT $1, 'invite', $2::timestamptz - j * interval '1 second', $2::timestamptz - j * interval '1 second', 'sent'
			FROM generate_series(1, 50000) j`} {
		args := []any{}
		if strings.Contains(sql, "$1") {
			args = []any{f.account, now.Add(-time.Hour)}
		}
		if _, err := f.db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}

	pool, rec := recordingPool(t, f.dsn)
	rec.op("BeginBatch")
	res, err := store.New(pool).BeginBatch(ctx, batchReq(f, now, 0, ts...))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attempts) != len(ts) {
		t.Fatalf("reserved %d of %d targets (left: %+v)", len(res.Attempts), len(ts), res.Left)
	}

	admin, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	checked := 0
	for _, s := range rec.statements() {
		if !strings.Contains(s.sql, "FOR UPDATE OF t") || !strings.Contains(s.sql, "FROM sends s") {
			continue
		}
		checked++
		for _, generic := range []bool{false, true} {
			plan := explainPlan(t, admin, s, generic)
			if seq := plan.seqScans("sends"); len(seq) > 0 {
				t.Errorf("the batch's lock (generic plan %v) scans the whole ledger:\n%s\n%s", generic, oneLine(s.sql), plan.render())
			}
		}
	}
	if checked == 0 {
		t.Fatal("no statement of BeginBatch locks the targets with their ledger rows; update this test to the store's SQL")
	}
}
