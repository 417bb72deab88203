package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// Pacing modes of an account (accounts.pacing).
const (
	// PacingDefault applies the provider's defaults to every action the
	// account sets no limits (or no gap) of its own for, and spreads an
	// action with limits but no gap evenly over its tightest window.
	PacingDefault = "default"
	// PacingUnlimited is the explicit opt-out: only what the account sets
	// itself applies, nothing if it sets nothing.
	PacingUnlimited = "unlimited"
)

// Where an action's limits or gap come from.
const (
	SourceCustom  = "custom"  // the account's own rows or columns
	SourceDefault = "default" // its provider's defaults (provider_limits, provider_pacing)
	// SourceSpread is a gap the account did not set: an even spread of the
	// action's limits over the working hours (see Account.Pace).
	SourceSpread = "spread"
)

// Gap is the minimum time between two calls of one action of an account,
// plus a random share of Jitter, counted from the answer to the first.
type Gap struct {
	Action      Action
	Min, Jitter time.Duration
	// Source is SourceCustom, SourceDefault or SourceSpread.
	Source string
}

// Mean is the average gap.
func (g Gap) Mean() time.Duration { return g.Min + g.Jitter/2 }

// IsZero reports whether there is no gap.
func (g Gap) IsZero() bool { return g.Min <= 0 && g.Jitter <= 0 }

// Pace is how one action of an account is paced: the limits and the gap
// that apply to it. Working hours apply to every action.
type Pace struct {
	Action Action
	Limits []Limit
	// LimitSource is SourceCustom or SourceDefault ("" without limits).
	LimitSource string
	Gap         Gap
}

// Paced reports whether the action has anything to count: limits or a gap.
func (p Pace) Paced() bool { return len(p.Limits) > 0 || !p.Gap.IsZero() }

// Pace returns how action is paced on the account: the limits and gap that
// apply (its own, else its provider's unless it opted out), and for an
// action with limits but no gap at all (and not opted out), an even spread:
// half of the tightest window's per/max (scaled to the share of the window
// inside working hours, for windows of a day or more) plus up to as much
// again, so the budget is used in three quarters of the open time on
// average and never leaves in a burst.
func (a *Account) Pace(action Action) Pace {
	p := Pace{Action: action, Limits: a.LimitsFor(action), LimitSource: a.LimitSources[action]}
	if len(p.Limits) > 0 && p.LimitSource == "" {
		p.LimitSource = SourceCustom
	}
	for _, g := range a.Gaps {
		if g.Action == action {
			p.Gap = g
		}
	}
	if action == ActionInvite && (a.MinGap > 0 || a.GapJitter > 0) {
		// The invitation gap is the accounts row's own columns.
		p.Gap = Gap{Action: action, Min: a.MinGap, Jitter: a.GapJitter, Source: SourceCustom}
	}
	if p.Gap.IsZero() && len(p.Limits) > 0 && a.Pacing != PacingUnlimited {
		even := time.Duration(0)
		for _, l := range p.Limits {
			e := time.Duration(float64(l.Per) / float64(l.Max) * a.openShare(l.Per))
			if even == 0 || e < even {
				even = e
			}
		}
		p.Gap = Gap{Action: action, Min: even / 2, Jitter: even / 2, Source: SourceSpread}
	}
	return p
}

// openShare is the share of a window of length per that lies inside the
// account's working hours: the working day's for windows of a day or more,
// the working week's for a week or more; 1 for shorter windows (which may
// lie wholly inside them) or when the hours are always open.
func (a *Account) openShare(per time.Duration) float64 {
	day := a.WorkEnd - a.WorkStart
	days := map[int]bool{}
	for _, d := range a.WorkDays {
		days[d] = true
	}
	if day <= 0 || len(days) == 0 {
		return 1
	}
	share := 1.0
	switch {
	case per >= 7*24*time.Hour:
		share = float64(day) * float64(len(days)) / float64(7*24*time.Hour)
	case per >= 24*time.Hour:
		share = float64(day) / float64(24*time.Hour)
	}
	return min(share, 1)
}

// PacedActions returns the actions the account's pacing says something
// about (limits or a gap from any source), invitations first.
func (a *Account) PacedActions() []Action {
	out := []Action{ActionInvite}
	seen := map[Action]bool{ActionInvite: true}
	add := func(action Action) {
		if !seen[action] {
			seen[action] = true
			out = append(out, action)
		}
	}
	if a.Provider == provider.Unipile {
		add(ActionLookup)
	}
	for _, l := range a.Limits {
		add(l.Action)
	}
	for _, g := range a.Gaps {
		add(g.Action)
	}
	return out
}

