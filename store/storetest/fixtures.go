package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// The functions of this file write fixtures: rows as a step of the
// pipeline, a user's SQL or an earlier run would leave them, written
// directly so that a test starts where it needs to.

// AddQueuedTarget adds a target to the campaign, queued at at as the
// scheduler queues it: resolved (with providerID) or, when providerID is
// empty, for a lookup.
func AddQueuedTarget(t testing.TB, db DB, campaign int64, identifier, providerID string, at time.Time) int64 {
	t.Helper()
	return id(t, db, "add a queued target", `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, queued_at, next_attempt_at)
		VALUES ($1, $2, $2, nullif($3, ''), 'queued', $4, $4) RETURNING id`, campaign, identifier, providerID, at)
}

// AddResolvedTarget adds a pending target to the campaign, resolved to
// providerID and due at.
func AddResolvedTarget(t testing.TB, db DB, campaign int64, identifier, providerID string, due time.Time) int64 {
	t.Helper()
	return id(t, db, "add a resolved target", `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, next_attempt_at)
		VALUES ($1, $2, $2, $3, 'pending', $4) RETURNING id`, campaign, identifier, providerID, due)
}

// AddSentTarget adds a target to the campaign whose invitation to
// providerID was sent just now.
func AddSentTarget(t testing.TB, db DB, campaign int64, identifier, providerID string) int64 {
	t.Helper()
	return id(t, db, "add a sent target", `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, finished_at)
		VALUES ($1, $2, $2, $3, 'sent', now()) RETURNING id`, campaign, identifier, providerID)
}

// AddAcceptedTarget adds a sent target to the campaign (identifier
// normalised as is) whose invitation was accepted at acceptedAt, learnt
// from a poll; nil: not accepted.
func AddAcceptedTarget(t testing.TB, db DB, campaign int64, identifier string, acceptedAt *time.Time) {
	t.Helper()
	exec(t, db, "add a sent target", `INSERT INTO targets (campaign_id, identifier, normalized_identifier, status, accepted_at, accepted_via)
		VALUES ($1, $2, $2, 'sent', $3, CASE WHEN $3::timestamptz IS NOT NULL THEN 'poll' END)`, campaign, identifier, acceptedAt)
}

// AddDueTarget adds a target to the campaign, as a user's SQL would
// (identifier only), due at.
func AddDueTarget(t testing.TB, db DB, campaign int64, identifier string, due time.Time) int64 {
	t.Helper()
	return id(t, db, "add a target", `INSERT INTO targets (campaign_id, identifier, next_attempt_at) VALUES ($1, $2, $3) RETURNING id`,
		campaign, identifier, due)
}

// AddTargetsTo adds targets with the identifiers to the campaign named
// campaign, as a user's SQL would (identifier only).
func AddTargetsTo(t testing.TB, db DB, campaign string, identifiers ...string) {
	t.Helper()
	exec(t, db, "add targets", `INSERT INTO targets (campaign_id, identifier)
		SELECT c.id, i FROM campaigns c, unnest($2::text[]) i WHERE c.name = $1`, campaign, identifiers)
}

// AddNormalizedTarget adds a target to the campaign named campaign with
// its identifier and its normalised form, as a user's SQL might.
func AddNormalizedTarget(t testing.TB, db DB, campaign, identifier, normalized string) {
	t.Helper()
	exec(t, db, "add a target", `INSERT INTO targets (campaign_id, identifier, normalized_identifier)
		SELECT id, $2, $3 FROM campaigns WHERE name = $1`, campaign, identifier, normalized)
}

// AddTargetPerCampaign adds to every campaign one target, named after the
// campaign with the suffix ("spring" + "-x").
func AddTargetPerCampaign(t testing.TB, db DB, suffix string) {
	t.Helper()
	exec(t, db, "add a target per campaign", `INSERT INTO targets (campaign_id, identifier) SELECT id, name || $1 FROM campaigns`, suffix)
}

// End is how a target ended: its status and its last error (empty: none).
type End struct {
	Identifier string
	Status     store.TargetStatus
	LastError  string
}

// EndTargets ends the targets with the identifiers, in one statement.
func EndTargets(t testing.TB, db DB, ends ...End) {
	t.Helper()
	var idents, statuses, errs []string
	for _, e := range ends {
		idents, statuses, errs = append(idents, e.Identifier), append(statuses, string(e.Status)), append(errs, e.LastError)
	}
	exec(t, db, "end targets", `UPDATE targets t SET status = e.status, last_error = nullif(e.err, '')
		FROM unnest($1::text[], $2::text[], $3::text[]) e (ident, status, err) WHERE t.identifier = e.ident`, idents, statuses, errs)
}

// SetStatusOf sets the status of the targets with the identifier, and
// nothing else.
func SetStatusOf(t testing.TB, db DB, identifier string, status store.TargetStatus) {
	t.Helper()
	exec(t, db, "set a target's status", `UPDATE targets SET status = $2 WHERE identifier = $1`, identifier, string(status))
}

