package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// HealthPausePrefix starts the pause reason of an account paused because
// its provider reports it not running (disconnected, needing a checkpoint,
// ...). Only such a pause ends by itself when the provider reports the
// account running again; an operator's pause, a provider's 429 or a
// disable after a 401/403 are left alone.
const HealthPausePrefix = "provider reports the account "

// HealthWait is the last_error of a target handed back because its
// account's provider reports the account not running: when the account
// resumes, such targets are due again at once.
const HealthWait = "waiting: account paused: the provider reports it not running"

// HealthChange is what a reported status did to one outreach account.
type HealthChange struct {
	AccountID int64
	Name      string
	// Paused is true when the account was paused for the status now,
	// Resumed when its health pause ended.
	Paused, Resumed bool
}

// healthReason is the pause reason of a provider status.
func healthReason(status string) string {
	hint := "reconnect it at the provider; it resumes by itself once the provider reports it running"
	switch status {
	case "CONNECTING":
		hint = "it is connecting; it resumes by itself once the provider reports it running"
	case "PERMISSIONS":
		hint = "it lacks permissions; fix them at the provider; it resumes by itself once the provider reports it running"
	}
	return HealthPausePrefix + status + ": " + hint
}

// RecordAccountStatus records the status the provider reports for its
// account providerAccountID, for every outreach account using it (Unipile
// accounts for provider.Unipile). An account that is not running is
// paused until now+pauseFor with a reason starting with
// HealthPausePrefix (a longer pause it has stays; a disabled account stays
// disabled): no call is spent on it. One that is running again and is
// paused for its health is resumed, and its waiting targets are due again.
// A report older than the one recorded (webhooks come late) changes
// nothing. It returns what it changed.
func (s *Store) RecordAccountStatus(ctx context.Context, p provider.Name, providerAccountID string, st provider.AccountState, now time.Time, pauseFor time.Duration) ([]HealthChange, error) {
	status := strings.ToUpper(strings.TrimSpace(st.Status))
	if len(status) > 40 {
		status = status[:40]
	}
	var out []HealthChange
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `SELECT a.id, a.name, a.status, coalesce(a.pause_reason, '') FROM accounts a
			JOIN account_polls p ON p.account_id = a.id
			WHERE a.provider = $1 AND a.provider_account_id = $2 AND (p.provider_status_at IS NULL OR p.provider_status_at <= $3)
			ORDER BY a.id FOR UPDATE OF a, p`, p, providerAccountID, now)
		if err != nil {
			return err
		}
		type acc struct {
			id           int64
			name, status string
			reason       string
		}
		accs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (acc, error) {
			var a acc
			err := r.Scan(&a.id, &a.name, &a.status, &a.reason)
			return a, err
		})
		if err != nil {
			return err
		}
		for _, a := range accs {
			if _, err := tx.Exec(ctx, `UPDATE account_polls SET provider_status = $2, provider_status_at = $3 WHERE account_id = $1`,
				a.id, status, now); err != nil {
				return err
			}
			healthPaused := AccountStatus(a.status) == AccountPaused && strings.HasPrefix(a.reason, HealthPausePrefix)
			switch {
			case !st.Running && AccountStatus(a.status) != AccountDisabled:
				tag, err := pause(ctx, tx, a.id, now.Add(pauseFor), healthReason(status), pauseAtLeast)
				if err != nil {
					return err
				}
				if tag.RowsAffected() > 0 && !healthPaused {
					out = append(out, HealthChange{AccountID: a.id, Name: a.name, Paused: true})
				}
			case st.Running && healthPaused:
				if _, err := tx.Exec(ctx, `WITH a AS (
						UPDATE accounts SET status = 'active', paused_until = NULL, pause_reason = NULL, updated_at = now()
						WHERE id = $1 RETURNING id),
					w AS (DELETE FROM account_waits WHERE account_id IN (SELECT id FROM a)),
					t AS (UPDATE targets SET next_attempt_at = least(next_attempt_at, now()), wait_reason = NULL, updated_at = now()
						WHERE account_id IN (SELECT id FROM a) AND status = 'pending' AND (wait_reason IS NOT NULL OR last_error = $2))
					SELECT FROM a`, a.id, HealthWait); err != nil {
					return err
				}
				out = append(out, HealthChange{AccountID: a.id, Name: a.name, Resumed: true})
			}
		}
		return nil
	})
	return out, translate(fmt.Sprintf("record status %s of %s account %s", status, p, providerAccountID), err)
}
