// Package altegio is the outreach client of Altegio's "create and send an
// invitation" endpoint, POST /api/v1/user/invite/{location_id}, which
// invites a person (by email or phone) to manage a location.
package altegio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/httpclient"
)

// DefaultBaseURL is Altegio's API host.
const DefaultBaseURL = "https://api.alteg.io"

// Roles are the values Altegio accepts for the user_role option.
var Roles = []string{"worker", "administrator", "accountant", "manager", "owner"}

// Config configures a Client. The zero values of the optional fields are
// the defaults.
type Config struct {
	// BaseURL is the API host: the client adds
	// "/api/v1/user/invite/{location_id}". A trailing "/api/v1" (as in the
	// spec's servers) is accepted and dropped. Empty means DefaultBaseURL.
	BaseURL string
	// PartnerToken and UserToken make the header
	// "Authorization: Bearer <partner token>, User <user token>". Both are
	// required; neither ever appears in an error.
	PartnerToken string
	UserToken    string
	// HTTPClient sends the requests; nil builds one on a clone of
	// http.DefaultTransport (or on Transport). Never http.DefaultClient.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil.
	Transport http.RoundTripper
	// Timeout bounds each request; 0 means 30 seconds.
	Timeout time.Duration
	// RequestsPerSecond paces the calls made with these tokens; 0 means
	// unlimited. Burst is the most calls at once (0 means 1).
	RequestsPerSecond float64
	Burst             int
	// Now is the clock used for Retry-After dates; nil means time.Now.
	Now func() time.Time
	// KeySetting names the settings the tokens came from; an error for
	// tokens Altegio refuses (401) names them. Empty means
	// DefaultKeySetting.
	KeySetting string
}

// DefaultKeySetting is what a refused-token error tells the user to check
// when Config.KeySetting is empty.
const DefaultKeySetting = "ALTEGIO_PARTNER_TOKEN and ALTEGIO_USER_TOKEN, or their _<REF> forms for an account's credentials_ref"

// Client invites people to Altegio locations with one pair of tokens. It
// is safe for concurrent use; share one Client per token pair.
type Client struct {
	base *httpclient.Base
	auth string
	now  func() time.Time
	// keySetting is Config.KeySetting or DefaultKeySetting.
	keySetting string
}

var _ provider.Client = (*Client)(nil)

// New validates cfg and builds a Client. Its errors never contain a token.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.PartnerToken) == "" {
		return nil, errors.New("altegio: partner token is required")
	}
	if strings.TrimSpace(cfg.UserToken) == "" {
		return nil, errors.New("altegio: user token is required")
	}
	if strings.ContainsAny(cfg.PartnerToken+cfg.UserToken, ", \t\r\n") {
		return nil, errors.New("altegio: tokens must not contain commas, spaces or line breaks")
	}
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := httpclient.ParseBaseURL(raw, "/api/v1")
	if err != nil {
		return nil, fmt.Errorf("altegio: %w", err)
	}
	base, err := httpclient.New(httpclient.Options{
		Provider: provider.Altegio, BaseURL: u,
		HTTPClient: cfg.HTTPClient, Transport: cfg.Transport, Timeout: cfg.Timeout,
		RequestsPerSecond: cfg.RequestsPerSecond, Burst: cfg.Burst,
		URLSetting: "ALTEGIO_URL",
		Secrets:    []string{cfg.PartnerToken, cfg.UserToken},
	})
	if err != nil {
		return nil, fmt.Errorf("altegio: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	keySetting := cfg.KeySetting
	if keySetting == "" {
		keySetting = DefaultKeySetting
	}
	return &Client{base: base, auth: "Bearer " + cfg.PartnerToken + ", User " + cfg.UserToken, now: now, keySetting: keySetting}, nil
}

// Invite is one element of the invites array.
type Invite struct {
	Name            string       `json:"name,omitempty"`
	Search          string       `json:"search"`
	Position        *string      `json:"position,omitempty"`
	UserRole        *string      `json:"user_role,omitempty"`
	UserPermissions []Permission `json:"user_permissions,omitempty"`
	StaffID         *int64       `json:"staff_id,omitempty"`
}

// Permission is one of the user_permissions of an Invite.
type Permission struct {
	Slug  string `json:"slug"`
	Value any    `json:"value"`
}

// BuildInvite turns an Invitation into the Invite Altegio takes:
// RecipientID is the search (email or phone), Name the name, and Options
// may hold "position" (string), "user_role" (one of Roles),
// "user_permissions" (a list of {"slug", "value"}) and "staff_id" (an
// integer). Any other option, or a value of the wrong type, is an error.
func BuildInvite(inv provider.Invitation) (Invite, error) {
	out := Invite{Name: inv.Name, Search: strings.TrimSpace(inv.RecipientID)}
	if out.Search == "" {
		return out, errors.New("recipient (email or phone) is required")
	}
	keys := make([]string, 0, len(inv.Options))
	for k := range inv.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := inv.Options[k]
		if v == nil {
			continue
		}
		switch k {
		case "position":
			s, ok := v.(string)
			if !ok {
				return out, fmt.Errorf("option position: want a string, got %T", v)
			}
			out.Position = &s
		case "user_role":
			s, ok := v.(string)
			if !ok || !slices.Contains(Roles, s) {
				return out, fmt.Errorf("option user_role: want one of %s, got %v", strings.Join(Roles, ", "), v)
			}
			out.UserRole = &s
		case "user_permissions":
			perms, err := permissions(v)
			if err != nil {
				return out, fmt.Errorf("option user_permissions: %w", err)
			}
			out.UserPermissions = perms
		case "staff_id":
			id, err := integer(v)
			if err != nil {
				return out, fmt.Errorf("option staff_id: %w", err)
			}
			out.StaffID = &id
		default:
			return out, fmt.Errorf("unknown option %q (want position, user_role, user_permissions, staff_id)", k)
		}
	}
	return out, nil
}