// FailWith fails the targets with the identifier with the error type.
func FailWith(t testing.TB, db DB, identifier, errorType string) {
	t.Helper()
	exec(t, db, "fail a target", `UPDATE targets SET status = 'failed', error_type = $2 WHERE identifier = $1`, identifier, errorType)
}

// MarkAllSent sets every target's status to sent, and nothing else.
func MarkAllSent(t testing.TB, db DB) {
	t.Helper()
	exec(t, db, "mark every target sent", `UPDATE targets SET status = 'sent'`)
}

// Finish ends the target with the status, finished now.
func Finish(t testing.TB, db DB, target int64, status store.TargetStatus) {
	t.Helper()
	exec(t, db, "finish a target", `UPDATE targets SET status = $2, finished_at = now() WHERE id = $1`, target, string(status))
}

// MarkSentTo marks the target sent now to providerID.
func MarkSentTo(t testing.TB, db DB, target int64, providerID string) {
	t.Helper()
	exec(t, db, "mark a target sent", `UPDATE targets SET status = 'sent', provider_id = $2, finished_at = now() WHERE id = $1`, target, providerID)
}

// MarkInvited marks the target sent at, resolved to its identifier as is
// and with the invitation id "inv-<target id>".
func MarkInvited(t testing.TB, db DB, target int64, at time.Time) {
	t.Helper()
	exec(t, db, "mark a target invited", `UPDATE targets SET status = 'sent', normalized_identifier = identifier, provider_id = identifier,
		invitation_id = 'inv-' || id, finished_at = $2 WHERE id = $1`, target, at)
}

// MarkWithdrawn records that the target's invitation was withdrawn at.
func MarkWithdrawn(t testing.TB, db DB, target int64, at time.Time) {
	t.Helper()
	exec(t, db, "mark a target withdrawn", `UPDATE targets SET withdrawn_at = $2 WHERE id = $1`, target, at)
}

// SetDue sets when the targets are due next.
func SetDue(t testing.TB, db DB, at time.Time, targets ...int64) {
	t.Helper()
	exec(t, db, "set targets due", `UPDATE targets SET next_attempt_at = $2 WHERE id = ANY($1)`, targets, at)
}

// ResolveAllDueSince resolves every target to its identifier as is (as if
// looked up) and makes it due ago.
func ResolveAllDueSince(t testing.TB, db DB, ago time.Duration) {
	t.Helper()
	exec(t, db, "resolve every target", `UPDATE targets SET normalized_identifier = identifier, provider_id = identifier,
		next_attempt_at = now() - make_interval(secs => $1)`, ago.Seconds())
}

// SetTaskGen sets the target's task generation (a target recovered from a
// dead worker gets a new one).
func SetTaskGen(t testing.TB, db DB, target int64, gen int) {
	t.Helper()
	exec(t, db, "set a target's task generation", `UPDATE targets SET task_gen = $2 WHERE id = $1`, target, gen)
}

// Requeue queues the target again now if it is pending, as the scheduler
// does.
func Requeue(t testing.TB, db DB, target int64) {
	t.Helper()
	exec(t, db, "requeue a target", `UPDATE targets SET status = 'queued', queued_at = now() WHERE id = $1 AND status = 'pending'`, target)
}

// Queue sets the target's status to queued, and nothing else.
func Queue(t testing.TB, db DB, target int64) {
	t.Helper()
	exec(t, db, "queue a target", `UPDATE targets SET status = 'queued' WHERE id = $1`, target)
}

// QueueDue queues the target, due at.
func QueueDue(t testing.TB, db DB, target int64, at time.Time) {
	t.Helper()
	exec(t, db, "queue a target", `UPDATE targets SET status = 'queued', next_attempt_at = $2 WHERE id = $1`, target, at)
}

// HandBackQueued hands the sender's queued targets back (pending, with
// the reason, due at), as a worker does when the sender stops.
func HandBackQueued(t testing.TB, db DB, account int64, reason string, due time.Time) {
	t.Helper()
	exec(t, db, "hand back queued targets", `UPDATE targets SET status = 'pending', wait_reason = $3, next_attempt_at = $2
		WHERE account_id = $1 AND status = 'queued'`, account, due, reason)
}

// Hold marks the target held by a worker in the middle of the call send,
// until lockedUntil.
func Hold(t testing.TB, db DB, target, send int64, lockedUntil time.Time) {
	t.Helper()
	exec(t, db, "hold a target", `UPDATE targets SET status = 'sending', current_send_id = $2, locked_until = $3 WHERE id = $1`,
		target, send, lockedUntil)
}

// AddWorker records a worker whose last heartbeat was ago, and returns
// its id.
func AddWorker(t testing.TB, db DB, heartbeatAgo time.Duration) int64 {
	t.Helper()
	return id(t, db, "add a worker", `INSERT INTO workers (host, pid, heartbeat_at) VALUES ('test', 1, now() - make_interval(secs => $1))
		RETURNING id`, heartbeatAgo.Seconds())
}

