package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/provider"
)

// ErrorTypeDoNotContact is the error_type of a target skipped because a
// do-not-contact entry matches its person.
const ErrorTypeDoNotContact = "do_not_contact"

// DNCEntry is one row of the do-not-contact list (table do_not_contact,
// docs/dnc.md): a person (by identifier or provider id) or an email domain
// never to contact, globally or within one account or campaign.
type DNCEntry struct {
	ID int64
	// AccountID or CampaignID scope the entry; both zero means global.
	AccountID, CampaignID int64
	// Provider whose identifiers the entry holds; empty only for a global
	// domain entry (any provider).
	Provider provider.Name
	// Exactly one of Identifier (with its NormalizedIdentifier),
	// ProviderID and Domain is set.
	Identifier, NormalizedIdentifier string
	ProviderID                       string
	Domain                           string
	Reason                           string
	AddedBy                          string
	AddedAt                          time.Time
}

// Scope describes the entry's scope: "global", "account 3" or
// "campaign 7".
func (e DNCEntry) Scope() string {
	switch {
	case e.AccountID != 0:
		return fmt.Sprintf("account %d", e.AccountID)
	case e.CampaignID != 0:
		return fmt.Sprintf("campaign %d", e.CampaignID)
	}
	return "global"
}

// Match describes what the entry matches: "identifier jane-doe",
// "provider_id ACoAA…" or "domain example.com".
func (e DNCEntry) Match() string {
	switch {
	case e.Domain != "":
		return "domain " + e.Domain
	case e.ProviderID != "":
		return "provider_id " + e.ProviderID
	}
	return "identifier " + e.NormalizedIdentifier
}

// NewDNCEntry is an entry to add. Set exactly one of Identifier,
// ProviderID and Domain; the database validates and normalises it (see
// migration 00007). NormalizedIdentifier, when set with Identifier, is
// stored as given: the CLI sets it with the provider's own Go rules, which
// the database's twin of them cannot always follow (non-ASCII slugs).
type NewDNCEntry struct {
	AccountID, CampaignID int64
	Provider              provider.Name
	Identifier            string
	NormalizedIdentifier  string
	ProviderID            string
	Domain                string
	Reason                string
	// AddedBy is who adds the entry; empty means the database user.
	AddedBy string
}

const dncColumns = `d.id, coalesce(d.account_id, 0), coalesce(d.campaign_id, 0), coalesce(d.provider, ''),
	coalesce(d.identifier, ''), coalesce(d.normalized_identifier, ''), coalesce(d.provider_id, ''),
	coalesce(d.domain, ''), d.reason, d.added_by, d.added_at`

func scanDNC(row pgx.Row) (DNCEntry, error) {
	var e DNCEntry
	err := row.Scan(&e.ID, &e.AccountID, &e.CampaignID, &e.Provider, &e.Identifier, &e.NormalizedIdentifier,
		&e.ProviderID, &e.Domain, &e.Reason, &e.AddedBy, &e.AddedAt)
	return e, err
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// addDNC inserts one entry in tx. The insert's trigger skips the waiting
// targets it matches in the same statement. A duplicate of an entry
// already on the list is ErrConflict naming it.
func addDNC(ctx context.Context, tx pgx.Tx, e NewDNCEntry) (DNCEntry, error) {
	var existing int64
	got, err := scanDNC(tx.QueryRow(ctx, `WITH d AS (
			INSERT INTO do_not_contact AS d (account_id, campaign_id, provider, identifier, normalized_identifier,
				provider_id, domain, reason, added_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, current_user))
			ON CONFLICT (account_id, campaign_id, provider, normalized_identifier, provider_id, domain) DO NOTHING
			RETURNING *)
		SELECT `+dncColumns+` FROM d`,
		nullID(e.AccountID), nullID(e.CampaignID), nullString(string(e.Provider)), nullString(e.Identifier),
		nullString(e.NormalizedIdentifier), nullString(e.ProviderID), nullString(e.Domain), e.Reason, nullString(e.AddedBy)))
	if !errors.Is(err, pgx.ErrNoRows) {
		return got, err
	}
	// A duplicate: name the entry already there. Its keys are the ones the
	// trigger would have stored; comparing the raw values finds it in the
	// common case, and the error stands either way.
	_ = tx.QueryRow(ctx, `SELECT id FROM do_not_contact WHERE account_id IS NOT DISTINCT FROM $1
			AND campaign_id IS NOT DISTINCT FROM $2
			AND (normalized_identifier = $3 OR identifier = $4 OR provider_id = $5 OR domain = lower($6)) ORDER BY id LIMIT 1`,
		nullID(e.AccountID), nullID(e.CampaignID), nullString(e.NormalizedIdentifier), nullString(e.Identifier),
		nullString(e.ProviderID), nullString(e.Domain)).Scan(&existing)
	if existing != 0 {
		return DNCEntry{}, fmt.Errorf("%w: already on the do-not-contact list as entry %d", ErrConflict, existing)
	}
	return DNCEntry{}, fmt.Errorf("%w: already on the do-not-contact list", ErrConflict)
}

// AddDNC adds an entry to the do-not-contact list and, in the same
// transaction, skips the waiting (pending or queued) targets it matches,
// with a reason naming the entry. Errors: ErrInvalid (the database
// refused a value; the message names the column), ErrNotFound (no such
// account or campaign), ErrConflict (already on the list).
func (s *Store) AddDNC(ctx context.Context, e NewDNCEntry) (DNCEntry, error) {
	var got DNCEntry
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		got, err = addDNC(ctx, tx, e)
		return err
	})
	if err != nil {
		return DNCEntry{}, translate("add do-not-contact entry", err)
	}
	return got, nil
}

