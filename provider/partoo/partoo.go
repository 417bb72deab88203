// Package partoo is the outreach client of Partoo's user invitation
// endpoint, POST /v2/user/{user_id}/invite, which re-sends the invitation
// email of a user in the `invited` state, at most once every five minutes
// per user.
package partoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/httpclient"
)

// DefaultBaseURL is Partoo's production API host. The sandbox is
// "https://api.sandbox.partoo.co".
const DefaultBaseURL = "https://api.partoo.co"

// ResendInterval is Partoo's "once every 5 minutes" per user.
const ResendInterval = 5 * time.Minute

// Config configures a Client. The zero values of the optional fields are
// the defaults.
type Config struct {
	// BaseURL is the API host without the version: the client adds
	// "/v2/user/{user_id}/invite". A trailing "/v2" (as in the servers of
	// Partoo's OpenAPI document) is accepted and dropped. Empty means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent as the x-APIKey header. Required; it never appears in
	// an error.
	APIKey string
	// HTTPClient sends the requests; nil builds one on a clone of
	// http.DefaultTransport (or on Transport). Never http.DefaultClient.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil.
	Transport http.RoundTripper
	// Timeout bounds each request; 0 means 30 seconds.
	Timeout time.Duration
	// RequestsPerSecond paces the calls made with this key; 0 means
	// unlimited. Burst is the most calls at once (0 means 1).
	RequestsPerSecond float64
	Burst             int
	// Now is the clock used for Retry-After dates; nil means time.Now.
	Now func() time.Time
	// KeySetting names the setting APIKey came from (such as
	// "PARTOO_API_KEY_SHOPS"); an error for a key Partoo refuses (401)
	// names it. Empty means DefaultKeySetting.
	KeySetting string
}

// DefaultKeySetting is what a refused-key error tells the user to check
// when Config.KeySetting is empty.
const DefaultKeySetting = "PARTOO_API_KEY, or PARTOO_API_KEY_<REF> for an account's credentials_ref"

// Client invites Partoo users with one API key. It is safe for concurrent
// use; share one Client per key so that pacing holds.
type Client struct {
	base   *httpclient.Base
	apiKey string
	now    func() time.Time
	// keySetting is Config.KeySetting or DefaultKeySetting.
	keySetting string
}

var _ provider.Client = (*Client)(nil)