// HoldByDeadWorker records, in one statement, a worker silent for an hour,
// its invitation call for the target of the account, and its hold on the
// target until lockedUntil: nothing can find the worker dead before its
// call exists.
func HoldByDeadWorker(t testing.TB, db DB, account, target int64, lockedUntil time.Time) {
	t.Helper()
	exec(t, db, "hold a target by a dead worker", `WITH w AS (INSERT INTO workers (host, pid, heartbeat_at) VALUES ('test', 1, now() - interval '1 hour') RETURNING id),
		s AS (INSERT INTO sends (account_id, target_id, action, reserved_at, worker_id)
			SELECT $1, $2, 'invite', now(), w.id FROM w RETURNING id)
		UPDATE targets SET status = 'sending', current_send_id = (SELECT id FROM s), locked_until = $3 WHERE id = $2`,
		account, target, lockedUntil)
}

// Person is a resolve cache entry (people): who a normalised identifier
// is at a provider.
type Person struct {
	Provider, NormalizedIdentifier, ProviderID string
	LookedUpBy                                 int64  // the account that looked the person up; zero: none
	NetworkDistance                            string // empty: unknown
}

// AddPeople writes the resolve cache entries.
func AddPeople(t testing.TB, db DB, people ...Person) {
	t.Helper()
	for _, p := range people {
		exec(t, db, "add a person", `INSERT INTO people (provider, normalized_identifier, provider_id, looked_up_by, network_distance)
			VALUES ($1, $2, $3, nullif($4, 0), nullif($5, ''))`, p.Provider, p.NormalizedIdentifier, p.ProviderID, p.LookedUpBy, p.NetworkDistance)
	}
}

// AddDNCIdentifier adds a do-not-contact entry for a person by
// identifier (a profile URL, normalised by the database), global, as a
// user's SQL would.
func AddDNCIdentifier(t testing.TB, db DB, provider, identifier, reason, by string) {
	t.Helper()
	exec(t, db, "add a do-not-contact entry", `INSERT INTO do_not_contact (provider, identifier, reason, added_by)
		VALUES ($1, $2, $3, $4)`, provider, identifier, reason, by)
}

// AddDNCWithoutSkipping adds a global do-not-contact entry for the
// person with the provider id without its trigger: the targets it matches
// are left as they are (queued ones stay queued), so that only the
// reservation's check can stop them.
func AddDNCWithoutSkipping(t testing.TB, db DB, provider, providerID, reason, by string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`ALTER TABLE do_not_contact DISABLE TRIGGER do_not_contact_skip`, nil},
		{`INSERT INTO do_not_contact (provider, provider_id, reason, added_by) VALUES ($1, $2, $3, $4)`, []any{provider, providerID, reason, by}},
		{`ALTER TABLE do_not_contact ENABLE TRIGGER do_not_contact_skip`, nil},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("add a do-not-contact entry without its trigger: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("add a do-not-contact entry without its trigger: %v", err)
	}
}

// AddCampaignFromSQL adds a campaign with the template as a user's SQL
// would, unchecked, and returns its id.
func AddCampaignFromSQL(t testing.TB, db DB, name string, account int64, template string) int64 {
	t.Helper()
	return id(t, db, "add a campaign", `INSERT INTO campaigns (name, account_id, message_template) VALUES ($1, $2, $3) RETURNING id`,
		name, account, template)
}

// Seed is an account seeded with plain SQL, as a user would: a Unipile
// account with the name as its provider account id, opted out of the
// provider's default pacing, its limits, and a campaign of the same name
// with the template and the targets.
type Seed struct {
	Name     string
	Limits   []store.Limit
	Template string
	Targets  []string
}

// SeedAccount writes the seed, in one transaction.
func SeedAccount(t testing.TB, db DB, s Seed) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	fail := func(err error) { t.Helper(); t.Fatalf("seed account %s: %v", s.Name, err) }
	var acc, camp int64
	if err := tx.QueryRow(ctx, `INSERT INTO accounts (name, provider, provider_account_id, pacing) VALUES ($1, 'unipile', $1, 'unlimited') RETURNING id`,
		s.Name).Scan(&acc); err != nil {
		fail(err)
	}
	for _, l := range s.Limits {
		days, secs := interval(l.Per)
		if _, err := tx.Exec(ctx, `INSERT INTO account_limits (account_id, action, max_count, per)
			VALUES ($1, $2, $3, make_interval(days => $4, secs => $5))`, acc, string(l.Action), l.Max, days, secs); err != nil {
			fail(err)
		}
	}
	if err := tx.QueryRow(ctx, `INSERT INTO campaigns (name, account_id, message_template) VALUES ($1, $2, $3) RETURNING id`,
		s.Name, acc, s.Template).Scan(&camp); err != nil {
		fail(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO targets (campaign_id, identifier) SELECT $1, i FROM unnest($2::text[]) i`, camp, s.Targets); err != nil {
		fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		fail(err)
	}
}