// DNCRowError is one entry of an import that was not added, and why.
type DNCRowError struct {
	// Row is the entry's index in the slice given to ImportDNC.
	Row int
	Err error
}

// ImportDNC adds entries in one transaction, each under its own
// savepoint: an entry the database refuses (or a duplicate) is reported
// and left out, the others are added and skip their waiting targets.
// Nothing already on the list is changed.
func (s *Store) ImportDNC(ctx context.Context, entries []NewDNCEntry) ([]DNCEntry, []DNCRowError, error) {
	var added []DNCEntry
	var bad []DNCRowError
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		added, bad = added[:0], bad[:0]
		for i, e := range entries {
			var got DNCEntry
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				var err error
				got, err = addDNC(ctx, sp, e)
				return err
			})
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				added = append(added, got)
			case errors.Is(err, ErrConflict), errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")):
				// A refused value or a duplicate: this row only.
				bad = append(bad, DNCRowError{Row: i, Err: translate("add do-not-contact entry", err)})
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, translate(fmt.Sprintf("import %d do-not-contact entries", len(entries)), err)
	}
	return added, bad, nil
}

// RemoveDNC removes entry id from the do-not-contact list and returns it.
// Targets it already skipped stay skipped. ErrNotFound if there is none.
func (s *Store) RemoveDNC(ctx context.Context, id int64) (DNCEntry, error) {
	e, err := scanDNC(s.pool.QueryRow(ctx, `DELETE FROM do_not_contact d WHERE d.id = $1 RETURNING `+dncColumns, id))
	if err != nil {
		return DNCEntry{}, translate(fmt.Sprintf("remove do-not-contact entry %d", id), err)
	}
	return e, nil
}

// ListDNC returns the do-not-contact list in the order entries were added.
func (s *Store) ListDNC(ctx context.Context) ([]DNCEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+dncColumns+` FROM do_not_contact d ORDER BY d.id`)
	if err != nil {
		return nil, translate("list do-not-contact entries", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DNCEntry, error) { return scanDNC(r) })
	if err != nil {
		return nil, translate("list do-not-contact entries", err)
	}
	return out, nil
}

// DoNotContactError is Begin's answer for a target a do-not-contact entry
// stops: the target is skipped (committed) with Reason, and its task is
// no longer needed (it wraps ErrStale).
type DoNotContactError struct {
	TargetID int64
	Reason   string
}

func (e *DoNotContactError) Error() string {
	return fmt.Sprintf("target %d skipped: %s", e.TargetID, e.Reason)
}

// Unwrap makes the error ErrStale: the task has nothing left to do.
func (e *DoNotContactError) Unwrap() error { return ErrStale }

