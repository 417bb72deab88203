package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	dsn := testenv.DatabaseURL(t) // already migrated once
	got, err := store.Migrate(context.Background(), dsn)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", got)
	}
	cur, latest, err := store.SchemaVersion(context.Background(), dsn)
	if err != nil || cur != latest || cur == 0 {
		t.Errorf("SchemaVersion = %d, %d, %v; want equal and non-zero", cur, latest, err)
	}
}

type fixture struct {
	st       *store.Store
	account  int64
	campaign int64
	dsn      string
	// db is a pool of the test's own for SQL setup and checks.
	db *pgxpool.Pool
}

// setup makes an account with limits and nothing else: it opts out of the
// provider's default pacing (the tests of pacing use setupAccount).
func setup(t *testing.T, limits ...store.Limit) fixture {
	t.Helper()
	return setupAccount(t, store.NewAccount{Limits: limits, Pacing: store.PacingUnlimited})
}

// setupAccount makes a Unipile account as na says (name and provider ids
// filled in) and a campaign of it.
func setupAccount(t *testing.T, na store.NewAccount) fixture {
	t.Helper()
	st, dsn := testenv.Store(t)
	ctx := context.Background()
	na.Name, na.ProviderAccountID = "acc", "u1"
	if na.Provider == "" {
		na.Provider = "unipile"
	}
	acc, err := st.CreateAccount(ctx, na)
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: acc, MessageTemplate: "Hi {{.FirstName}}"})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{st, acc, camp, dsn, testenv.DB(t, dsn)}
}

// dueBy makes f's new targets ids due at now at the latest.
func dueBy(t *testing.T, f fixture, now time.Time, ids []string) {
	t.Helper()
	if _, err := f.db.Exec(context.Background(), `UPDATE targets SET next_attempt_at = least(next_attempt_at, $3)
		WHERE campaign_id = $1 AND identifier = ANY($2) AND status = 'pending'`, f.campaign, ids, now); err != nil {
		t.Fatal(err)
	}
}

// normalizeAsIs resolves every identifier to itself as a provider id.
func normalizeAsIs(_ provider.Name, id string) store.Normalized {
	return store.Normalized{Identifier: id, ProviderID: id}
}

