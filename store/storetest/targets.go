package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// The reads of this file check targets: their statuses, their errors,
// their acceptances and withdrawals.

// ended are the statuses a target does not leave.
var ended = []store.TargetStatus{store.TargetSent, store.TargetSkipped, store.TargetFailed}

// Ended returns the statuses a target ends in: sent, skipped, failed.
func Ended() []store.TargetStatus { return append([]store.TargetStatus(nil), ended...) }

// TargetsIn counts the targets in any of the statuses.
func TargetsIn(t testing.TB, db DB, statuses ...store.TargetStatus) int {
	t.Helper()
	return count(t, db, "targets in "+joinStatuses(statuses),
		`SELECT count(*) FROM targets WHERE status = ANY($1)`, statusTexts(statuses))
}

// CampaignTargetsIn counts the campaign's targets in any of the statuses.
func CampaignTargetsIn(t testing.TB, db DB, campaign int64, statuses ...store.TargetStatus) int {
	t.Helper()
	return count(t, db, "campaign's targets in "+joinStatuses(statuses),
		`SELECT count(*) FROM targets WHERE campaign_id = $1 AND status = ANY($2)`, campaign, statusTexts(statuses))
}

// CampaignTargetsMatching counts the campaign's targets with the status
// and the error type, as a listing filters them: an empty status or error
// type matches any.
func CampaignTargetsMatching(t testing.TB, db DB, campaign int64, status store.TargetStatus, errorType string) int {
	t.Helper()
	return count(t, db, "campaign's targets matching a filter",
		`SELECT count(*) FROM targets WHERE campaign_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR error_type = $3)`,
		campaign, string(status), errorType)
}

// Unfinished counts the targets not ended yet (not sent, skipped or failed).
func Unfinished(t testing.TB, db DB) int {
	t.Helper()
	n, err := UnfinishedOrError(db)
	if err != nil {
		t.Fatalf("unfinished targets: %v", err)
	}
	return n
}

// UnfinishedOrError counts the targets not ended yet, returning the
// error: for polling across a Postgres restart, when a query may meet a
// connection the restart closed and the next one gets a fresh one.
func UnfinishedOrError(db DB) (int, error) {
	var n int
	err := db.QueryRow(context.Background(), `SELECT count(*) FROM targets WHERE status <> ALL($1)`, statusTexts(ended)).Scan(&n)
	return n, err
}

// NotSent counts the targets whose status is not sent.
func NotSent(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "targets not sent", `SELECT count(*) FROM targets WHERE status <> 'sent'`)
}

// Touched counts the targets a worker has worked on: ended, or with an
// attempt.
func Touched(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "targets worked on", `SELECT count(*) FROM targets WHERE status = ANY($1) OR attempts <> 0`, statusTexts(ended))
}

// WaitingWithError counts the targets whose last error starts with prefix.
func WaitingWithError(t testing.TB, db DB, prefix string) int {
	t.Helper()
	return count(t, db, "targets with a last error", `SELECT count(*) FROM targets WHERE starts_with(last_error, $1)`, prefix)
}

// Unassigned counts the targets without a sender (a pool's, not yet given one).
func Unassigned(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "targets without a sender", `SELECT count(*) FROM targets WHERE account_id IS NULL`)
}

// WithIdentifiers counts the targets whose identifier is one of identifiers.
func WithIdentifiers(t testing.TB, db DB, identifiers ...string) int {
	t.Helper()
	return count(t, db, "targets by identifier", `SELECT count(*) FROM targets WHERE identifier = ANY($1)`, identifiers)
}

// SentAndSkippedAsDuplicates counts the targets sent, and those skipped
// as a duplicate person or because an invitation to the person is pending.
func SentAndSkippedAsDuplicates(t testing.TB, db DB) (sent, skipped int) {
	t.Helper()
	one(t, db, "sent and duplicate targets", `SELECT count(*) FILTER (WHERE status = 'sent'),
		count(*) FILTER (WHERE status = 'skipped' AND error_type IN ('duplicate', 'invitation_pending')) FROM targets`, nil, &sent, &skipped)
	return sent, skipped
}