func permissions(v any) ([]Permission, error) {
	switch p := v.(type) {
	case []Permission:
		return p, nil
	case []any:
		out := make([]Permission, 0, len(p))
		for i, e := range p {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("element %d: want an object, got %T", i, e)
			}
			slug, ok := m["slug"].(string)
			if !ok || slug == "" {
				return nil, fmt.Errorf("element %d: want a string slug", i)
			}
			out = append(out, Permission{Slug: slug, Value: m["value"]})
		}
		return out, nil
	case []map[string]any:
		anys := make([]any, len(p))
		for i := range p {
			anys[i] = p[i]
		}
		return permissions(anys)
	}
	return nil, fmt.Errorf("want a list of {slug, value}, got %T", v)
}

func integer(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case int32:
		return int64(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, fmt.Errorf("want an integer, got %v", n)
		}
		return int64(n), nil
	case json.Number:
		return n.Int64()
	case string:
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

// ParseLocationID checks that id is a positive integer, as Altegio's
// location ids are.
func ParseLocationID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("location id %q is not a positive integer", id)
	}
	return n, nil
}

// Invite invites inv.RecipientID (an email or phone) to manage the
// location inv.AccountID (a numeric location_id), with the options of
// BuildInvite. Bad input is refused without calling the API. Altegio
// answers 202 and gives no invitation id.
func (c *Client) Invite(ctx context.Context, inv provider.Invitation) (provider.Sent, error) {
	const op = "invite"
	loc, err := ParseLocationID(inv.AccountID)
	if err != nil {
		// The location is the account's own setting: every target would
		// fail the same way, so the account waits for an operator.
		return provider.Sent{}, c.base.Redact(&provider.Error{Provider: provider.Altegio, Op: op, Type: "invalid_location",
			Detail: err.Error() + " (fix the account's provider_account_id)", Scope: provider.ScopeAccount, Kind: provider.KindAccount})
	}
	one, err := BuildInvite(inv)
	if err != nil {
		return provider.Sent{}, c.badInput(op, "invalid_invite", err.Error())
	}
	res, err := c.base.Do(ctx, httpclient.Request{
		Op: op, Method: http.MethodPost,
		Path: "/api/v1/user/invite/" + strconv.FormatInt(loc, 10),
		Header: http.Header{
			"Authorization": {c.auth},
			"Accept":        {"application/vnd.api.v2+json"},
			"Content-Type":  {"application/json"},
		},
		Body: map[string][]Invite{"invites": {one}},
	})
	if err != nil {
		return provider.Sent{}, err
	}
	if res.Status >= 200 && res.Status <= 299 {
		// Altegio answers {"success": true, "data": null, "meta": {...}}.
		// An empty body is taken as the 202 it comes with. A body that is
		// not a JSON object is uncertain, not a success: the invitation
		// may exist, so the attempt is transient (retried, and a repeat
		// is recognised as already invited), never sent and never failed.
		var ok struct {
			Success *bool `json:"success"`
		}
		if len(bytes.TrimSpace(res.Body)) == 0 {
			return provider.Sent{}, nil
		}
		if err := json.Unmarshal(res.Body, &ok); err != nil {
			return provider.Sent{}, c.base.Redact(&provider.Error{Provider: provider.Altegio, Op: op,
				HTTPStatus: res.Status, Type: "unexpected_response",
				Detail: `want {"success": true, ...}, got: ` + httpclient.Snippet(res.Body),
				Scope:  provider.ScopeTransient, Kind: provider.KindTransient})
		}
		if ok.Success != nil && !*ok.Success {
			return provider.Sent{}, c.base.Redact(parseError(op, http.StatusUnprocessableEntity, res.Header, res.Body, c.now()))
		}
		return provider.Sent{}, nil
	}
	e := parseError(op, res.Status, res.Header, res.Body, c.now())
	if e.HTTPStatus == http.StatusUnauthorized {
		said := e.Detail
		if e.Title != "" && said != "" {
			said = e.Title + ": " + said
		} else if e.Title != "" {
			said = e.Title
		}
		e.Detail = "Altegio refused the tokens (check " + c.keySetting + "): " + said
		e.Scope, e.Kind = provider.ScopeProcess, provider.KindConfig
	}
	return provider.Sent{}, c.base.Redact(e)
}

