package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ImportRows is a stream of targets to import, as pgx.CopyFromSource:
// each row's Values are its line number in the input (int), its
// identifier (string) and its template variables (JSON text). Err ends the
// import with that error.
type ImportRows = pgx.CopyFromSource

const importTempTableSQL = `CREATE TEMP TABLE import_targets (line integer NOT NULL, identifier text NOT NULL, vars jsonb NOT NULL)
			ON COMMIT DROP`

// importInsertSQL moves the imported rows into the campaign; the account
// is set here rather than by the per-row trigger.
const importInsertSQL = `INSERT INTO targets (campaign_id, account_id, identifier, vars)
			SELECT c.id, c.account_id, i.identifier, i.vars FROM import_targets i CROSS JOIN campaigns c
			WHERE c.id = $1 ORDER BY i.line
			ON CONFLICT (campaign_id, identifier) DO NOTHING`

// ImportTargets streams rows into the campaign in one transaction: COPY
// into a temporary table, then INSERT … ON CONFLICT DO NOTHING into
// targets, so identifiers the campaign already has are left alone. copied,
// if not nil, is called between the two. It returns how many targets were
// added. It fails with store.ErrNotFound if the campaign does not exist,
// with rows' own error (unwrapped) if rows ends with one, or with a
// database error.
func (s *Store) ImportTargets(ctx context.Context, campaignID int64, rows ImportRows, copied func()) (int64, error) {
	var inserted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM campaigns WHERE id = $1`, campaignID).Scan(&exists); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("campaign %d: %w", campaignID, ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, importTempTableSQL); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_targets"}, []string{"line", "identifier", "vars"}, rows); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if copied != nil {
			copied()
		}
		tag, err := tx.Exec(ctx, importInsertSQL, campaignID)
		if err != nil {
			return err
		}
		inserted = tag.RowsAffected()
		return nil
	})
	if err != nil {
		if rerr := rows.Err(); rerr != nil && errors.Is(err, rerr) {
			return 0, err
		}
		return 0, fmt.Errorf("import into campaign %d: %w", campaignID, err)
	}
	s.analyzeTargets(ctx, inserted)
	return inserted, nil
}