// New validates cfg and builds a Client. Its errors never contain the key.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("partoo: API key is required")
	}
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := httpclient.ParseBaseURL(raw, "/v2")
	if err != nil {
		return nil, fmt.Errorf("partoo: %w", err)
	}
	base, err := httpclient.New(httpclient.Options{
		Provider: provider.Partoo, BaseURL: u,
		HTTPClient: cfg.HTTPClient, Transport: cfg.Transport, Timeout: cfg.Timeout,
		RequestsPerSecond: cfg.RequestsPerSecond, Burst: cfg.Burst,
		URLSetting: "PARTOO_URL",
		Secrets:    []string{cfg.APIKey},
	})
	if err != nil {
		return nil, fmt.Errorf("partoo: %w", err)
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

// Invite re-sends the invitation email of the Partoo user inv.RecipientID.
// Partoo ignores the other fields and gives no invitation id.
func (c *Client) Invite(ctx context.Context, inv provider.Invitation) (provider.Sent, error) {
	const op = "invite"
	if strings.TrimSpace(inv.RecipientID) == "" {
		return provider.Sent{}, c.base.Redact(&provider.Error{Provider: provider.Partoo, Op: op,
			Type: "missing_user_id", Detail: "user_id is required",
			Scope: provider.ScopeTarget, Kind: provider.KindBadInput})
	}
	res, err := c.base.Do(ctx, httpclient.Request{
		Op: op, Method: http.MethodPost,
		Path:   "/v2/user/" + url.PathEscape(inv.RecipientID) + "/invite",
		Header: http.Header{"X-Apikey": {c.apiKey}},
	})
	if err != nil {
		return provider.Sent{}, err
	}
	if res.Status >= 200 && res.Status <= 299 {
		var ok struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(res.Body, &ok); err != nil || ok.Status != "success" {
			return provider.Sent{}, c.base.Redact(&provider.Error{Provider: provider.Partoo, Op: op,
				HTTPStatus: res.Status, Type: "unexpected_response",
				Detail: `want {"status":"success"}, got: ` + httpclient.Snippet(res.Body),
				Scope:  provider.ScopeTransient, Kind: provider.KindTransient})
		}
		return provider.Sent{}, nil
	}
	e := parseError(op, res.Status, res.Header, res.Body, c.now())
	if e.HTTPStatus == http.StatusUnauthorized {
		e.Detail = "Partoo refused the API key (check " + c.keySetting + "): " + e.Detail
		e.Scope, e.Kind = provider.ScopeProcess, provider.KindConfig
	}
	return provider.Sent{}, c.base.Redact(e)
}

// class is one row of the outcome policy.
type class struct {
	Type  string
	Scope provider.Scope
	Kind  provider.Kind
}

// classification maps each status Partoo's spec documents, and the ones
// any HTTP API may answer, to the outcome policy. Other statuses fall back
// on their class (4xx bad input, 5xx transient).
var classification = map[int]class{
	http.StatusBadRequest:   {"bad_request", provider.ScopeTarget, provider.KindBadInput},
	http.StatusUnauthorized: {"unauthorized", provider.ScopeAccount, provider.KindAccount},
	// 403 is "not allowed to perform this action": the key lacks WRITE
	// access to this user. It concerns that user, not the key, so it must
	// not stall the account (invariant 5); a key without any access fails
	// on 401 instead.
	http.StatusForbidden:           {"forbidden", provider.ScopeTarget, provider.KindRecipient},
	http.StatusNotFound:            {"not_found", provider.ScopeTarget, provider.KindNotFound},
	http.StatusConflict:            {"conflict", provider.ScopeTarget, provider.KindAlreadyInvited},
	http.StatusUnprocessableEntity: {"unprocessable_entity", provider.ScopeTarget, provider.KindBadInput},
	http.StatusTooManyRequests:     {"too_many_requests", provider.ScopeAccount, provider.KindRateLimited},
	http.StatusRequestTimeout:      {"request_timeout", provider.ScopeTransient, provider.KindTransient},
}

// tooSoon recognises Partoo's refusal of a second invitation to one user
// within five minutes.
//
// Assumption: the spec documents the rule ("The email can only be sent once
// every 5 minutes") but not its answer. We expect a 4xx (400, 403, 409 or
// 429) in Partoo's usual {"errors": {...}} shape whose message speaks of
// the delay, such as {"errors":{"json":"An invitation was already sent less
// than 5 minutes ago"}}; provider/simulator answers exactly that with 429
// and a Retry-After. Such an answer is KindTooSoon for the target, never an
// account pause, and waits Retry-After or ResendInterval.
var tooSoon = regexp.MustCompile(`(?i)(5|five)\s*min|once every|already (been )?(sent|invited)|too soon`)

// parseError classifies a non-success answer. It never fails: any body
// gives at least the status and a short snippet.
func parseError(op string, status int, header http.Header, body []byte, now time.Time) *provider.Error {
	e := &provider.Error{Provider: provider.Partoo, Op: op, HTTPStatus: status}
	msg := errorMessage(body)
	c, ok := classification[status]
	switch {
	case ok:
	case status >= 500:
		c = class{"server_error", provider.ScopeTransient, provider.KindTransient}
	case status >= 400:
		c = class{"http_error", provider.ScopeTarget, provider.KindBadInput}
	default:
		c = class{"unexpected_status", provider.ScopeTransient, provider.KindTransient}
	}
	e.Type, e.Scope, e.Kind = c.Type, c.Scope, c.Kind
	e.RetryAfter = httpclient.RetryAfter(header, now)
	if status >= 400 && status < 500 && status != http.StatusUnauthorized && status != http.StatusNotFound && tooSoon.MatchString(msg) {
		e.Type, e.Scope, e.Kind = "too_soon", provider.ScopeTarget, provider.KindTooSoon
		if e.RetryAfter <= 0 || e.RetryAfter > ResendInterval {
			e.RetryAfter = ResendInterval
		}
	}
	switch {
	case msg != "":
		e.Detail = msg
	case len(body) > 0:
		e.Detail = httpclient.StatusText(status) + ": " + httpclient.Snippet(body)
	default:
		e.Detail = httpclient.StatusText(status)
	}
	e.Detail = httpclient.WithRateLimitNote(e.Detail, header)
	return e
}

// errorMessage reads Partoo's {"errors": {"authentication"|"authorization"|
// "json"|…: "message"}} body (values may also be lists or objects) into one
// short line, "" when the body is not of that shape.
func errorMessage(body []byte) string {
	var eb struct {
		Errors map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
		return ""
	}
	keys := make([]string, 0, len(eb.Errors))
	for k := range eb.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		var s string
		if err := json.Unmarshal(eb.Errors[k], &s); err != nil {
			s = string(eb.Errors[k])
		}
		parts = append(parts, k+": "+s)
	}
	return httpclient.Snippet([]byte(strings.Join(parts, "; ")))
}