func (c *Client) badInput(op, typ, detail string) error {
	return c.base.Redact(&provider.Error{Provider: provider.Altegio, Op: op, Type: typ, Detail: detail,
		Scope: provider.ScopeTarget, Kind: provider.KindBadInput})
}

// class is one row of the outcome policy.
type class struct {
	Type  string
	Scope provider.Scope
	Kind  provider.Kind
}

// classification maps each status of Altegio's spec, and the ones any HTTP
// API may answer, to the outcome policy. Other statuses fall back on their
// class (4xx bad input, 5xx transient).
var classification = map[int]class{
	http.StatusBadRequest:   {"bad_request", provider.ScopeTarget, provider.KindBadInput},
	http.StatusUnauthorized: {"unauthorized", provider.ScopeAccount, provider.KindAccount},
	http.StatusForbidden:    {"forbidden", provider.ScopeAccount, provider.KindAccount},
	// The only path parameter is the location, the sending "account": a
	// 404 means every target of that location would fail, so the account
	// is disabled until an operator fixes it.
	http.StatusNotFound:            {"not_found", provider.ScopeAccount, provider.KindAccount},
	http.StatusConflict:            {"conflict", provider.ScopeTarget, provider.KindAlreadyInvited},
	http.StatusUnprocessableEntity: {"validation_error", provider.ScopeTarget, provider.KindBadInput},
	http.StatusTooManyRequests:     {"too_many_requests", provider.ScopeAccount, provider.KindRateLimited},
	http.StatusRequestTimeout:      {"request_timeout", provider.ScopeTransient, provider.KindTransient},
}

// alreadyInvited recognises a 422 that refuses a person already invited
// to (or already a member of) the location. Assumption: the reference
// does not list validation messages; provider/simulator answers
// "The user has already been invited" in meta.errors.
var alreadyInvited = regexp.MustCompile(`(?i)already (been )?(invited|exists|a member|added)`)

// errorBody is Altegio's {success, data, meta: {message, errors}}.
type errorBody struct {
	Success *bool           `json:"success"`
	Meta    json.RawMessage `json:"meta"`
}

// parseError classifies a non-success answer. It never fails: any body
// gives at least the status and a short snippet.
func parseError(op string, status int, header http.Header, body []byte, now time.Time) *provider.Error {
	e := &provider.Error{Provider: provider.Altegio, Op: op, HTTPStatus: status}
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
	title, detail, parsed := errorMessage(body)
	e.Title = title
	switch {
	case detail != "":
		e.Detail = detail
	case title != "":
	case len(body) > 0 && !parsed:
		e.Detail = httpclient.StatusText(status) + ": " + httpclient.Snippet(body)
	default:
		e.Detail = httpclient.StatusText(status)
	}
	if status == http.StatusUnprocessableEntity && alreadyInvited.MatchString(title+" "+detail) {
		e.Type, e.Scope, e.Kind = "already_invited", provider.ScopeTarget, provider.KindAlreadyInvited
	}
	e.Detail = httpclient.WithRateLimitNote(e.Detail, header)
	return e
}

// errorMessage reads meta.message (title) and meta.errors (detail, joined)
// from Altegio's error body. parsed reports whether the body had that shape.
func errorMessage(body []byte) (title, detail string, parsed bool) {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || (eb.Success == nil && eb.Meta == nil) {
		return "", "", false
	}
	var meta struct {
		Message string `json:"message"`
		Errors  any    `json:"errors"`
	}
	if json.Unmarshal(eb.Meta, &meta) != nil { // meta may be [] (404)
		return "", "", true
	}
	var parts []string
	collect(meta.Errors, &parts)
	return httpclient.Snippet([]byte(meta.Message)), httpclient.Snippet([]byte(strings.Join(parts, "; "))), true
}

// collect flattens the strings of an errors value (a list, an object of
// lists, or a string) in a stable order.
func collect(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			collect(e, out)
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var sub []string
			collect(t[k], &sub)
			for _, s := range sub {
				*out = append(*out, k+": "+s)
			}
		}
	case nil:
	default:
		b, _ := json.Marshal(t)
		*out = append(*out, string(b))
	}
}
