package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// The ledger and the owner rows are written for every invitation without a
// foreign-key check per row (migration 00019): no key-check trigger on
// either table.
func TestLedgerWritesRunNoKeyChecks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var checks []string
	rows, err := f.db.Query(context.Background(), `SELECT g.tgrelid::regclass::text || ': ' || g.tgname FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
		WHERE g.tgrelid IN ('sends'::regclass, 'person_owners'::regclass) AND p.proname LIKE 'RI_FKey_check%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		checks = append(checks, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(checks) > 0 {
		t.Errorf("key checks run for every ledger or owner row written: %s", strings.Join(checks, ", "))
	}
}

// Deleting a campaign (its targets with it) keeps the ledger and owner
// rows of its targets, without their target, as the keys' ON DELETE SET
// NULL did; the account's other rows keep theirs.
func TestDeletingTargetsKeepsTheirLedger(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "del-1", "del-2")
	for _, tg := range ts {
		at, err := begin(f, tg.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		finishSent(t, f, at, now)
	}
	other, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "other", AccountID: f.account, MessageTemplate: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	g := f
	g.campaign = other
	kept := queue(t, g, now, "keep-1")[0]
	at, err := begin(f, kept.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	finishSent(t, f, at, now)

	exec(t, f, `DELETE FROM campaigns WHERE id = $1`, f.campaign)
	var sends, nulls, owners, ownerNulls, keptSends, keptOwners int
	if err := f.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM sends WHERE account_id = $1 AND action = 'invite'),
			(SELECT count(*) FROM sends WHERE account_id = $1 AND action = 'invite' AND target_id IS NULL),
			(SELECT count(*) FROM person_owners WHERE account_id = $1),
			(SELECT count(*) FROM person_owners WHERE account_id = $1 AND target_id IS NULL),
			(SELECT count(*) FROM sends WHERE target_id = $2),
			(SELECT count(*) FROM person_owners WHERE target_id = $2)`, f.account, kept.ID).
		Scan(&sends, &nulls, &owners, &ownerNulls, &keptSends, &keptOwners); err != nil {
		t.Fatal(err)
	}
	if sends != 3 || nulls != 2 {
		t.Errorf("ledger after the campaign's delete: %d rows, %d without target; want 3 and 2", sends, nulls)
	}
	if owners != 3 || ownerNulls != 2 {
		t.Errorf("owner rows after the campaign's delete: %d rows, %d without target; want 3 and 2", owners, ownerNulls)
	}
	if keptSends != 1 || keptOwners != 1 {
		t.Errorf("the other campaign's target: %d ledger and %d owner rows, want 1 and 1", keptSends, keptOwners)
	}
	if d := storetest.DanglingRows(t, f.db); d != 0 {
		t.Errorf("%d rows name a deleted target after the delete, want 0", d)
	}
	// The check the end-to-end tests make finds a row that names a
	// missing target.
	exec(t, f, `INSERT INTO sends (account_id, target_id, action, reserved_at) VALUES ($1, $2 + 1000000, 'invite', now())`, f.account, kept.ID)
	if d := storetest.DanglingRows(t, f.db); d != 1 {
		t.Errorf("a ledger row naming a missing target: counted %d, want 1", d)
	}
}

// Deleting an account deletes its ledger and owner rows, as the keys' ON
// DELETE CASCADE did, and no other account's.
func TestDeletingAnAccountDeletesItsLedger(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	gone, err := f.st.CreateAccount(ctx, store.NewAccount{Name: "gone", Provider: "unipile", ProviderAccountID: "u-gone",
		Pacing: store.PacingUnlimited})
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range []int64{f.account, gone} {
		exec(t, f, `INSERT INTO sends (account_id, action, reserved_at) VALUES ($1, 'poll', now())`, acc)
		exec(t, f, `INSERT INTO person_owners (provider, provider_id, account_id, kind) VALUES ('unipile', 'p-' || $1::bigint, $1::bigint, 'connected')`, acc)
	}
	exec(t, f, `DELETE FROM accounts WHERE id = $1`, gone)
	var goneRows, keptRows int
	if err := f.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM sends WHERE account_id = $1) + (SELECT count(*) FROM person_owners WHERE account_id = $1),
			(SELECT count(*) FROM sends WHERE account_id = $2) + (SELECT count(*) FROM person_owners WHERE account_id = $2)`,
		gone, f.account).Scan(&goneRows, &keptRows); err != nil {
		t.Fatal(err)
	}
	if goneRows != 0 || keptRows != 2 {
		t.Errorf("after the account's delete: %d of its rows left (want 0), %d of the other account's (want 2)", goneRows, keptRows)
	}
}
