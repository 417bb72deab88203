package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/provider"
)

// AccountStatus is the state of an account (accounts.status).
type AccountStatus string

// Account statuses.
const (
	AccountActive   AccountStatus = "active"   // sends within its pacing
	AccountPaused   AccountStatus = "paused"   // waits until paused_until, then sends again
	AccountDisabled AccountStatus = "disabled" // waits until an operator resumes it
)

// Action is a kind of call to a provider, paced and counted against an
// account's limits (sends.action, account_limits.action).
type Action string

// Actions counted against limits.
const (
	ActionInvite   Action = "invite"
	ActionLookup   Action = "lookup"
	ActionWithdraw Action = "withdraw"
	ActionPoll     Action = "poll"
)

// Limit is one rolling window: at most Max actions in any Per.
type Limit struct {
	Action Action
	Max    int
	Per    time.Duration
}

// String renders the limit as users write it: "25 per 24h0m0s".
func (l Limit) String() string { return fmt.Sprintf("%s %d per %s", l.Action, l.Max, l.Per) }

// Account is a sending identity at a provider, with its pacing rules.
type Account struct {
	ID                int64
	Name              string
	Provider          provider.Name
	ProviderAccountID string
	CredentialsRef    string
	Status            AccountStatus
	PausedUntil       time.Time // zero unless paused
	PauseReason       string
	Timezone          string
	// Working hours, as offsets from midnight in Timezone, and ISO weekdays
	// (1 = Monday).
	WorkStart, WorkEnd time.Duration
	WorkDays           []int
	// MinGap and GapJitter are the account's own invitation gap (the
	// accounts row's columns); Pace gives the gap that applies.
	MinGap, GapJitter time.Duration
	NextSendAt        time.Time // zero when unset
	SlowUntil         time.Time // zero when unset
	// Pacing is PacingDefault or PacingUnlimited.
	Pacing string
	// Limits are the limits that apply (account_limits_effective): the
	// account's own for each action it has any for, else its provider's
	// unless it opted out. LimitSources says, per action, which.
	Limits       []Limit
	LimitSources map[Action]string
	// Gaps are the gaps that apply (account_pacing_effective), one per
	// action at most; Pace adds the even spread of limits without a gap.
	Gaps []Gap
}

// LimitsFor returns the limits that apply to action.
func (a *Account) LimitsFor(action Action) []Limit {
	var out []Limit
	for _, l := range a.Limits {
		if l.Action == action {
			out = append(out, l)
		}
	}
	return out
}

const accountColumns = accountRowColumns + `,
	coalesce((SELECT jsonb_agg(jsonb_build_array(l.action, l.max_count, extract(epoch from l.per), l.source) ORDER BY l.action, l.per)
		FROM account_limits_effective l WHERE l.account_id = a.id), '[]'),
	coalesce((SELECT jsonb_agg(jsonb_build_array(g.action, extract(epoch from g.min_gap), extract(epoch from g.gap_jitter), g.source) ORDER BY g.action)
		FROM account_pacing_effective g WHERE g.account_id = a.id), '[]')`

// accountRowColumns are the accounts row's own columns of accountColumns,
// without the account's effective limits and gaps (AccountsWithWork reads
// those from its RulesCache).
const accountRowColumns = `a.id, a.name, a.provider, a.provider_account_id, a.credentials_ref, a.status,
	a.paused_until, coalesce(a.pause_reason, ''), a.timezone,
	extract(epoch from a.work_start)::float8, extract(epoch from a.work_end)::float8, a.work_days::int[],
	extract(epoch from a.min_gap)::float8, extract(epoch from a.gap_jitter)::float8,
	a.next_send_at, a.slow_until, a.pacing`

// accountRow receives accountColumns (or, with rowDest, accountRowColumns).
type accountRow struct {
	a                  Account
	ws, we, gap, jit   float64
	limits, gaps       [][4]any // [action, max or min gap, per or jitter, source] from JSON
	paused, next, slow *time.Time
	days               []int32
}

func (r *accountRow) dest() []any {
	return append(r.rowDest(), &r.limits, &r.gaps)
}

// rowDest receives accountRowColumns.
func (r *accountRow) rowDest() []any {
	a := &r.a
	return []any{&a.ID, &a.Name, &a.Provider, &a.ProviderAccountID, &a.CredentialsRef, &a.Status,
		&r.paused, &a.PauseReason, &a.Timezone, &r.ws, &r.we, &r.days, &r.gap, &r.jit, &r.next, &r.slow,
		&a.Pacing}
}

