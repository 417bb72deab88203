// Package provider defines the small interface every outreach provider
// (Unipile, Partoo, Altegio) implements, and the classified error that the
// worker's outcome policy acts on.
//
// Each implementation lives in a package named for what it wraps
// (provider/unipile, provider/partoo, provider/altegio); provider/simulator
// serves all three APIs for tests and the demo.
package provider

import (
	"context"
	"strconv"
	"time"
)

// Name identifies a provider. It is the value stored in accounts.provider.
type Name string

// The providers outreach speaks to.
const (
	Unipile Name = "unipile"
	Partoo  Name = "partoo"
	Altegio Name = "altegio"
)

// Invitation is one invitation to send.
type Invitation struct {
	// AccountID is the provider's own account reference: the Unipile
	// account_id, the Altegio location_id. Partoo ignores it.
	AccountID string
	// RecipientID is the resolved recipient: a Unipile provider_id, a Partoo
	// user_id, an Altegio email or phone.
	RecipientID string
	// Name is the recipient's display name (Altegio's invites[].name).
	Name string
	// Message is the rendered note (Unipile, at most 300 characters).
	Message string
	// Email is Unipile's optional user_email.
	Email string
	// Options are provider-specific campaign options, as stored in
	// campaigns.provider_options (Altegio: position, user_role,
	// user_permissions, staff_id).
	Options map[string]any
}

// Sent is the provider's answer to a successful invitation.
type Sent struct {
	// InvitationID is the provider's id of the invitation, if it gives one.
	InvitationID string
	// Usage is Unipile's usage percentage of the provider's limit, 0 when
	// absent. It is only sent when it crosses 50, 75, 90 or 95.
	Usage float64
}

// Profile is a resolved person (Unipile's UserProfile).
type Profile struct {
	ProviderID      string
	PublicID        string
	FirstName       string
	LastName        string
	Headline        string
	NetworkDistance string // FIRST_DEGREE, SECOND_DEGREE, THIRD_DEGREE, OUT_OF_NETWORK
	IsRelationship  bool
	// InvitationType and InvitationStatus describe an invitation between the
	// account and this person: SENT/RECEIVED and PENDING/IGNORED/WITHDRAWN.
	InvitationType   string
	InvitationStatus string
}

// Connected reports whether the person is already a first-degree relation.
func (p Profile) Connected() bool {
	return p.IsRelationship || p.NetworkDistance == "FIRST_DEGREE"
}

// PendingInvitation reports whether an invitation between the account and
// this person is pending.
func (p Profile) PendingInvitation() bool {
	return p.InvitationStatus == "PENDING"
}

// Client sends invitations through one provider with one set of
// credentials. Errors are *Error values (check with errors.As) whenever the
// provider answered or the transport failed; they never contain secrets.
type Client interface {
	Invite(ctx context.Context, inv Invitation) (Sent, error)
}

// Resolver is implemented by clients whose provider needs a lookup step to
// turn a public identifier into a recipient id (Unipile).
type Resolver interface {
	// Resolve looks up the person behind identifier (already normalised)
	// as seen by the provider account accountID.
	Resolve(ctx context.Context, accountID, identifier string) (Profile, error)
}

// Settlement is what a provider's own state says of an invitation whose
// answer was never recorded.
type Settlement struct {
	// Sent is true when an invitation from the account to the person is
	// pending (or the person is now a relation, which it may have led to).
	Sent bool
	// InvitationID is the provider's id of the pending invitation, when
	// its list of sent invitations gives it.
	InvitationID string
	// Detail says what was seen, for the ledger.
	Detail string
}

// Settler is implemented by clients whose provider can tell, without
// sending anything, whether an invitation went out (Unipile: the
// profile's pending invitation and the list of sent invitations). Partoo
// and Altegio have no such read.
type Settler interface {
	// Settle reports whether the account accountID has an invitation out
	// to recipientID (the provider id an Invitation would use).
	Settle(ctx context.Context, accountID, recipientID string) (Settlement, error)
}

// Scope says who an error concerns.
type Scope string

// Scopes of an error.
const (
	// ScopeTarget concerns one recipient: park or fail that target only.
	ScopeTarget Scope = "target"
	// ScopeAccount concerns the sending account: pause or disable it.
	ScopeAccount Scope = "account"
	// ScopeTransient is a passing fault: retry with backoff.
	ScopeTransient Scope = "transient"
	// ScopeProcess concerns the calling process's own configuration (the
	// provider URL or the credentials it was started with), not the
	// account: other processes may be configured right, so the account
	// is never changed for it (DESIGN invariant 11).
	ScopeProcess Scope = "process"
)

