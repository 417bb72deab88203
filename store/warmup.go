package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Warmup is an account's ramp as of now (the view account_warmup_state,
// docs/warmup.md): its daily invitation budget grows by StepCount every
// Step from StartCount up to FullCount, and the account's invitation
// windows hold Today/FullCount of their count until then.
type Warmup struct {
	AccountID int64
	// Stage counts the stages completed (0 on the first day); Day is
	// Stage+1, "day 4 of ramp".
	Stage, Day int
	// Today is today's daily invitation budget; FullCount the budget that
	// ends the ramp. Done: Today reached FullCount, the ramp limits
	// nothing.
	Today, FullCount int
	Done             bool
	// HeldUntil is set while a provider's warning holds the ramp.
	HeldUntil time.Time
	// The ramp's settings (account_warmups).
	StartCount, StepCount int
	Step, HoldFor         time.Duration
	// LastWarning is the latest warning that stepped the ramp back or
	// held it, and when it came.
	LastWarning   string
	LastWarningAt time.Time
}

const warmupColumns = `account_id, stage, day, today, full_count, done, held_until, start_count, step_count,
	extract(epoch from step)::float8, extract(epoch from hold_for)::float8, coalesce(last_warning, ''), last_warning_at`

func scanWarmup(row pgx.Row) (*Warmup, error) {
	var w Warmup
	var held, warned *time.Time
	var step, hold float64
	if err := row.Scan(&w.AccountID, &w.Stage, &w.Day, &w.Today, &w.FullCount, &w.Done, &held, &w.StartCount, &w.StepCount,
		&step, &hold, &w.LastWarning, &warned); err != nil {
		return nil, err
	}
	w.HeldUntil, w.LastWarningAt = finite(held), finite(warned)
	w.Step, w.HoldFor = seconds(step), seconds(hold)
	return &w, nil
}

// Warmup returns the account's ramp as of now, or ErrNotFound when it has
// none.
func (s *Store) Warmup(ctx context.Context, accountID int64) (*Warmup, error) {
	w, err := scanWarmup(s.pool.QueryRow(ctx, `SELECT `+warmupColumns+` FROM account_warmup_state WHERE account_id = $1`, accountID))
	return w, translate(fmt.Sprintf("warm-up of account %d", accountID), err)
}

// Warmups returns every ramp as of now, by account id.
func (s *Store) Warmups(ctx context.Context) (map[int64]*Warmup, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+warmupColumns+` FROM account_warmup_state`)
	if err != nil {
		return nil, translate("warm-ups", err)
	}
	defer rows.Close()
	out := map[int64]*Warmup{}
	for rows.Next() {
		w, err := scanWarmup(rows)
		if err != nil {
			return nil, translate("warm-ups", err)
		}
		out[w.AccountID] = w
	}
	return out, translate("warm-ups", rows.Err())
}

// WarmupSettings are what SetWarmup writes; a zero value takes the
// provider's default (provider_warmup). FullCount zero means the
// account's own daily invitation limit.
type WarmupSettings struct {
	StartCount, StepCount, FullCount int
	Step, HoldFor                    time.Duration
}

// SetWarmup puts the account on a ramp starting now (replacing any ramp it
// had). Invalid settings are ErrInvalid with a message naming the column.
func (s *Store) SetWarmup(ctx context.Context, accountID int64, ws WarmupSettings) error {
	nullInt := func(n int) *int {
		if n == 0 {
			return nil
		}
		return &n
	}
	nullSecs := func(d time.Duration) *float64 {
		if d == 0 {
			return nil
		}
		f := d.Seconds()
		return &f
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO account_warmups (account_id, start_count, step_count, full_count, step, hold_for)
		VALUES ($1, $2, $3, $4, make_interval(secs => $5), make_interval(secs => $6))
		ON CONFLICT (account_id) DO UPDATE SET start_count = coalesce($2, (SELECT start_count FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = $1), 5),
			step_count = coalesce($3, (SELECT step_count FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = $1), 5),
			full_count = $4,
			step = coalesce(make_interval(secs => $5), (SELECT step FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = $1), interval '1 day'),
			hold_for = coalesce(make_interval(secs => $6), (SELECT hold_for FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = $1), interval '3 days'),
			stage = 0, stage_since = now(), updated_at = now()`,
		accountID, nullInt(ws.StartCount), nullInt(ws.StepCount), nullInt(ws.FullCount), nullSecs(ws.Step), nullSecs(ws.HoldFor))
	return translate(fmt.Sprintf("set warm-up of account %d", accountID), err)
}

// EndWarmup takes the account off its ramp: its limits apply in full. It
// reports whether it had one.
func (s *Store) EndWarmup(ctx context.Context, accountID int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM account_warmups WHERE account_id = $1`, accountID)
	return tag.RowsAffected() > 0, translate(fmt.Sprintf("end warm-up of account %d", accountID), err)
}

// WarmupWarning records a provider's warning on the account's ramp, as
// Finish does for Finish.WarmupWarning: for warnings found after the
// answer was recorded (a cannot_resend_yet escalation counted later).
func (s *Store) WarmupWarning(ctx context.Context, accountID int64, now time.Time, reason string) error {
	return translate(fmt.Sprintf("warm-up warning of account %d", accountID), stepBackWarmup(ctx, s.pool, accountID, now, reason))
}

// stepBackWarmup applies a provider's warning to the account's ramp, if
// it has one: the ramp steps back one stage from where it is (a ramp that
// is done, from its last stage) and holds there for its hold_for. A
// warning while the ramp is held already extends the hold without a
// second step back, so that a burst of 429s costs one stage, not many.
func stepBackWarmup(ctx context.Context, db execer, accountID int64, now time.Time, reason string) error {
	_, err := db.Exec(ctx, `UPDATE account_warmups w SET
			stage = CASE WHEN w.stage_since > $2 THEN w.stage
				ELSE greatest(least(w.stage + floor(extract(epoch from $2 - w.stage_since) / extract(epoch from w.step))::bigint,
					CASE WHEN w.step_count > 0 THEN ceil((s.full_count - w.start_count)::numeric / w.step_count)::bigint ELSE 0 END) - 1, 0) END,
			stage_since = greatest(w.stage_since, $2::timestamptz + w.hold_for),
			last_warning = $3, last_warning_at = $2, updated_at = $2
		FROM account_warmup_state s WHERE w.account_id = $1 AND s.account_id = w.account_id`, accountID, now, truncate(reason, 500))
	return err
}

// optOutWarmup takes a new account off the ramp its provider's defaults
// put it on (NewAccount.NoWarmup).
func optOutWarmup(ctx context.Context, db execer, accountID int64) error {
	_, err := db.Exec(ctx, `DELETE FROM account_warmups WHERE account_id = $1`, accountID)
	return err
}