// PacingSummary says in a word how the account is paced: "unlimited"
// (opted out, nothing of its own), "default" (its provider's defaults
// only), "custom" (its own settings only) or "custom+default" (both).
func (a *Account) PacingSummary() string {
	custom, def := false, false
	for _, action := range a.PacedActions() {
		p := a.Pace(action)
		for _, s := range []string{p.LimitSource, p.Gap.Source} {
			switch s {
			case SourceCustom:
				custom = true
			case SourceDefault:
				def = true
			}
		}
	}
	switch {
	case custom && def:
		return "custom+default"
	case def:
		return "default"
	case custom:
		return "custom"
	case a.Pacing == PacingUnlimited:
		return "unlimited"
	}
	return "none"
}

// SetPacing sets the account's pacing mode and removes everything it set
// itself (limits, gaps of every action, the drawn next invitation time):
// PacingDefault puts it on its provider's defaults, PacingUnlimited opts
// it out of any pacing. Workers use it from their next reservation.
func (s *Store) SetPacing(ctx context.Context, accountID int64, mode string) error {
	return translate(fmt.Sprintf("set pacing of account %d to %s", accountID, mode), pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET pacing = $2, min_gap = '0', gap_jitter = '0', next_send_at = NULL, updated_at = now()
			WHERE id = $1`, accountID, mode)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_limits WHERE account_id = $1`, accountID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM account_pacing WHERE account_id = $1`, accountID)
		return err
	}))
}

// SetGaps sets the account's own gap of each action in gaps (the
// invitation gap in accounts.min_gap and gap_jitter, the others in
// account_pacing); other actions keep theirs.
func (s *Store) SetGaps(ctx context.Context, accountID int64, gaps []Gap) error {
	return translate(fmt.Sprintf("set gaps of account %d", accountID), pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&exists); err != nil {
			return err
		}
		return setGaps(ctx, tx, accountID, gaps)
	}))
}

func setGaps(ctx context.Context, tx pgx.Tx, accountID int64, gaps []Gap) error {
	for _, g := range gaps {
		var err error
		if g.Action == ActionInvite {
			_, err = tx.Exec(ctx, `UPDATE accounts SET min_gap = make_interval(secs => $2), gap_jitter = make_interval(secs => $3),
				updated_at = now() WHERE id = $1`, accountID, g.Min.Seconds(), g.Jitter.Seconds())
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO account_pacing (account_id, action, min_gap, gap_jitter)
				VALUES ($1, $2, make_interval(secs => $3), make_interval(secs => $4))
				ON CONFLICT (account_id, action) DO UPDATE SET min_gap = excluded.min_gap, gap_jitter = excluded.gap_jitter`,
				accountID, g.Action, g.Min.Seconds(), g.Jitter.Seconds())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// actionNoun names an action's calls in reasons: "invitations".
func actionNoun(action Action) string {
	switch action {
	case ActionInvite:
		return "invitations"
	case ActionLookup:
		return "profile lookups"
	case ActionWithdraw:
		return "withdrawals"
	case ActionPoll:
		return "relation polls"
	}
	return string(action) + " calls"
}

// gapNote says where a gap comes from, for reasons: the account's own gap
// needs no note.
func gapNote(g Gap) string {
	switch g.Source {
	case SourceDefault:
		return " (provider default pacing)"
	case SourceSpread:
		return " (limits spread evenly)"
	}
	return ""
}

// gapFree checks the gap of action on the account against the ledger: the
// latest call of the action must be answered, and its drawn gap (or, for a
// call made without one, the minimum gap) over. It returns when the next
// call may go (zero if now) and why not now. The caller holds the
// account's row lock, so the calls of one action never overlap.
func gapFree(ctx context.Context, tx pgx.Tx, a *Account, g Gap, now time.Time) (time.Time, string, error) {
	var inFlight bool
	var next *time.Time
	err := tx.QueryRow(ctx, `SELECT window_at = 'infinity',
			CASE WHEN window_at = 'infinity' THEN NULL ELSE window_at + coalesce(gap, make_interval(secs => $3)) END
		FROM sends WHERE account_id = $1 AND action = $2 ORDER BY window_at DESC LIMIT 1`,
		a.ID, g.Action, g.Min.Seconds()).Scan(&inFlight, &next)
	switch {
	case err == pgx.ErrNoRows:
		return time.Time{}, "", nil
	case err != nil:
		return time.Time{}, "", err
	case inFlight:
		// The next call waits at least the minimum gap after the answer.
		wait := minDur(max(g.Min, 50*time.Millisecond), time.Second)
		return now.Add(wait), fmt.Sprintf("another of this account's %s is in flight", actionNoun(g.Action)), nil
	case next != nil && next.After(now):
		return *next, "minimum gap between " + actionNoun(g.Action) + gapNote(g), nil
	}
	return time.Time{}, "", nil
}