// Kind is what the outcome policy does with an error.
type Kind string

// Kinds of error, each handled by one row of the outcome policy.
const (
	KindRateLimited     Kind = "rate_limited"      // HTTP 429: pause account (Retry-After or backoff)
	KindLimitExceeded   Kind = "limit_exceeded"    // provider limit reached: pause account until window frees
	KindCannotResendYet Kind = "cannot_resend_yet" // defer target (day, doubling, capped ~3 weeks)
	KindAlreadyInvited  Kind = "already_invited"   // defer target, then skip
	KindTooSoon         Kind = "too_soon"          // Partoo 5-minute rule: wait until over
	KindRecipient       Kind = "recipient"         // permanent refusal for this recipient: fail target
	KindNotFound        Kind = "not_found"         // 404: fail target
	KindBadInput        Kind = "bad_input"         // 400 and validation errors: fail target
	KindAccount         Kind = "account"           // 401/403 about the account's session or rights: disable account until resumed
	KindConfig          Kind = "config"            // our key refused, or a redirect (3xx, never followed): this process is misconfigured; hand the target back, account unchanged
	KindTransient       Kind = "transient"         // 5xx, timeouts, connection errors, unreadable 2xx: retry
)

// A success status whose body cannot be read (not JSON, not the provider's
// shape, no invitation id, longer than the clients read) is uncertain: for
// an invite the invitation may exist. Clients classify it ScopeTransient,
// KindTransient with Type "unexpected_response" or "response_too_large":
// the attempt is retried and settled from the provider's own state, never
// recorded as sent without an id and never failed for good.
//
// A redirect is never followed, since following it would send the
// credentials and the body to whatever host the Location names. It is
// ScopeProcess, KindConfig with Type "redirect" and a message naming the
// host and the URL setting to check: a wrong URL is the configuration of
// the process that called, not a fault of the account. So is an API key
// the provider refuses (Unipile's missing_credentials and
// invalid_credentials, Partoo's and Altegio's 401).

// Error is a classified provider error. Its message never contains
// credentials.
type Error struct {
	Provider   Name
	Op         string // "invite", "resolve", "list_sent", "cancel"
	HTTPStatus int    // 0 for transport errors
	// Type is the provider's error type without prefix, such as
	// "cannot_resend_yet" for Unipile's "errors/cannot_resend_yet"; for
	// providers without types, a short stable word ("unauthorized").
	Type   string
	Title  string
	Detail string
	Scope  Scope
	Kind   Kind
	// RetryAfter is the provider's Retry-After (or X-RateLimit-Reset) hint,
	// 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying transport error, if any.
	Err error
}

// Error formats the error as "provider op: HTTP status type: detail"; it
// never includes credentials.
func (e *Error) Error() string {
	msg := string(e.Provider) + " " + e.Op + ": "
	if e.HTTPStatus != 0 {
		msg += "HTTP " + strconv.Itoa(e.HTTPStatus) + " "
	}
	if e.Type != "" {
		msg += e.Type
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Title != "" {
		msg += ": " + e.Title
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Relation is a first-degree relation of an account (Unipile's
// UserRelation): a person who accepted an invitation, or connected
// otherwise.
type Relation struct {
	// ProviderID is the person's provider id (Unipile's member_id) and
	// PublicID their public identifier (the LinkedIn slug).
	ProviderID string
	PublicID   string
	// CreatedAt is when the relation was made, zero if not given.
	CreatedAt time.Time
}

// RelationPage is one page of an account's relations, newest first.
type RelationPage struct {
	Relations []Relation
	// Cursor fetches the next (older) page; "" means there is none.
	Cursor string
}

// RelationLister is implemented by clients whose provider lists an
// account's relations newest first (Unipile).
type RelationLister interface {
	// ListRelations reads one page of accountID's relations, newest
	// first: the first with cursor "", the next with the page's Cursor.
	ListRelations(ctx context.Context, accountID, cursor string, limit int) (RelationPage, error)
}

// AccountState is a provider's report of an account's connection.
type AccountState struct {
	// Status is the provider's word (Unipile: OK, CREDENTIALS, ERROR,
	// STOPPED, PERMISSIONS, CONNECTING); the worst of its sources.
	Status string
	// Running is true when the account can make calls (Unipile: OK).
	Running bool
}

// AccountChecker is implemented by clients whose provider reports an
// account's connection status without a call on the account's network
// (Unipile's GET /api/v1/accounts/{id}).
type AccountChecker interface {
	// CheckAccount reports accountID's connection status.
	CheckAccount(ctx context.Context, accountID string) (AccountState, error)
}