// Target is a target's row as the checks read it.
type Target struct {
	ID                                 int64
	Identifier                         string
	Status                             store.TargetStatus
	LastError, ErrorType, InvitationID string // empty when NULL
	Attempts, Deferrals                int
}

const targetColumns = `id, identifier, status, coalesce(last_error, ''), coalesce(error_type, ''),
	coalesce(invitation_id, ''), attempts, deferrals`

func scanTarget(r pgx.Row) (Target, error) {
	var x Target
	err := r.Scan(&x.ID, &x.Identifier, &x.Status, &x.LastError, &x.ErrorType, &x.InvitationID, &x.Attempts, &x.Deferrals)
	return x, err
}

// AllTargets returns every target, in id order.
func AllTargets(t testing.TB, db DB) []Target {
	t.Helper()
	return rows(t, db, "targets", `SELECT `+targetColumns+` FROM targets ORDER BY id`, nil,
		func(r pgx.Rows) (Target, error) { return scanTarget(r) })
}

// OnlyTarget returns the test's one target (the first, if there are more).
func OnlyTarget(t testing.TB, db DB) Target {
	t.Helper()
	x, err := scanTarget(db.QueryRow(context.Background(), `SELECT `+targetColumns+` FROM targets ORDER BY id LIMIT 1`))
	if err != nil {
		t.Fatalf("the target: %v", err)
	}
	return x
}

// CampaignTargetStatus returns the status of the campaign's target (the
// first, if it has more).
func CampaignTargetStatus(t testing.TB, db DB, campaign int64) store.TargetStatus {
	t.Helper()
	var s store.TargetStatus
	one(t, db, "campaign's target", `SELECT status FROM targets WHERE campaign_id = $1 ORDER BY id LIMIT 1`, []any{campaign}, &s)
	return s
}

// TargetID returns the id of the campaign's target with the identifier.
func TargetID(t testing.TB, db DB, campaign int64, identifier string) int64 {
	t.Helper()
	return id(t, db, "target "+identifier, `SELECT id FROM targets WHERE campaign_id = $1 AND identifier = $2`, campaign, identifier)
}

// FirstTarget returns the lowest target id of the campaign in the status;
// zero campaign or empty status match any.
func FirstTarget(t testing.TB, db DB, campaign int64, status store.TargetStatus) int64 {
	t.Helper()
	return id(t, db, "first target", `SELECT min(id) FROM targets WHERE ($1 = 0 OR campaign_id = $1) AND ($2 = '' OR status = $2)`,
		campaign, string(status))
}

// QueuedAt returns when the target was last queued.
func QueuedAt(t testing.TB, db DB, target int64) time.Time {
	t.Helper()
	var at time.Time
	one(t, db, "queued_at", `SELECT queued_at FROM targets WHERE id = $1`, []any{target}, &at)
	return at
}

// QueuedBySender counts the queued targets per sender account.
func QueuedBySender(t testing.TB, db DB) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, r := range rows(t, db, "queued by sender", `SELECT account_id, count(*) FROM targets WHERE status = 'queued' GROUP BY 1`, nil,
		func(r pgx.Rows) ([2]int64, error) {
			var x [2]int64
			err := r.Scan(&x[0], &x[1])
			return x, err
		}) {
		out[r[0]] = int(r[1])
	}
	return out
}

// PendingOf counts the sender's pending targets.
func PendingOf(t testing.TB, db DB, account int64) int {
	t.Helper()
	return count(t, db, "sender's pending targets", `SELECT count(*) FROM targets WHERE account_id = $1 AND status = 'pending'`, account)
}