// queue adds ids to f's campaign and claims them, queued and due at now
// at the latest (dueBy: a new target is due from when it was added, which
// on a busy machine can be later than a now the test took before its
// setup).
func queue(t *testing.T, f fixture, now time.Time, ids ...string) []*store.Target {
	t.Helper()
	ctx := context.Background()
	var nt []store.NewTarget
	for _, id := range ids {
		nt = append(nt, store.NewTarget{Identifier: id})
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, nt); err != nil {
		t.Fatal(err)
	}
	dueBy(t, f, now, ids)
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.ClaimTargets(ctx, f.account, false, 1000, now.Add(time.Hour), now, func(c store.Claimed) store.Prepared {
		return store.Prepared{Message: "hello"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("claimed %d targets, want %d", len(got), len(ids))
	}
	return got
}

func begin(f fixture, id int64, now time.Time) (*store.Attempt, error) {
	return f.st.Begin(context.Background(), store.BeginRequest{TargetID: id, Action: store.ActionInvite, Now: now,
		Lease: time.Minute, RequestTimeout: 10 * time.Second, HoldFor: time.Minute})
}

func finishSent(t *testing.T, f fixture, at *store.Attempt, now time.Time) {
	t.Helper()
	err := f.st.Finish(context.Background(), store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: f.account,
		Now: now, Outcome: store.OutcomeSent, InvitationID: "inv", TargetStatus: store.TargetSent})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBeginHonoursRollingWindow(t *testing.T) {
	t.Parallel()
	f := setup(t, store.Limit{Action: store.ActionInvite, Max: 2, Per: 10 * time.Second})
	t0 := time.Now().Add(time.Second) // after the targets' default next_attempt_at (the database's now)
	ts := queue(t, f, t0, "a", "b", "c")
	for i := 0; i < 2; i++ {
		at, err := begin(f, ts[i].ID, t0)
		if err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		finishSent(t, f, at, t0.Add(time.Duration(i+1)*time.Second))
	}
	_, err := begin(f, ts[2].ID, t0.Add(3*time.Second))
	var nn *store.NotNowError
	if !errors.As(err, &nn) {
		t.Fatalf("third begin: err = %v, want NotNowError", err)
	}
	// The window frees 10 s after the first answer (t0+1s).
	if want := t0.Add(11 * time.Second).Truncate(time.Microsecond); !nn.Until.Equal(want) {
		t.Errorf("Until = %v, want %v", nn.Until, want)
	}
	if nn.Released {
		t.Errorf("Released = true for a wait shorter than HoldFor")
	}
	if _, err := begin(f, ts[2].ID, t0.Add(11*time.Second+time.Millisecond)); err != nil {
		t.Errorf("begin after the window freed: %v", err)
	}
}

func TestInFlightCountsAgainstLimit(t *testing.T) {
	t.Parallel()
	f := setup(t, store.Limit{Action: store.ActionInvite, Max: 1, Per: time.Second})
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "a", "b")
	if _, err := begin(f, ts[0].ID, now); err != nil {
		t.Fatal(err)
	}
	// Long after the window, the first request is still unanswered: it
	// still counts.
	_, err := begin(f, ts[1].ID, now.Add(time.Hour))
	var nn *store.NotNowError
	if !errors.As(err, &nn) {
		t.Fatalf("begin while another is in flight: %v, want NotNowError", err)
	}
}

func TestBeginStaleAndTakeover(t *testing.T) {
	t.Parallel()
	f := setup(t)
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "a")
	at, err := begin(f, ts[0].ID, now)
	if err != nil {
		t.Fatal(err)
	}
	// Another worker gets the task again while the first holds it.
	_, err = begin(f, ts[0].ID, now.Add(time.Second))
	var nn *store.NotNowError
	if !errors.As(err, &nn) || nn.Released {
		t.Fatalf("begin while held: %v, want NotNowError not released", err)
	}
	// After the lease, it is taken over and recognised as orphaned.
	at2, err := begin(f, ts[0].ID, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !at2.Orphaned {
		t.Errorf("Orphaned = false after a takeover")
	}
	// The first worker's late answer is stale.
	err = f.st.Finish(context.Background(), store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: f.account,
		Now: now.Add(3 * time.Minute), Outcome: store.OutcomeSent, TargetStatus: store.TargetSent})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("late finish while the second worker holds it: %v, want ErrStale", err)
	}
	finishSent(t, f, at2, now.Add(3*time.Minute))
	_, err = begin(f, ts[0].ID, now.Add(4*time.Minute))
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("begin of a sent target: %v, want ErrStale", err)
	}
}

func TestPausedCampaignHandsBack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "a")
	if err := f.st.SetCampaignStatus(context.Background(), f.campaign, "paused"); err != nil {
		t.Fatal(err)
	}
	_, err := begin(f, ts[0].ID, now)
	var nn *store.NotNowError
	if !errors.As(err, &nn) || !nn.Released {
		t.Fatalf("begin in a paused campaign: %v, want released NotNowError", err)
	}
	got, err := f.st.Target(context.Background(), ts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.TargetPending {
		t.Errorf("status = %q, want pending", got.Status)
	}
}

func TestOnePersonPerAccount(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	other, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "c2", AccountID: f.account})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "p1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddTargets(ctx, other, []store.NewTarget{{Identifier: "p1"}, {Identifier: "p2"}}); err != nil {
		t.Fatal(err)
	}
	st, err := f.st.PrepareTargets(ctx, 100, normalizeAsIs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 1 || st.Resolved != 2 {
		t.Errorf("PrepareTargets = %+v, want 1 skipped, 2 resolved", st)
	}
}

func TestBadInputIsClear(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	_, err := st.CreateAccount(context.Background(), store.NewAccount{Name: "x", Provider: "myspace", ProviderAccountID: "1"})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("unknown provider: %v, want ErrInvalid", err)
	}
	_, err = st.CreateCampaign(context.Background(), store.Campaign{Name: "c", AccountID: 999})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("campaign of unknown account: %v, want ErrNotFound", err)
	}
}
