package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrorTypeOwned is the error_type of a target skipped because another
// account of the organisation owns its person (docs/owners.md).
const ErrorTypeOwned = "owned_elsewhere"

// OwnedError is what a reservation meets when another account of the
// organisation owns the target's person (person_owners): the target is
// skipped with Reason. Begin turns it into the skip and ErrStale.
type OwnedError struct {
	Reason string
}

func (e *OwnedError) Error() string { return e.Reason }

// claimOwnerSQL claims the person for the reserving account (every
// invitation claims, so that campaigns with the organisation-wide rule see
// the invitations of those without), and returns the campaign's rule
// (owner_days), whether the claim was taken, and any connected or pending row of
// another account as this statement's snapshot saw it. The primary key
// makes two reservations of one person meet: the second waits for the
// first's transaction, then takes the row over only under its WHERE.
//
//	$1 provider, $2 provider id, $3 account, $4 target, $5 campaign, $6 now
const claimOwnerSQL = `WITH c AS (SELECT owner_days FROM campaigns WHERE id = $5),
	ins AS (
		INSERT INTO person_owners AS o (provider, provider_id, account_id, target_id, kind, since)
		SELECT $1, $2, $3, $4, 'invited', $6 FROM c
		ON CONFLICT (provider, provider_id) DO UPDATE SET account_id = EXCLUDED.account_id, target_id = EXCLUDED.target_id,
			kind = 'invited', since = EXCLUDED.since
		WHERE o.account_id = EXCLUDED.account_id
			OR o.kind = 'invited' AND (o.since <= EXCLUDED.since - make_interval(days => (SELECT owner_days FROM c))
				OR NOT EXISTS (SELECT 1 FROM targets x WHERE x.id = o.target_id AND x.status NOT IN ('skipped', 'failed')))
		RETURNING 1)
	SELECT (SELECT owner_days FROM c), EXISTS (SELECT 1 FROM ins), o.kind, a.name, o.since
	FROM (SELECT 1) one
	LEFT JOIN person_owners o ON o.provider = $1 AND o.provider_id = $2 AND o.account_id <> $3 AND o.kind IN ('connected', 'pending')
	LEFT JOIN accounts a ON a.id = o.account_id`

// claimOwner enforces one owner per person in the reservation of an
// invitation: a person connected to, or with a pending invitation from,
// another account (as lookups found) is that account's; with the
// campaign's owner_days, a person another account claimed within that
// many days is too; otherwise the reserving account claims the person.
// The claim is written in the reservation's transaction, so it stands
// exactly when the ledger row does.
func claimOwner(ctx context.Context, tx pgx.Tx, t *Target, a *Account, now time.Time) error {
	if t.ProviderID == "" {
		return nil
	}
	var days *int
	var claimed bool
	var kind, owner *string
	var since *time.Time
	if err := tx.QueryRow(ctx, claimOwnerSQL, a.Provider, t.ProviderID, a.ID, t.ID, t.CampaignID, now).
		Scan(&days, &claimed, &kind, &owner, &since); err != nil {
		return err
	}
	if kind != nil {
		return &OwnedError{Reason: ownedReason(*kind, *owner, *since, days)}
	}
	if days == nil || claimed {
		return nil
	}
	// Lost the claim: the owner's row may be newer than the statement's
	// snapshot (it waited for that transaction); read it now.
	var k, name string
	var at time.Time
	err := tx.QueryRow(ctx, `SELECT o.kind, a.name, o.since FROM person_owners o JOIN accounts a ON a.id = o.account_id
		WHERE o.provider = $1 AND o.provider_id = $2`, a.Provider, t.ProviderID).Scan(&k, &name, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return &NotNowError{Until: now, Reason: "the person's owner changed; trying again"}
	}
	if err != nil {
		return err
	}
	return &OwnedError{Reason: ownedReason(k, name, at, days)}
}

// ownedReason says who owns the person and since when.
func ownedReason(kind, account string, since time.Time, days *int) string {
	date := since.UTC().Format("2006-01-02")
	switch kind {
	case "connected":
		return fmt.Sprintf("skipped: already connected to account %s (seen %s)", account, date)
	case "pending":
		return fmt.Sprintf("skipped: an invitation from account %s is pending (seen %s)", account, date)
	}
	rule := ""
	if days != nil {
		rule = fmt.Sprintf(" (one owner per person across the organisation, %d days)", *days)
	}
	return fmt.Sprintf("skipped: already invited by account %s on %s%s", account, date, rule)
}

// skipOwned ends a target whose person another account owns, if it is
// still the reservation's to end (queued, or sending under an expired
// lease).
func (s *Store) skipOwned(ctx context.Context, targetID int64, now time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE targets SET status = 'skipped', last_error = $2, error_type = $3, finished_at = $4,
			updated_at = $4, locked_until = NULL, current_send_id = NULL, wait_reason = NULL
		WHERE id = $1 AND (status = 'queued' OR status = 'sending' AND locked_until <= $4)`, targetID, reason, ErrorTypeOwned, now)
	return err
}

// noteRelation records what a lookup by account says of the person
// (outreach_note_relation): connected, an invitation pending, or
// neither.
func noteRelation(ctx context.Context, tx pgx.Tx, accountID int64, p *Person, now time.Time) error {
	var kind *string
	switch {
	case p.IsRelationship || p.NetworkDistance == "FIRST_DEGREE" || p.NetworkDistance == "DISTANCE_1":
		k := "connected"
		kind = &k
	case p.InvitationStatus == "PENDING":
		k := "pending"
		kind = &k
	}
	_, err := tx.Exec(ctx, `SELECT outreach_note_relation($1, $2, $3, $4, $5)`, p.Provider, p.ProviderID, accountID, kind, now)
	return err
}