// DueInPool counts the pending targets without a sender due by at.
func DueInPool(t testing.TB, db DB, at time.Time) int {
	t.Helper()
	return count(t, db, "pool's due targets",
		`SELECT count(*) FROM targets WHERE account_id IS NULL AND status = 'pending' AND next_attempt_at <= $1`, at)
}

// MessageTo returns the message of the target whose identifier contains
// part.
func MessageTo(t testing.TB, db DB, part string) string {
	t.Helper()
	var m string
	one(t, db, "message", `SELECT message FROM targets WHERE strpos(identifier, $1) > 0`, []any{part}, &m)
	return m
}

// TargetVars is a target's identifier and its template variables.
type TargetVars struct {
	Identifier string
	Vars       map[string]string
}

// CampaignVars returns the campaign's targets and their variables, in id
// order.
func CampaignVars(t testing.TB, db DB, campaign int64) []TargetVars {
	t.Helper()
	return rows(t, db, "targets' variables", `SELECT identifier, vars FROM targets WHERE campaign_id = $1 ORDER BY id`, []any{campaign},
		func(r pgx.Rows) (TargetVars, error) {
			var x TargetVars
			err := r.Scan(&x.Identifier, &x.Vars)
			return x, err
		})
}

// VarsOf returns how many targets have the identifier and the variables
// of one of them.
func VarsOf(t testing.TB, db DB, identifier string) (int, map[string]string) {
	t.Helper()
	var n int
	var vars map[string]string
	one(t, db, "variables of "+identifier, `SELECT count(*) OVER (), vars FROM targets WHERE identifier = $1`, []any{identifier}, &n, &vars)
	return n, vars
}

// Invitation is a target as exactly-once checks read it: the sender's
// provider account, the person, the status and the invitation id stored.
type Invitation struct {
	Account, ProviderID string
	Status              store.TargetStatus
	InvitationID        string // empty when NULL
	LastError           string // empty when NULL
}

// Invitations returns every target with its sender's provider account, in
// target order.
func Invitations(t testing.TB, db DB) []Invitation {
	t.Helper()
	return rows(t, db, "invitations", `SELECT a.provider_account_id, t.provider_id, t.status, coalesce(t.invitation_id, ''), coalesce(t.last_error, '')
		FROM targets t JOIN accounts a ON a.id = t.account_id ORDER BY t.id`, nil,
		func(r pgx.Rows) (Invitation, error) {
			var x Invitation
			err := r.Scan(&x.Account, &x.ProviderID, &x.Status, &x.InvitationID, &x.LastError)
			return x, err
		})
}

// StoredTexts returns every free text the database stores about targets,
// calls and accounts: errors, messages, details, pause reasons and
// credential references (to check that no secret is among them).
func StoredTexts(t testing.TB, db DB) []string {
	t.Helper()
	return rows(t, db, "stored texts", `SELECT coalesce(last_error, '') || coalesce(message, '') FROM targets
		UNION ALL SELECT coalesce(detail, '') || coalesce(error_type, '') FROM sends
		UNION ALL SELECT coalesce(pause_reason, '') || credentials_ref FROM accounts`, nil,
		func(r pgx.Rows) (string, error) {
			var s string
			err := r.Scan(&s)
			return s, err
		})
}

// Accepted counts the targets whose invitation was accepted.
func Accepted(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "accepted targets", `SELECT count(*) FROM targets WHERE accepted_at IS NOT NULL`)
}

// Acceptances returns, per provider id of an accepted target, how the
// acceptance was learnt (accepted_via).
func Acceptances(t testing.TB, db DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range rows(t, db, "acceptances", `SELECT provider_id, accepted_via FROM targets WHERE accepted_at IS NOT NULL`, nil,
		func(r pgx.Rows) ([2]string, error) {
			var x [2]string
			err := r.Scan(&x[0], &x[1])
			return x, err
		}) {
		out[r[0]] = r[1]
	}
	return out
}