func (r *accountRow) account() *Account {
	a := r.a
	a.PausedUntil, a.NextSendAt, a.SlowUntil = finite(r.paused), finite(r.next), finite(r.slow)
	a.WorkStart, a.WorkEnd, a.MinGap, a.GapJitter = seconds(r.ws), seconds(r.we), seconds(r.gap), seconds(r.jit)
	for _, d := range r.days {
		a.WorkDays = append(a.WorkDays, int(d))
	}
	for _, l := range r.limits {
		action, source := Action(l[0].(string)), l[3].(string)
		a.Limits = append(a.Limits, Limit{Action: action, Max: int(number(l[1])), Per: seconds(number(l[2]))})
		if a.LimitSources == nil {
			a.LimitSources = map[Action]string{}
		}
		a.LimitSources[action] = source
	}
	for _, g := range r.gaps {
		a.Gaps = append(a.Gaps, Gap{Action: Action(g[0].(string)), Min: seconds(number(g[1])), Jitter: seconds(number(g[2])), Source: g[3].(string)})
	}
	return &a
}

// number reads a JSON number decoded into an any.
func number(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case json.Number:
		f, _ := n.Float64()
		return f
	}
	return 0
}

// scanAccount scans accountColumns, then any extra columns into extra.
func scanAccount(row pgx.Row, extra ...any) (*Account, error) {
	var r accountRow
	if err := row.Scan(append(r.dest(), extra...)...); err != nil {
		return nil, err
	}
	return r.account(), nil
}

// finite turns a nullable timestamp into a time, zero for NULL.
func finite(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Account returns one account with its limits.
func (s *Store) Account(ctx context.Context, id int64) (*Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1`, id))
	if err != nil {
		return nil, translate(fmt.Sprintf("account %d", id), err)
	}
	return a, nil
}

// AccountByName returns one account by its name.
func (s *Store) AccountByName(ctx context.Context, name string) (*Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.name = $1`, name))
	if err != nil {
		return nil, translate(fmt.Sprintf("account %q", name), err)
	}
	return a, nil
}

// Accounts returns all accounts, by id.
func (s *Store) Accounts(ctx context.Context) ([]*Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts a ORDER BY a.id`)
	if err != nil {
		return nil, translate("list accounts", err)
	}
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, translate("list accounts", err)
		}
		out = append(out, a)
	}
	return out, translate("list accounts", rows.Err())
}

// NewAccount is what CreateAccount needs; zero values take the schema's
// defaults.
type NewAccount struct {
	Name              string
	Provider          provider.Name
	ProviderAccountID string
	CredentialsRef    string
	Timezone          string
	// WorkStart and WorkEnd are the working hours, as times of day in
	// Timezone; both zero: all day. WorkDays are the ISO weekdays it works
	// (1 = Monday ... 7 = Sunday); nil: every day.
	WorkStart, WorkEnd time.Duration
	WorkDays           []int
	MinGap, GapJitter  time.Duration
	Limits             []Limit
	// Gaps are the account's own gaps of other actions (account_pacing);
	// the invitation gap is MinGap and GapJitter.
	Gaps []Gap
	// Pacing is PacingDefault (the schema's default when empty) or
	// PacingUnlimited.
	Pacing string
	// NoWarmup keeps the account off the ramp its provider's defaults
	// would put it on (docs/warmup.md).
	NoWarmup bool
}

// clockText renders a time of day as Postgres reads a time: "09:30:00",
// "24:00:00" for the end of the day.
func clockText(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// CreateAccount inserts an account and its limits and returns its id.
func (s *Store) CreateAccount(ctx context.Context, na NewAccount) (int64, error) {
	op := fmt.Sprintf("create account %q", na.Name)
	if na.CredentialsRef == "" {
		na.CredentialsRef = "default"
	}
	if na.Timezone == "" {
		na.Timezone = "UTC"
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO accounts (name, provider, provider_account_id, credentials_ref, timezone, min_gap, gap_jitter, pacing)
			VALUES ($1, $2, $3, $4, $5, make_interval(secs => $6), make_interval(secs => $7), coalesce(nullif($8, ''), 'default')) RETURNING id`,
			na.Name, na.Provider, na.ProviderAccountID, na.CredentialsRef, na.Timezone,
			na.MinGap.Seconds(), na.GapJitter.Seconds(), na.Pacing).Scan(&id); err != nil {
			return err
		}
		// Hours and days not given keep the schema's defaults (all day,
		// every day).
		var start, end *string
		if na.WorkStart != 0 || na.WorkEnd != 0 {
			s, e := clockText(na.WorkStart), clockText(na.WorkEnd)
			start, end = &s, &e
		}
		if start != nil || na.WorkDays != nil {
			if _, err := tx.Exec(ctx, `UPDATE accounts SET work_start = coalesce($2::time, work_start),
				work_end = coalesce($3::time, work_end), work_days = coalesce($4::smallint[], work_days) WHERE id = $1`,
				id, start, end, na.WorkDays); err != nil {
				return err
			}
		}
		if err := setGaps(ctx, tx, id, na.Gaps); err != nil {
			return err
		}
		if na.NoWarmup {
			if err := optOutWarmup(ctx, tx, id); err != nil {
				return err
			}
		}
		return setLimits(ctx, tx, id, na.Limits)
	})
	return id, translate(op, err)
}

