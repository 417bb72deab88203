package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/migrations"
	"github.com/outreach-dev/outreach/store"
)

// queuedTarget inserts a target of the campaign as the scheduler leaves
// it: queued, resolved to pid (or for a lookup when pid is empty).
func queuedTarget(t *testing.T, db *pgxpool.Pool, campaign int64, ident, pid string) int64 {
	t.Helper()
	var id int64
	if err := db.QueryRow(context.Background(), `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, queued_at, next_attempt_at)
		VALUES ($1, $2, $2, nullif($3, ''), 'queued', now(), now() - interval '1 second') RETURNING id`, campaign, ident, pid).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func targetEnd(t *testing.T, db *pgxpool.Pool, id int64) (status, lastError, errType string) {
	t.Helper()
	if err := db.QueryRow(context.Background(), `SELECT status, coalesce(last_error, ''), coalesce(error_type, '') FROM targets WHERE id = $1`, id).
		Scan(&status, &lastError, &errType); err != nil {
		t.Fatal(err)
	}
	return
}

// TestOwnerRule: with owner_days, a person another account invited within
// that many days is skipped naming the account and the date; an older
// claim is taken over; a person a lookup found connected to another
// account is skipped whatever the campaign's rule.
func TestOwnerRule(t *testing.T) {
	ctx := context.Background()
	st, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	account := func(name string) int64 {
		id, err := st.CreateAccount(ctx, store.NewAccount{Name: name, Provider: "unipile", ProviderAccountID: name, Pacing: store.PacingUnlimited})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	campaign := func(name string, acc int64, ownerDays any) int64 {
		id, err := st.CreateCampaign(ctx, store.Campaign{Name: name, AccountID: acc})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE campaigns SET owner_days = $2 WHERE id = $1`, id, ownerDays); err != nil {
			t.Fatal(err)
		}
		return id
	}
	begin := func(id int64, action store.Action) (*store.Attempt, error) {
		return st.Begin(ctx, store.BeginRequest{TargetID: id, Action: action, Now: time.Now(),
			Lease: time.Minute, RequestTimeout: 10 * time.Second, HoldFor: time.Minute})
	}
	alice, bob := account("alice"), account("bob")
	ca, cb, cb2 := campaign("a", alice, 30), campaign("b", bob, 30), campaign("b2", bob, 30)

	ta := queuedTarget(t, db, ca, "p1", "P1")
	at, err := begin(ta, store.ActionInvite)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: ta, AccountID: alice, Now: time.Now(),
		Outcome: store.OutcomeSent, TargetStatus: store.TargetSent, InvitationID: "i1"}); err != nil {
		t.Fatal(err)
	}

	tb := queuedTarget(t, db, cb, "p1", "P1")
	if _, err := begin(tb, store.ActionInvite); !errors.Is(err, store.ErrStale) {
		t.Fatalf("bob's reservation of alice's person: %v, want ErrStale", err)
	}
	status, why, typ := targetEnd(t, db, tb)
	want := "already invited by account alice on " + time.Now().UTC().Format("2006-01-02") + " (one owner per person across the organisation, 30 days)"
	if status != "skipped" || !strings.Contains(why, want) || typ != store.ErrorTypeOwned {
		t.Fatalf("bob's target: %s %q (%s), want skipped %q (%s)", status, why, typ, want, store.ErrorTypeOwned)
	}
	var sends int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE target_id = $1`, tb).Scan(&sends); err != nil || sends != 0 {
		t.Fatalf("bob's skipped target has %d ledger rows (%v), want none", sends, err)
	}

	// A claim older than the rule's days is taken over.
	if _, err := db.Exec(ctx, `UPDATE person_owners SET since = now() - interval '31 days'`); err != nil {
		t.Fatal(err)
	}
	tb2 := queuedTarget(t, db, cb2, "p1", "P1")
	if _, err := begin(tb2, store.ActionInvite); err != nil {
		t.Fatalf("bob's reservation after 31 days: %v", err)
	}
	var owner int64
	if err := db.QueryRow(ctx, `SELECT account_id FROM person_owners WHERE provider_id = 'P1'`).Scan(&owner); err != nil || owner != bob {
		t.Fatalf("owner after the takeover: %d (%v), want bob %d", owner, err, bob)
	}

	// A lookup by alice finds P2 connected: bob's target of P2 is skipped,
	// even in a campaign without the rule.
	cbOff := campaign("b-off", bob, nil)
	la := queuedTarget(t, db, ca, "p2", "")
	at, err = begin(la, store.ActionLookup)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: la, AccountID: alice, Now: time.Now(),
		Outcome: store.OutcomeResolved, TargetStatus: store.TargetSkipped, LastError: "already connected",
		Person: &store.Person{Provider: "unipile", NormalizedIdentifier: "p2", ProviderID: "P2", LookedUpBy: alice,
			NetworkDistance: "FIRST_DEGREE", IsRelationship: true}}); err != nil {
		t.Fatal(err)
	}
	tOff := queuedTarget(t, db, cbOff, "p2", "P2")
	if _, err := begin(tOff, store.ActionInvite); !errors.Is(err, store.ErrStale) {
		t.Fatalf("bob's reservation of a person connected to alice: %v, want ErrStale", err)
	}
	if status, why, _ := targetEnd(t, db, tOff); status != "skipped" || !strings.Contains(why, "already connected to account alice") {
		t.Fatalf("bob's target of alice's connection: %s %q", status, why)
	}

	// Without the rule, an invitation of another account does not block.
	if _, err := begin(queuedTarget(t, db, cb, "p3", "P3"), store.ActionInvite); err != nil {
		t.Fatal(err)
	}
	caOff := campaign("a-off", alice, nil)
	tOff3 := queuedTarget(t, db, caOff, "p3", "P3")
	if _, err := begin(tOff3, store.ActionInvite); err != nil {
		t.Fatalf("alice's reservation of bob's person, rule off: %v", err)
	}

	// Invalid values are refused naming the constraint.
	if _, err := db.Exec(ctx, `UPDATE campaigns SET owner_days = 0`); err == nil || !strings.Contains(err.Error(), "campaigns_owner_days_range") {
		t.Fatalf("owner_days 0: %v, want campaigns_owner_days_range", err)
	}
}

