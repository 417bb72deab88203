package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// The functions of this file read and write the ledger (sends): one row
// per call to a provider, reserved before the call and answered after it.

// Calls selects ledger rows. A zero field matches any row; the fields set
// must all hold.
type Calls struct {
	Account  int64   // the sender's account
	Accounts []int64 // any of these senders
	Worker   int64   // the worker that made the call
	Actions  []store.Action
	Outcomes []store.Outcome
	// NotOutcomes excludes these outcomes.
	NotOutcomes  []store.Outcome
	NoTarget     bool   // calls for no target (polls, sent list reads)
	HTTPStatus   int    // the provider's HTTP status
	ErrorPrefix  string // error_type starts with it
	InvitationID string
	Detail       string // the detail, exactly
	// Unsettled: not settled (settled_at not set; an uncertain outcome
	// is settled by asking the provider).
	Unsettled bool
	// Settled: settled (settled_at set).
	Settled bool
	// ReservedAfter: reserved after this time.
	ReservedAfter time.Time
	// AnsweredWithin: answered (window_at) within this long before now,
	// and answered (not in flight).
	AnsweredWithin time.Duration
	// LookedUp: calls of targets that a lookup was made for.
	LookedUp bool
	// AnsweredWithinInterval: answered within this Postgres interval
	// before now ('1 day', '7 days'), as a limit's window counts; rows
	// in flight count (their window_at is infinity).
	AnsweredWithinInterval string
}

func (c Calls) where() (string, []any) {
	var conds []string
	var args []any
	// add adds a condition whose placeholders $? take vs in order.
	add := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "$?", fmt.Sprintf("$%d", len(args)), 1)
		}
		conds = append(conds, cond)
	}
	if c.Account != 0 {
		add("account_id = $?", c.Account)
	}
	if c.Accounts != nil {
		add("account_id = ANY($?)", c.Accounts)
	}
	if c.Worker != 0 {
		add("worker_id = $?", c.Worker)
	}
	if c.Actions != nil {
		a := make([]string, len(c.Actions))
		for i, x := range c.Actions {
			a[i] = string(x)
		}
		add("action = ANY($?)", a)
	}
	if c.Outcomes != nil {
		add("outcome = ANY($?)", outcomeTexts(c.Outcomes))
	}
	if c.NotOutcomes != nil {
		add("outcome <> ALL($?)", outcomeTexts(c.NotOutcomes))
	}
	if c.NoTarget {
		conds = append(conds, "target_id IS NULL")
	}
	if c.HTTPStatus != 0 {
		add("http_status = $?", c.HTTPStatus)
	}
	if c.ErrorPrefix != "" {
		add("starts_with(error_type, $?)", c.ErrorPrefix)
	}
	if c.InvitationID != "" {
		add("invitation_id = $?", c.InvitationID)
	}
	if c.Detail != "" {
		add("detail = $?", c.Detail)
	}
	if c.LookedUp {
		conds = append(conds, "target_id IN (SELECT target_id FROM sends WHERE action = 'lookup')")
	}
	if c.Unsettled {
		conds = append(conds, "settled_at IS NULL")
	}
	if c.Settled {
		conds = append(conds, "settled_at IS NOT NULL")
	}
	if !c.ReservedAfter.IsZero() {
		add("reserved_at > $?", c.ReservedAfter)
	}
	if c.AnsweredWithin != 0 {
		days, secs := interval(c.AnsweredWithin)
		add("window_at > now() - make_interval(days => $?, secs => $?) AND window_at < 'infinity'", days, secs)
	}
	if c.AnsweredWithinInterval != "" {
		add("window_at > now() - $?::interval", c.AnsweredWithinInterval)
	}
	if len(conds) == 0 {
		return "true", nil
	}
	return strings.Join(conds, " AND "), args
}

// CountCalls counts the ledger rows c selects.
func CountCalls(t testing.TB, db DB, c Calls) int {
	t.Helper()
	where, args := c.where()
	return count(t, db, fmt.Sprintf("calls %+v", c), `SELECT count(*) FROM sends WHERE `+where, args...)
}

// LatestAnswer returns the latest answer time (window_at) of the ledger
// rows c selects, and how many there are.
func LatestAnswer(t testing.TB, db DB, c Calls) (int, time.Time) {
	t.Helper()
	where, args := c.where()
	var n int
	var at *time.Time
	one(t, db, "latest answer", `SELECT count(*), max(window_at) FROM sends WHERE `+where, args, &n, &at)
	if at == nil {
		return n, time.Time{}
	}
	return n, *at
}

// DescribeCalls returns the ledger rows c selects, one line each, for a
// failing test's log.
func DescribeCalls(t testing.TB, db DB, c Calls) []string {
	t.Helper()
	where, args := c.where()
	return rows(t, db, "calls", `SELECT format('send %s target %s %s %s worker %s %L reserved %s answered %s', id, coalesce(target_id, 0),
			action, outcome, coalesce(worker_id, 0), coalesce(detail, ''), to_char(reserved_at, 'HH24:MI:SS.MS'), to_char(window_at, 'HH24:MI:SS.MS'))
		FROM sends WHERE `+where+` ORDER BY id`, args,
		func(r pgx.Rows) (string, error) {
			var s string
			err := r.Scan(&s)
			return s, err
		})
}