// SetLimits replaces the account's limits for the actions present in
// limits (an action absent from limits keeps its windows). Workers use the
// new numbers from their next reservation.
func (s *Store) SetLimits(ctx context.Context, accountID int64, limits []Limit) error {
	return translate(fmt.Sprintf("set limits of account %d", accountID), pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&exists); err != nil {
			return err
		}
		actions := map[Action]bool{}
		for _, l := range limits {
			actions[l.Action] = true
		}
		for a := range actions {
			if _, err := tx.Exec(ctx, `DELETE FROM account_limits WHERE account_id = $1 AND action = $2`, accountID, a); err != nil {
				return err
			}
		}
		return setLimits(ctx, tx, accountID, limits)
	}))
}

func setLimits(ctx context.Context, tx pgx.Tx, accountID int64, limits []Limit) error {
	for _, l := range limits {
		if _, err := tx.Exec(ctx, `INSERT INTO account_limits (account_id, action, max_count, per)
			VALUES ($1, $2, $3, make_interval(secs => $4))`, accountID, l.Action, l.Max, l.Per.Seconds()); err != nil {
			return err
		}
	}
	return nil
}

// pauseSQL pauses account $1 until $2 with reason $3; a disabled account
// stays disabled. With $4 (keep longer) a longer pause it has stays; with
// $5 (only longer) an account already paused at least until $2 is not
// written at all, its reason included.
const pauseSQL = `UPDATE accounts SET status = 'paused', pause_reason = $3, updated_at = now(),
		paused_until = CASE WHEN $4 AND status = 'paused' AND paused_until > $2 THEN paused_until ELSE $2 END
	WHERE id = $1 AND status <> 'disabled' AND NOT ($5 AND status = 'paused' AND paused_until >= $2)`

// execer runs a statement: a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pauseHow says how a pause meets a pause the account already has.
type pauseHow int

const (
	// pauseExactly is an operator's pause: until is the new end.
	pauseExactly pauseHow = iota
	// pauseAtLeast is a provider's answer (Finish): the reason is the
	// latest, a longer pause stays.
	pauseAtLeast
	// pauseExtend is ExtendPause: a pause only ever gets longer, and
	// nothing is written when it would not.
	pauseExtend
)

// pause pauses an account (pauseSQL) through db.
func pause(ctx context.Context, db execer, id int64, until time.Time, reason string, how pauseHow) (pgconn.CommandTag, error) {
	return db.Exec(ctx, pauseSQL, id, until, reason, how != pauseExactly, how == pauseExtend)
}

// disableSQL disables an account until ResumeAccount, with a reason.
const disableSQL = `UPDATE accounts SET status = 'disabled', paused_until = NULL, pause_reason = $2, updated_at = now()
	WHERE id = $1`

// stopAccount applies what a provider's answer decided for the account
// (Finish and the answers like it): disable it, or pause it until
// pauseUntil (a longer pause stays), or neither when pauseUntil is not
// after now.
func stopAccount(ctx context.Context, tx execer, id int64, disable bool, pauseUntil time.Time, reason string, now time.Time) error {
	var err error
	switch {
	case disable:
		_, err = tx.Exec(ctx, disableSQL, id, reason)
	case pauseUntil.After(now):
		_, err = pause(ctx, tx, id, pauseUntil, reason, pauseAtLeast)
	}
	return err
}

// PauseAccount pauses an account until a time, with a reason. A disabled
// account stays disabled.
func (s *Store) PauseAccount(ctx context.Context, id int64, until time.Time, reason string) error {
	tag, err := pause(ctx, s.pool, id, until, reason, pauseExactly)
	if err == nil && tag.RowsAffected() == 0 {
		if _, err := s.Account(ctx, id); err != nil {
			return err
		}
	}
	return translate(fmt.Sprintf("pause account %d", id), err)
}

// DisableAccount stops an account until ResumeAccount.
func (s *Store) DisableAccount(ctx context.Context, id int64, reason string) error {
	tag, err := s.pool.Exec(ctx, disableSQL, id, reason)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return translate(fmt.Sprintf("disable account %d", id), err)
}

// ResumeAccount makes a paused or disabled account active again, and
// clears the reasons its targets were waiting for: the planner's account
// waits, and targets handed back by workers (while it was paused, outside
// its hours, ...) are due again at once; the planner then finds what still
// applies.
func (s *Store) ResumeAccount(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `WITH a AS (
			UPDATE accounts SET status = 'active', paused_until = NULL, pause_reason = NULL, updated_at = now()
			WHERE id = $1 RETURNING id),
		w AS (DELETE FROM account_waits WHERE account_id IN (SELECT id FROM a)),
		t AS (UPDATE targets SET next_attempt_at = least(next_attempt_at, now()), wait_reason = NULL, updated_at = now()
			WHERE account_id IN (SELECT id FROM a) AND wait_reason IS NOT NULL AND status = 'pending')
		SELECT FROM a`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return translate(fmt.Sprintf("resume account %d", id), err)
}