// TestWarmupOwnersUpgrade migrates a database from before migration 00009
// holding an account with a sent invitation: the account is not put on a
// ramp (it is warm), its invitation becomes its person's claim, and an
// account inserted afterwards starts on Unipile's default ramp.
func TestWarmupOwnersUpgrade(t *testing.T) {
	ctx := context.Background()
	dsn := emptyDatabase(t)
	db := stdlib.OpenDB(*mustParse(t, dsn))
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `
		INSERT INTO accounts (name, provider, provider_account_id) VALUES ('old', 'unipile', 'o');
		INSERT INTO campaigns (name, account_id) SELECT 'c', id FROM accounts;
		INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, finished_at)
			SELECT id, 'p1', 'p1', 'P1', 'sent', '2026-11-02 10:00Z' FROM campaigns`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	var ramps int
	var owner, kind string
	var since time.Time
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM account_warmups`).Scan(&ramps); err != nil || ramps != 0 {
		t.Fatalf("ramps after the upgrade: %d (%v), want none", ramps, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT a.name, o.kind, o.since FROM person_owners o JOIN accounts a ON a.id = o.account_id
		WHERE o.provider = 'unipile' AND o.provider_id = 'P1'`).Scan(&owner, &kind, &since); err != nil {
		t.Fatal(err)
	}
	if owner != "old" || kind != "invited" || !since.Equal(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("P1's claim after the upgrade: %s %s %v, want old invited 2026-11-02 10:00", owner, kind, since)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (name, provider, provider_account_id) VALUES ('new', 'unipile', 'n')`); err != nil {
		t.Fatal(err)
	}
	var today int
	if err := db.QueryRowContext(ctx, `SELECT w.today FROM account_warmup_state w JOIN accounts a ON a.id = w.account_id WHERE a.name = 'new'`).
		Scan(&today); err != nil || today != 5 {
		t.Fatalf("a new Unipile account's ramp: %d today (%v), want 5", today, err)
	}
}