// InFlight counts the calls in flight (reserved, not answered).
func InFlight(t testing.TB, db DB) int {
	t.Helper()
	return CountCalls(t, db, Calls{Outcomes: []store.Outcome{store.OutcomeInFlight}})
}

// LedgerRows counts every row of the ledger.
func LedgerRows(t testing.TB, db DB) int {
	t.Helper()
	return CountCalls(t, db, Calls{})
}

// Polls counts the account polls in the ledger, and those not answered
// well (neither polled nor still in flight).
func Polls(t testing.TB, db DB) (polls, bad int) {
	t.Helper()
	one(t, db, "polls", `SELECT count(*), count(*) FILTER (WHERE outcome NOT IN ('polled', 'in_flight'))
		FROM sends WHERE action = 'poll'`, nil, &polls, &bad)
	return polls, bad
}

// OutcomeOf returns the outcome of the ledger row.
func OutcomeOf(t testing.TB, db DB, send int64) store.Outcome {
	t.Helper()
	var o store.Outcome
	one(t, db, "outcome", `SELECT outcome FROM sends WHERE id = $1`, []any{send}, &o)
	return o
}

// ActionsOf returns the actions of the target's calls in ledger order,
// joined by commas ("invite,lookup").
func ActionsOf(t testing.TB, db DB, target int64) string {
	t.Helper()
	var s *string
	one(t, db, "actions of a target", `SELECT string_agg(action, ',' ORDER BY id) FROM sends WHERE target_id = $1`, []any{target}, &s)
	if s == nil {
		return ""
	}
	return *s
}

// CallTime is when a call was reserved and when it was answered.
type CallTime struct{ Reserved, Answered time.Time }

// CallTimes returns the account's calls of the action in order of
// reservation.
func CallTimes(t testing.TB, db DB, account int64, action store.Action) []CallTime {
	t.Helper()
	return rows(t, db, "call times", `SELECT reserved_at, window_at FROM sends WHERE account_id = $1 AND action = $2 ORDER BY reserved_at`,
		[]any{account, string(action)}, func(r pgx.Rows) (CallTime, error) {
			var c CallTime
			err := r.Scan(&c.Reserved, &c.Answered)
			return c, err
		})
}

// CallsOfStoppedTargets counts the calls for targets stopped as
// do-not-contact.
func CallsOfStoppedTargets(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "calls of do-not-contact targets", `SELECT count(*) FROM sends s JOIN targets t ON t.id = s.target_id
		WHERE t.error_type = 'do_not_contact'`)
}

// SenderMismatches counts the targets invited (sent) by two accounts, and
// the invitations reserved by another account than the target's sender.
func SenderMismatches(t testing.TB, db DB) (twoSenders, wrongSender int) {
	t.Helper()
	one(t, db, "sender mismatches", `SELECT
			(SELECT count(*) FROM (SELECT target_id FROM sends WHERE action = 'invite' AND outcome = 'sent'
				GROUP BY target_id HAVING count(DISTINCT account_id) > 1) x),
			(SELECT count(*) FROM sends s JOIN targets t ON t.id = s.target_id
				WHERE s.action = 'invite' AND s.account_id <> t.account_id)`, nil, &twoSenders, &wrongSender)
	return twoSenders, wrongSender
}

// LookedUpForOthers counts the lookups made by any of the accounts for
// targets that another sender now holds.
func LookedUpForOthers(t testing.TB, db DB, accounts []int64) int {
	t.Helper()
	return count(t, db, "lookups for other senders", `SELECT count(*) FROM sends l JOIN targets t ON t.id = l.target_id
		WHERE l.action = 'lookup' AND l.account_id = ANY($1) AND t.account_id <> l.account_id`, accounts)
}

// Settling is what the settling of uncertain invitations left in the
// ledger.
type Settling struct {
	Lookups     int // lookups made to settle (detail 'settle:…')
	SettledSent int // invitations settled as sent, with the invitation id asked for
	SettledNot  int // invitations settled as not sent (outcome unknown)
}

// SettlingOf reads the settling of uncertain invitations: invitationID is
// the id the provider gave the one that went out.
func SettlingOf(t testing.TB, db DB, invitationID string) Settling {
	t.Helper()
	var s Settling
	one(t, db, "settling", `SELECT
			(SELECT count(*) FROM sends WHERE action = 'lookup' AND detail LIKE 'settle:%'),
			(SELECT count(*) FROM sends WHERE action = 'invite' AND outcome = 'sent' AND settled_at IS NOT NULL AND invitation_id = $1),
			(SELECT count(*) FROM sends WHERE action = 'invite' AND outcome = 'unknown' AND settled_at IS NOT NULL)`,
		[]any{invitationID}, &s.Lookups, &s.SettledSent, &s.SettledNot)
	return s
}

