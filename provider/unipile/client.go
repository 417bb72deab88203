// Package unipile is the outreach client of Unipile's LinkedIn API: it
// resolves public identifiers to provider ids, sends, lists and cancels
// invitations, and classifies every error Unipile documents into the
// outcome policy of package provider.
package unipile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/httpclient"
)

// MaxMessageLen is the most characters (runes, not bytes) Unipile accepts
// in an invitation note.
const MaxMessageLen = 300

// Config configures a Client. The zero values of the optional fields are
// the defaults.
type Config struct {
	// BaseURL is the account's DSN, "https://api1.unipile.com:13111"; a
	// bare "api1.unipile.com:13111" gets "https://". Required.
	BaseURL string
	// APIKey is the access token sent as X-API-KEY. Required; it never
	// appears in an error.
	APIKey string
	// HTTPClient sends the requests; nil builds one on a clone of
	// http.DefaultTransport (or on Transport). Never http.DefaultClient.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil (tests inject one).
	Transport http.RoundTripper
	// Timeout bounds each request; 0 means 30 seconds.
	Timeout time.Duration
	// RequestsPerSecond paces all calls made with this credential; 0
	// means unlimited. Burst is the most calls at once (0 means 1).
	RequestsPerSecond float64
	Burst             int
	// Now is the clock used to read HTTP-date Retry-After headers; nil
	// means time.Now.
	Now func() time.Time
	// KeySetting names the setting APIKey came from (such as
	// "UNIPILE_API_KEY_SALES"); an error for a key Unipile refuses names
	// it. Empty means DefaultKeySetting.
	KeySetting string
}

// DefaultKeySetting is what a refused-key error tells the user to check
// when Config.KeySetting is empty.
const DefaultKeySetting = "UNIPILE_API_KEY, or UNIPILE_API_KEY_<REF> for an account's credentials_ref"

// Client talks to Unipile with one API key. It is safe for concurrent use;
// share one Client per credential so that pacing holds.
type Client struct {
	base   *httpclient.Base
	apiKey string
	now    func() time.Time
	// keySetting is Config.KeySetting or DefaultKeySetting.
	keySetting string
}

var (
	_ provider.Client   = (*Client)(nil)
	_ provider.Resolver = (*Client)(nil)
	_ provider.Settler  = (*Client)(nil)

	_ provider.Withdrawer = (*Client)(nil)
)

