package unipile

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
)

// specErrorTypes reads every error type of the Unipile spec, by status.
func specErrorTypes(t testing.TB) map[string]int {
	t.Helper()
	raw, err := os.ReadFile("../testdata/unipile-users-invite.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Properties map[string]struct {
							Enum []any `json:"enum"`
						} `json:"properties"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for code, res := range spec.Paths["/api/v1/users/invite"]["post"].Responses {
		status, _ := strconv.Atoi(code)
		for _, e := range res.Content["application/json"].Schema.Properties["type"].Enum {
			out[strings.TrimPrefix(e.(string), "errors/")] = status
		}
	}
	if len(out) < 50 {
		t.Fatalf("read only %d error types from the spec", len(out))
	}
	return out
}

func TestClassificationCoversSpec(t *testing.T) {
	t.Parallel()
	for typ, status := range specErrorTypes(t) {
		if _, ok := classification[typ]; !ok {
			t.Errorf("error type %q (HTTP %d) of the spec has no row in classification", typ, status)
		}
	}
}

// TestClassification pins the outcome policy row by row.
func TestClassification(t *testing.T) {
	t.Parallel()
	type row struct {
		Scope provider.Scope
		Kind  provider.Kind
	}
	T := provider.ScopeTarget
	A := provider.ScopeAccount
	X := provider.ScopeTransient
	want := map[string]row{
		// 400
		"invalid_parameters": {T, provider.KindBadInput}, "malformed_request": {T, provider.KindBadInput},
		"content_too_large": {T, provider.KindBadInput}, "invalid_url": {T, provider.KindBadInput},
		"too_many_characters": {T, provider.KindBadInput}, "unescaped_characters": {T, provider.KindBadInput},
		"missing_parameters": {T, provider.KindBadInput},
		// 401
		"missing_credentials": {A, provider.KindAccount}, "multiple_sessions": {A, provider.KindAccount},
		"invalid_checkpoint_solution": {A, provider.KindAccount}, "checkpoint_error": {A, provider.KindAccount},
		"invalid_credentials": {A, provider.KindAccount}, "expired_credentials": {A, provider.KindAccount},
		"insufficient_privileges": {A, provider.KindAccount}, "disconnected_account": {A, provider.KindAccount},
		"disconnected_feature": {A, provider.KindAccount}, "invalid_credentials_but_valid_account_imap": {A, provider.KindAccount},
		"expired_link": {A, provider.KindAccount}, "wrong_account": {A, provider.KindAccount},
		"captcha_not_supported": {A, provider.KindAccount},
		// 403
		"account_restricted": {A, provider.KindAccount}, "account_mismatch": {A, provider.KindAccount},
		"insufficient_permissions": {A, provider.KindAccount}, "session_mismatch": {A, provider.KindAccount},
		"feature_not_subscribed": {A, provider.KindAccount}, "subscription_required": {A, provider.KindAccount},
		"unknown_authentication_context": {A, provider.KindAccount}, "action_required": {A, provider.KindAccount},
		"resource_access_restricted": {T, provider.KindRecipient},
		// 404
		"resource_not_found": {T, provider.KindNotFound}, "invalid_resource_identifier": {T, provider.KindNotFound},
		// 422
		"invalid_account": {A, provider.KindAccount}, "invalid_recipient": {T, provider.KindRecipient},
		"no_connection_with_recipient": {T, provider.KindRecipient}, "blocked_recipient": {T, provider.KindRecipient},
		"user_unreachable": {T, provider.KindRecipient}, "unprocessable_entity": {T, provider.KindBadInput},
		"action_already_performed": {T, provider.KindAlreadyInvited}, "invalid_message": {T, provider.KindBadInput},
		"invalid_post": {T, provider.KindBadInput}, "not_allowed_inmail": {T, provider.KindRecipient},
		"insufficient_credits": {A, provider.KindAccount}, "cannot_resend_yet": {T, provider.KindCannotResendYet},
		"cannot_resend_within_24hrs": {T, provider.KindCannotResendYet}, "cannot_resend_within_": {T, provider.KindCannotResendYet},
		"limit_exceeded": {A, provider.KindLimitExceeded}, "already_invited_recently": {T, provider.KindAlreadyInvited},
		"cannot_invite_attendee": {T, provider.KindRecipient}, "parent_mail_not_found": {T, provider.KindBadInput},
		"invalid_reply_subject": {T, provider.KindBadInput}, "invalid_headers": {T, provider.KindBadInput},
		"send_as_denied": {A, provider.KindAccount}, "invalid_folder": {T, provider.KindBadInput},
		"invalid_thread": {T, provider.KindBadInput}, "limit_too_high": {T, provider.KindBadInput},
		"unauthorized": {A, provider.KindAccount}, "sender_rejected": {A, provider.KindAccount},
		"recipient_rejected": {T, provider.KindRecipient}, "ip_rejected_by_server": {A, provider.KindAccount},
		"provider_unreachable": {X, provider.KindTransient}, "account_configuration_error": {A, provider.KindAccount},
		"cant_send_message": {T, provider.KindRecipient}, "realtime_client_not_initialized": {X, provider.KindTransient},
		// 429
		"too_many_requests": {A, provider.KindRateLimited},
		// 5xx
		"unexpected_error": {X, provider.KindTransient}, "provider_error": {X, provider.KindTransient},
		"authentication_intent_error": {X, provider.KindTransient}, "feature_not_implemented": {X, provider.KindTransient},
		"no_client_session": {X, provider.KindTransient}, "no_channel": {X, provider.KindTransient},
		"no_handler": {X, provider.KindTransient}, "network_down": {X, provider.KindTransient},
		"service_unavailable": {X, provider.KindTransient}, "request_timeout": {X, provider.KindTransient},
	}
	got := map[string]row{}
	for typ, c := range classification {
		got[typ] = row(c)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classification mismatch (-want +got):\n%s", diff)
	}
}

func TestClassForStatusFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   class
	}{
		{400, targetBadInput}, {401, accountDisabled}, {403, accountDisabled}, {404, targetNotFound},
		{409, targetInvited}, {410, targetNotFound}, {418, targetBadInput}, {422, targetRecipient},
		{429, accountRate}, {408, transient}, {500, transient}, {502, transient}, {503, transient},
		{504, transient}, {302, transient},
	}
	for _, tt := range tests {
		if got := classFor(tt.status, "some_new_type", "", ""); got != tt.want {
			t.Errorf("classFor(%d, unknown type) = %v; want %v", tt.status, got, tt.want)
		}
	}
	if got := classFor(429, "invalid_parameters", "", ""); got != accountRate {
		t.Errorf("a 429 with a 400 type = %v; want %v", got, accountRate)
	}
	if got := classFor(404, "resource_not_found", "Not found", "Account not found."); got != accountDisabled {
		t.Errorf("404 Account not found = %v; want %v", got, accountDisabled)
	}
}

func TestParseError(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   provider.Error
	}{
		{
			name: "typed 422", status: 422,
			body: `{"title":"Cannot resend yet","detail":"Withdrawn recently","type":"errors/cannot_resend_yet","status":422}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 422, Type: "cannot_resend_yet",
				Title: "Cannot resend yet", Detail: "Withdrawn recently", Scope: provider.ScopeTarget, Kind: provider.KindCannotResendYet},
		},
		{
			name: "429 with Retry-After seconds and rate limit headers", status: 429,
			header: h("Retry-After", "120", "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "120"),
			body:   `{"title":"Too many requests","type":"errors/too_many_requests","status":429}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 429, Type: "too_many_requests",
				Title: "Too many requests", Detail: "rate limit: limit 100, remaining 0, reset 120",
				Scope: provider.ScopeAccount, Kind: provider.KindRateLimited, RetryAfter: 2 * time.Minute},
		},
		{
			name: "429 with an HTTP-date Retry-After and no body", status: 429,
			header: h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)),
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 429, Type: "too_many_requests",
				Detail: "Too Many Requests", Scope: provider.ScopeAccount, Kind: provider.KindRateLimited, RetryAfter: 90 * time.Second},
		},
		{
			name: "X-RateLimit-Reset as a Unix time", status: 429,
			header: h("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10)),
			body:   `{"title":"Too many requests","type":"errors/too_many_requests","status":429}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 429, Type: "too_many_requests",
				Title: "Too many requests", Detail: "rate limit: reset " + strconv.FormatInt(now.Add(time.Hour).Unix(), 10),
				Scope: provider.ScopeAccount, Kind: provider.KindRateLimited, RetryAfter: time.Hour},
		},
		{
			name: "HTML from a proxy", status: 502, body: "<html><body>Bad gateway</body></html>",
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 502, Type: "http_502",
				Detail: "Bad Gateway: <html><body>Bad gateway</body></html>", Scope: provider.ScopeTransient, Kind: provider.KindTransient},
		},
		{
			name: "long body is cut", status: 500, body: strings.Repeat("x", 500),
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 500, Type: "http_500",
				Detail: "Internal Server Error: " + strings.Repeat("x", 120) + "…", Scope: provider.ScopeTransient, Kind: provider.KindTransient},
		},
		{
			name: "JSON of another shape", status: 404, body: `{"message":"nope"}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 404, Type: "resource_not_found",
				Detail: `Not Found: {"message":"nope"}`, Scope: provider.ScopeTarget, Kind: provider.KindNotFound},
		},
		{
			name: "type without prefix", status: 422, body: `{"title":"x","type":"already_invited_recently","status":422}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 422, Type: "already_invited_recently",
				Title: "x", Scope: provider.ScopeTarget, Kind: provider.KindAlreadyInvited},
		},
		{
			name: "unknown type falls back on status", status: 403, body: `{"title":"New","type":"errors/brand_new","status":403}`,
			want: provider.Error{Provider: provider.Unipile, Op: "invite", HTTPStatus: 403, Type: "brand_new",
				Title: "New", Scope: provider.ScopeAccount, Kind: provider.KindAccount},
		},
	}
	for _, tt := range tests {
		got := parseError("invite", tt.status, tt.header, []byte(tt.body), now)
		if diff := cmp.Diff(tt.want, *got); diff != "" {
			t.Errorf("%s: parseError mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

// FuzzParseErrorBody checks that any answer gives a classified error with
// a short message, and never panics.
func FuzzParseErrorBody(f *testing.F) {
	f.Add(422, `{"title":"t","detail":"d","type":"errors/limit_exceeded","status":422}`, "60")
	f.Add(429, ``, "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(500, `<html>`, "")
	f.Add(404, `{"type":123}`, "-1")
	f.Add(400, `{"title":"`+strings.Repeat("é", 300)+`"}`, "1e400")
	f.Add(200, `null`, "99999999999999999999")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := parseError("invite", status, h, []byte(body), time.Unix(1_700_000_000, 0))
		if e.Scope == "" || e.Kind == "" || e.Type == "" {
			t.Fatalf("unclassified: %+v", e)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 31*24*time.Hour {
			t.Fatalf("RetryAfter %v out of range for %q", e.RetryAfter, retryAfter)
		}
		if n := len(e.Error()); n > 1500 {
			t.Fatalf("message of %d bytes", n)
		}
	})
}