// skipDoNotContactSQL skips the targets $1 that a do-not-contact entry
// stops, at $2, and returns their ids and reasons. A person is known by
// the target's normalised identifier, its provider id, and the provider id
// the people cache holds for it.
const skipDoNotContactSQL = `WITH m AS (
		SELECT t.id, m.reason FROM targets t JOIN accounts a ON a.id = t.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
		CROSS JOIN LATERAL dnc_match(t.account_id, t.campaign_id, a.provider,
			ARRAY[t.normalized_identifier, t.provider_id, p.provider_id]) m
		WHERE t.id = ANY ($1::bigint[]))
	UPDATE targets t SET status = 'skipped', last_error = m.reason, error_type = '` + ErrorTypeDoNotContact + `',
		wait_reason = NULL, updated_at = $2, finished_at = $2
	FROM m WHERE t.id = m.id RETURNING t.id, m.reason`

// skipDoNotContact skips the targets of ids that a do-not-contact entry
// stops, in tx, and returns their reasons by target id.
func skipDoNotContact(ctx context.Context, tx pgx.Tx, ids []int64, now time.Time) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, skipDoNotContactSQL, ids, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var reason string
		if err := rows.Scan(&id, &reason); err != nil {
			return nil, err
		}
		out[id] = reason
	}
	return out, rows.Err()
}

// dropDoNotContactSQL is skipDoNotContactSQL for claimed targets whose
// normalised identifier and provider id ($3, $4) may be known in Go only
// (a new target ClaimAndPrepare normalised): the match uses them, and a
// target skipped gets them written.
const dropDoNotContactSQL = `WITH m AS (
		SELECT t.id, m.reason, u.norm, u.pid FROM unnest($1::bigint[], $3::text[], $4::text[]) AS u(id, norm, pid)
		JOIN targets t ON t.id = u.id JOIN accounts a ON a.id = t.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = coalesce(nullif(u.norm, ''), t.normalized_identifier)
		CROSS JOIN LATERAL dnc_match(t.account_id, t.campaign_id, a.provider,
			ARRAY[coalesce(nullif(u.norm, ''), t.normalized_identifier), coalesce(nullif(u.pid, ''), t.provider_id), p.provider_id]) m)
	UPDATE targets t SET status = 'skipped', last_error = m.reason, error_type = '` + ErrorTypeDoNotContact + `',
		wait_reason = NULL, updated_at = $2, finished_at = $2,
		normalized_identifier = coalesce(nullif(m.norm, ''), t.normalized_identifier), provider_id = coalesce(nullif(m.pid, ''), t.provider_id)
	FROM m WHERE t.id = m.id RETURNING t.id, m.reason`

// dropDoNotContact is the scheduler's check when it plans targets: the
// claimed targets a do-not-contact entry stops are skipped in tx and left
// out of the result.
func dropDoNotContact(ctx context.Context, tx pgx.Tx, claimed []Claimed, now time.Time) ([]Claimed, error) {
	if len(claimed) == 0 {
		return claimed, nil
	}
	ids := make([]int64, len(claimed))
	norms := make([]string, len(claimed))
	pids := make([]string, len(claimed))
	for i, c := range claimed {
		ids[i], norms[i], pids[i] = c.Target.ID, c.Target.NormalizedIdentifier, c.Target.ProviderID
	}
	rows, err := tx.Query(ctx, dropDoNotContactSQL, ids, now, norms, pids)
	if err != nil {
		return nil, err
	}
	stopped := map[int64]bool{}
	var id int64
	var reason string
	if _, err := pgx.ForEachRow(rows, []any{&id, &reason}, func() error {
		stopped[id] = true
		return nil
	}); err != nil {
		return nil, err
	}
	if len(stopped) == 0 {
		return claimed, nil
	}
	kept := claimed[:0]
	for _, c := range claimed {
		if !stopped[c.Target.ID] {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// checkDoNotContact is the reservation's check: a target a
// do-not-contact entry stops is skipped in tx, and the answer is a
// *DoNotContactError, which Begin commits.
func checkDoNotContact(ctx context.Context, tx pgx.Tx, t *Target, now time.Time) error {
	stopped, err := skipDoNotContact(ctx, tx, []int64{t.ID}, now)
	if err != nil {
		return err
	}
	if reason, stop := stopped[t.ID]; stop {
		return &DoNotContactError{TargetID: t.ID, Reason: reason}
	}
	return nil
}