// New validates cfg and builds a Client. Its errors never contain the key.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("unipile: API key is required")
	}
	u, err := httpclient.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("unipile: %w", err)
	}
	base, err := httpclient.New(httpclient.Options{
		Provider: provider.Unipile, BaseURL: u,
		HTTPClient: cfg.HTTPClient, Transport: cfg.Transport, Timeout: cfg.Timeout,
		RequestsPerSecond: cfg.RequestsPerSecond, Burst: cfg.Burst,
		URLSetting: "UNIPILE_DSN",
		Secrets:    []string{cfg.APIKey},
	})
	if err != nil {
		return nil, fmt.Errorf("unipile: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	keySetting := cfg.KeySetting
	if keySetting == "" {
		keySetting = DefaultKeySetting
	}
	return &Client{base: base, apiKey: cfg.APIKey, now: now, keySetting: keySetting}, nil
}

// userProfile is the part of Unipile's UserProfile that outreach reads.
type userProfile struct {
	Object           string `json:"object"`
	ProviderID       string `json:"provider_id"`
	PublicIdentifier string `json:"public_identifier"`
	FirstName        string `json:"first_name"`
	LastName         string `json:"last_name"`
	Headline         string `json:"headline"`
	NetworkDistance  string `json:"network_distance"`
	IsRelationship   bool   `json:"is_relationship"`
	Invitation       *struct {
		Type   string `json:"type"`
		Status string `json:"status"`
	} `json:"invitation"`
}

// Resolve looks up the person behind identifier (normalised with
// NormalizeIdentifier: a slug or a provider id) as seen by accountID. A
// person who does not exist gives a *provider.Error of KindNotFound.
func (c *Client) Resolve(ctx context.Context, accountID, identifier string) (provider.Profile, error) {
	const op = "resolve"
	if accountID == "" {
		return provider.Profile{}, c.badInput(op, "missing_parameters", "account_id is required")
	}
	if identifier == "" {
		return provider.Profile{}, c.badInput(op, "missing_parameters", "identifier is required")
	}
	res, err := c.base.Do(ctx, httpclient.Request{
		Op: op, Method: http.MethodGet,
		Path:   "/api/v1/users/" + url.PathEscape(identifier),
		Query:  url.Values{"account_id": {accountID}},
		Header: c.header(),
	})
	if err != nil {
		return provider.Profile{}, err
	}
	if res.Status != http.StatusOK {
		return provider.Profile{}, c.fail(op, res)
	}
	var p userProfile
	if err := json.Unmarshal(res.Body, &p); err != nil || p.ProviderID == "" {
		return provider.Profile{}, c.badBody(op, res, "UserProfile with provider_id")
	}
	out := provider.Profile{
		ProviderID: p.ProviderID, PublicID: p.PublicIdentifier,
		FirstName: p.FirstName, LastName: p.LastName, Headline: p.Headline,
		NetworkDistance: p.NetworkDistance, IsRelationship: p.IsRelationship,
	}
	if p.Invitation != nil {
		out.InvitationType, out.InvitationStatus = p.Invitation.Type, p.Invitation.Status
	}
	return out, nil
}

// inviteRequest is the body of POST /api/v1/users/invite.
type inviteRequest struct {
	ProviderID string `json:"provider_id"`
	AccountID  string `json:"account_id"`
	Message    string `json:"message,omitempty"`
	UserEmail  string `json:"user_email,omitempty"`
}

// inviteResponse is its 200 answer.
type inviteResponse struct {
	Object       string   `json:"object"`
	InvitationID string   `json:"invitation_id"`
	Usage        *float64 `json:"usage"`
}

// Invite sends a LinkedIn invitation from inv.AccountID to the provider id
// inv.RecipientID, with inv.Message as note and inv.Email as user_email.
// A note over MaxMessageLen characters is refused without calling the API
// (KindBadInput, Type "too_many_characters").
func (c *Client) Invite(ctx context.Context, inv provider.Invitation) (provider.Sent, error) {
	const op = "invite"
	switch {
	case inv.AccountID == "":
		return provider.Sent{}, c.badInput(op, "missing_parameters", "account_id is required")
	case inv.RecipientID == "":
		return provider.Sent{}, c.badInput(op, "missing_parameters", "provider_id is required")
	case !utf8.ValidString(inv.Message):
		return provider.Sent{}, c.badInput(op, "invalid_message", "message is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(inv.Message); n > MaxMessageLen {
		return provider.Sent{}, c.badInput(op, "too_many_characters",
			fmt.Sprintf("message has %d characters, the limit is %d", n, MaxMessageLen))
	}
	res, err := c.base.Do(ctx, httpclient.Request{
		Op: op, Method: http.MethodPost, Path: "/api/v1/users/invite",
		Header: c.header(),
		Body: inviteRequest{ProviderID: inv.RecipientID, AccountID: inv.AccountID,
			Message: inv.Message, UserEmail: inv.Email},
	})
	if err != nil {
		return provider.Sent{}, err
	}
	if res.Status != http.StatusOK && res.Status != http.StatusCreated {
		return provider.Sent{}, c.fail(op, res)
	}
	var r inviteResponse
	if err := json.Unmarshal(res.Body, &r); err != nil || r.InvitationID == "" {
		return provider.Sent{}, c.badBody(op, res, "UserInvitationSent with invitation_id")
	}
	sent := provider.Sent{InvitationID: r.InvitationID}
	if r.Usage != nil {
		sent.Usage = *r.Usage
	}
	return sent, nil
}

// SentInvitation is one pending invitation sent by an account.
type SentInvitation = provider.SentInvitation

type sentList struct {
	Object string `json:"object"`
	Items  []struct {
		ID                  string `json:"id"`
		Date                string `json:"date"`
		InvitedUserID       string `json:"invited_user_id"`
		InvitedUserPublicID string `json:"invited_user_public_id"`
		InvitationText      string `json:"invitation_text"`
		ParsedDatetime      string `json:"parsed_datetime"`
	} `json:"items"`
	Cursor *string `json:"cursor"`
}

// maxPages bounds ListSent's pagination against a cursor that never ends.
const maxPages = 1000

// ListSent lists the pending invitations sent by accountID, following the
// cursor across pages.
func (c *Client) ListSent(ctx context.Context, accountID string) ([]SentInvitation, error) {
	const op = "list_sent"
	if accountID == "" {
		return nil, c.badInput(op, "missing_parameters", "account_id is required")
	}
	var out []SentInvitation
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return out, c.base.Redact(&provider.Error{Provider: provider.Unipile, Op: op,
				Type: "pagination", Detail: "too many pages", Scope: provider.ScopeTransient, Kind: provider.KindTransient})
		}
		q := url.Values{"account_id": {accountID}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res, err := c.base.Do(ctx, httpclient.Request{Op: op, Method: http.MethodGet,
			Path: "/api/v1/users/invite/sent", Query: q, Header: c.header()})
		if err != nil {
			return out, err
		}
		if res.Status != http.StatusOK {
			return out, c.fail(op, res)
		}
		var l sentList
		// A page without items is not an empty list: reading it as one
		// would tell a settling worker that nothing was sent.
		if err := json.Unmarshal(res.Body, &l); err != nil || l.Items == nil {
			return out, c.badBody(op, res, "InvitationList with items")
		}
		for _, it := range l.Items {
			s := SentInvitation{ID: it.ID, ProviderID: it.InvitedUserID,
				PublicID: it.InvitedUserPublicID, Message: it.InvitationText}
			for _, d := range []string{it.ParsedDatetime, it.Date} {
				if t, err := time.Parse(time.RFC3339, d); err == nil {
					s.Date = t
					break
				}
			}
			out = append(out, s)
		}
		if l.Cursor == nil || *l.Cursor == "" || *l.Cursor == cursor {
			return out, nil
		}
		cursor = *l.Cursor
	}
}

// Cancel withdraws the pending invitation invitationID of accountID. Note
// that LinkedIn then refuses a new invitation to that person for up to
// three weeks (cannot_resend_yet).
func (c *Client) Cancel(ctx context.Context, accountID, invitationID string) error {
	const op = "cancel"
	if accountID == "" {
		return c.badInput(op, "missing_parameters", "account_id is required")
	}
	if invitationID == "" {
		return c.badInput(op, "missing_parameters", "invitation_id is required")
	}
	res, err := c.base.Do(ctx, httpclient.Request{Op: op, Method: http.MethodDelete,
		Path:  "/api/v1/users/invite/sent/" + url.PathEscape(invitationID),
		Query: url.Values{"account_id": {accountID}}, Header: c.header()})
	if err != nil {
		return err
	}
	if res.Status < 200 || res.Status > 299 {
		return c.fail(op, res)
	}
	return nil
}

func (c *Client) header() http.Header {
	return http.Header{"X-Api-Key": {c.apiKey}}
}

func (c *Client) fail(op string, res *httpclient.Response) error {
	e := parseError(op, res.Status, res.Header, res.Body, c.now())
	if keyRefused(e) {
		e.Detail = "Unipile refused the API key (check " + c.keySetting + "): " + e.Detail
		e.Scope, e.Kind = provider.ScopeProcess, provider.KindConfig
	}
	return c.base.Redact(e)
}

// keyRefused reports whether a 401 concerns outreach's API key rather than
// the LinkedIn account's session (disconnected_account, checkpoint_error
// and the other 401 types): Unipile's missing_credentials and
// invalid_credentials, or a 401 without a Unipile error type.
func keyRefused(e *provider.Error) bool {
	if e.HTTPStatus != http.StatusUnauthorized {
		return false
	}
	switch e.Type {
	case "missing_credentials", "invalid_credentials", fallbackType(http.StatusUnauthorized):
		return true
	}
	return false
}

func (c *Client) badInput(op, typ, detail string) error {
	return c.base.Redact(&provider.Error{Provider: provider.Unipile, Op: op, Type: typ, Detail: detail,
		Scope: provider.ScopeTarget, Kind: provider.KindBadInput})
}

// badBody reports a success status whose body is not what Unipile sends;
// retrying is the safest answer.
func (c *Client) badBody(op string, res *httpclient.Response, want string) error {
	return c.base.Redact(&provider.Error{Provider: provider.Unipile, Op: op, HTTPStatus: res.Status,
		Type: "unexpected_response", Detail: "want " + want + ", got: " + httpclient.Snippet(res.Body),
		Scope: provider.ScopeTransient, Kind: provider.KindTransient})
}

// settlePages bounds the pages of the sent list read to find the id of a
// pending invitation (250 invitations a page).
const settlePages = 4

// Settle tells whether accountID has an invitation out to recipientID (a
// provider id) without sending one: the profile shows a pending
// invitation {type: SENT, status: PENDING} (or the person is already a
// relation, which the invitation may have led to); the id is then looked
// for in the first pages of the sent list. Errors are those of Resolve
// and ListSent; a failed list only leaves the id empty.
func (c *Client) Settle(ctx context.Context, accountID, recipientID string) (provider.Settlement, error) {
	p, err := c.Resolve(ctx, accountID, recipientID)
	if err != nil {
		return provider.Settlement{}, err
	}
	switch {
	case p.Connected():
		return provider.Settlement{Sent: true, Detail: "the person is a relation (" + p.NetworkDistance + ")"}, nil
	case p.InvitationType != "SENT" || p.InvitationStatus != "PENDING":
		return provider.Settlement{Detail: "no pending invitation on the profile"}, nil
	}
	out := provider.Settlement{Sent: true, Detail: "a pending invitation on the profile"}
	cursor := ""
	for page := 0; page < settlePages; page++ {
		q := url.Values{"account_id": {accountID}, "limit": {"250"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res, err := c.base.Do(ctx, httpclient.Request{Op: "list_sent", Method: http.MethodGet,
			Path: "/api/v1/users/invite/sent", Query: q, Header: c.header()})
		if err != nil || res.Status != http.StatusOK {
			return out, nil
		}
		var l sentList
		if err := json.Unmarshal(res.Body, &l); err != nil {
			return out, nil
		}
		for _, it := range l.Items {
			if it.InvitedUserID == recipientID || p.ProviderID != "" && it.InvitedUserID == p.ProviderID {
				out.InvitationID = it.ID
				out.Detail += " and in the sent list"
				return out, nil
			}
		}
		if l.Cursor == nil || *l.Cursor == "" || *l.Cursor == cursor {
			break
		}
		cursor = *l.Cursor
	}
	return out, nil
}