// AcceptanceOf returns how and when the target's invitation was accepted;
// ok is false if it was not.
func AcceptanceOf(t testing.TB, db DB, target int64) (via string, at time.Time, ok bool) {
	t.Helper()
	var v *string
	var a *time.Time
	one(t, db, "acceptance", `SELECT accepted_via, accepted_at FROM targets WHERE id = $1`, []any{target}, &v, &a)
	if v == nil {
		return "", time.Time{}, false
	}
	return *v, *a, true
}

// AcceptanceTimes returns every target's accepted_at as text (empty when
// not accepted), in target order: to check that nothing changes it later.
func AcceptanceTimes(t testing.TB, db DB) []string {
	t.Helper()
	var times []string
	one(t, db, "acceptance times", `SELECT array_agg(coalesce(accepted_at::text, '') ORDER BY id) FROM targets`, nil, &times)
	return times
}

// Withdrawal is what became of a target's invitation.
type Withdrawal struct {
	Withdrawn, Gone bool
	Status          store.TargetStatus
}

// WithdrawalOf returns whether the target's invitation was withdrawn or is
// gone, and the target's status.
func WithdrawalOf(t testing.TB, db DB, target int64) Withdrawal {
	t.Helper()
	var s Withdrawal
	one(t, db, "withdrawal", `SELECT withdrawn_at IS NOT NULL, invitation_gone_at IS NOT NULL, status FROM targets WHERE id = $1`,
		[]any{target}, &s.Withdrawn, &s.Gone, &s.Status)
	return s
}

// WithdrawnIn reports whether the invitation of the campaign's target
// with the identifier was withdrawn.
func WithdrawnIn(t testing.TB, db DB, campaign int64, identifier string) bool {
	t.Helper()
	var w bool
	one(t, db, "withdrawn", `SELECT withdrawn_at IS NOT NULL FROM targets WHERE campaign_id = $1 AND identifier = $2`,
		[]any{campaign, identifier}, &w)
	return w
}

// CampaignWithdrawals counts the campaign's targets whose invitation was
// withdrawn, and those whose invitation is gone (answered or removed).
func CampaignWithdrawals(t testing.TB, db DB, campaign int64) (withdrawn, gone int) {
	t.Helper()
	one(t, db, "campaign's withdrawals", `SELECT count(*) FILTER (WHERE withdrawn_at IS NOT NULL), count(*) FILTER (WHERE invitation_gone_at IS NOT NULL)
		FROM targets WHERE campaign_id = $1`, []any{campaign}, &withdrawn, &gone)
	return withdrawn, gone
}

// NextWithdrawal returns the earliest planned withdrawal of a sent
// invitation still out, or nil.
func NextWithdrawal(t testing.TB, db DB) *time.Time {
	t.Helper()
	var at *time.Time
	one(t, db, "next withdrawal", `SELECT min(withdraw_next_at) FROM targets WHERE withdrawn_at IS NULL
		AND invitation_gone_at IS NULL AND status = 'sent'`, nil, &at)
	return at
}

// LatestWithdrawn returns when the sender last withdrew an invitation and
// the identifier of its target.
func LatestWithdrawn(t testing.TB, db DB, account int64) (time.Time, string) {
	t.Helper()
	var at time.Time
	var ident string
	one(t, db, "latest withdrawn", `SELECT withdrawn_at, identifier FROM targets WHERE account_id = $1 AND withdrawn_at IS NOT NULL
		ORDER BY withdrawn_at DESC LIMIT 1`, []any{account}, &at, &ident)
	return at, ident
}

func statusTexts(ss []store.TargetStatus) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func joinStatuses(ss []store.TargetStatus) string {
	s := ""
	for i, x := range ss {
		if i > 0 {
			s += ", "
		}
		s += string(x)
	}
	return s
}

// StatusOf returns the target's status.
func StatusOf(t testing.TB, db DB, target int64) store.TargetStatus {
	t.Helper()
	var s store.TargetStatus
	one(t, db, "target status", `SELECT status FROM targets WHERE id = $1`, []any{target}, &s)
	return s
}