// InFlightAtProcess counts the invitations in flight at the worker
// process with the pid.
func InFlightAtProcess(t testing.TB, db DB, pid int) int {
	t.Helper()
	return count(t, db, "invitations in flight at a process", `SELECT count(*) FROM sends s JOIN workers w ON w.id = s.worker_id
		WHERE s.outcome = 'in_flight' AND s.action = 'invite' AND w.pid = $1`, pid)
}

// UnsettledOrphans counts the worker's invitations still in flight, or
// unknown and not settled.
func UnsettledOrphans(t testing.TB, db DB, worker int64) int {
	t.Helper()
	return count(t, db, "unsettled orphans", `SELECT count(*) FROM sends WHERE worker_id = $1 AND action = 'invite'
		AND (outcome = 'in_flight' OR settled_at IS NULL AND outcome = 'unknown')`, worker)
}

// OrphansSettledByLookup counts the worker's invitations settled by a
// settling lookup of their target reserved within lease of the
// invitation's reservation.
func OrphansSettledByLookup(t testing.TB, db DB, worker int64, lease time.Duration) int {
	t.Helper()
	return count(t, db, "orphans settled by a lookup", `SELECT count(*) FROM sends o WHERE o.worker_id = $1 AND o.action = 'invite' AND o.settled_at IS NOT NULL
		AND EXISTS (SELECT 1 FROM sends l WHERE l.target_id = o.target_id AND l.action = 'lookup' AND l.detail LIKE 'settle:%'
			AND l.reserved_at < o.reserved_at + make_interval(secs => $2))`, worker, lease.Seconds())
}

// Send is a ledger row a test writes: a call made before the test, or by
// a worker the test plays.
type Send struct {
	Account int64
	Target  int64 // zero: a call for no target
	Action  store.Action
	// Reserved is when the call was reserved (zero: now, the database's
	// clock); Answered when its answer came (zero: not answered, window_at
	// infinity).
	Reserved, Answered time.Time
	// Outcome is the answer (empty: in flight).
	Outcome store.Outcome
	Detail  string
	Worker  int64 // zero: none
}

// AddSend writes the ledger row and returns its id.
func AddSend(t testing.TB, db DB, s Send) int64 {
	t.Helper()
	var reserved, answered any
	if !s.Reserved.IsZero() {
		reserved = s.Reserved
	}
	if !s.Answered.IsZero() {
		answered = s.Answered
	}
	return id(t, db, "add a ledger row", `INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, detail, worker_id)
		VALUES ($1, nullif($2, 0), $3, coalesce($4, now()), coalesce($5, 'infinity'::timestamptz), coalesce(nullif($6, ''), 'in_flight'), nullif($7, ''), nullif($8, 0))
		RETURNING id`, s.Account, s.Target, string(s.Action), reserved, answered, string(s.Outcome), s.Detail, s.Worker)
}

// AddSends writes the ledger rows.
func AddSends(t testing.TB, db DB, ss ...Send) {
	t.Helper()
	for _, s := range ss {
		AddSend(t, db, s)
	}
}

// RecordUnansweredInvites writes, for every target, the invitation that a
// dead worker's recovery leaves: reserved 10 seconds ago, closed a second
// later with an unknown outcome and the detail.
func RecordUnansweredInvites(t testing.TB, db DB, detail string) {
	t.Helper()
	exec(t, db, "unanswered invitations", `INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, detail)
		SELECT account_id, id, 'invite', now() - interval '10 seconds', now() - interval '9 seconds', 'unknown', $1 FROM targets`, detail)
}

// SendQueued records an invitation sent at for every queued target (a
// ledger row with the target's sender) and marks the target sent, as
// workers would.
func SendQueued(t testing.TB, db DB, at time.Time) {
	t.Helper()
	exec(t, db, "send the queued targets", `WITH s AS (INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome)
			SELECT account_id, id, 'invite', $1, $1, 'sent' FROM targets WHERE status = 'queued' RETURNING target_id)
		UPDATE targets SET status = 'sent', finished_at = $1 WHERE id IN (SELECT target_id FROM s)`, at)
}

func outcomeTexts(os []store.Outcome) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = string(o)
	}
	return out
}

// DanglingRows counts the ledger and owner rows that name an account or a
// target that does not exist. No foreign key checks them (migration
// 00019): the invitation path's writers hold what they name locked, and
// the tests that kill processes and restart servers check that none
// appears.
func DanglingRows(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "dangling ledger and owner rows", `SELECT
		(SELECT count(*) FROM sends s WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = s.account_id)
			OR s.target_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = s.target_id))
		+ (SELECT count(*) FROM person_owners o WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = o.account_id)
			OR o.target_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = o.target_id))`)
}
