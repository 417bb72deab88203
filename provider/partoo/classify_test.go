package partoo

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
)

func TestParseError(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	T, A, X := provider.ScopeTarget, provider.ScopeAccount, provider.ScopeTransient
	tests := []struct {
		status     int
		retryAfter string
		body       string
		want       provider.Error
	}{
		{401, "", `{"errors":{"authentication":"User not authenticated"}}`,
			provider.Error{Type: "unauthorized", Detail: "authentication: User not authenticated", Scope: A, Kind: provider.KindAccount}},
		{403, "", `{"errors":{"authorization":"Operation not allowed"}}`,
			provider.Error{Type: "forbidden", Detail: "authorization: Operation not allowed", Scope: T, Kind: provider.KindRecipient}},
		{404, "", `{"errors":{"json":"Resource not found"}}`,
			provider.Error{Type: "not_found", Detail: "json: Resource not found", Scope: T, Kind: provider.KindNotFound}},
		{400, "", `{"errors":{"json":{"user_id":["Not a valid id"]}}}`,
			provider.Error{Type: "bad_request", Detail: `json: {"user_id":["Not a valid id"]}`, Scope: T, Kind: provider.KindBadInput}},
		{409, "", `{"errors":{"json":"conflict"}}`,
			provider.Error{Type: "conflict", Detail: "json: conflict", Scope: T, Kind: provider.KindAlreadyInvited}},
		{422, "", `{"errors":{"json":"bad"}}`,
			provider.Error{Type: "unprocessable_entity", Detail: "json: bad", Scope: T, Kind: provider.KindBadInput}},
		{429, "30", `{"errors":{"json":"Too many requests"}}`,
			provider.Error{Type: "too_many_requests", Detail: "json: Too many requests", Scope: A, Kind: provider.KindRateLimited, RetryAfter: 30 * time.Second}},
		{429, "", ``,
			provider.Error{Type: "too_many_requests", Detail: "Too Many Requests", Scope: A, Kind: provider.KindRateLimited}},
		// The five-minute rule, in the simulator's shape and in others.
		{429, "120", `{"errors":{"json":"The invitation email can only be sent once every 5 minutes"}}`,
			provider.Error{Type: "too_soon", Detail: "json: The invitation email can only be sent once every 5 minutes", Scope: T, Kind: provider.KindTooSoon, RetryAfter: 2 * time.Minute}},
		{400, "", `{"errors":{"json":"Invitation already sent less than five minutes ago"}}`,
			provider.Error{Type: "too_soon", Detail: "json: Invitation already sent less than five minutes ago", Scope: T, Kind: provider.KindTooSoon, RetryAfter: ResendInterval}},
		{403, "", `{"errors":{"authorization":"Email can only be sent once every 5 minutes"}}`,
			provider.Error{Type: "too_soon", Detail: "authorization: Email can only be sent once every 5 minutes", Scope: T, Kind: provider.KindTooSoon, RetryAfter: ResendInterval}},
		{408, "", ``, provider.Error{Type: "request_timeout", Detail: "Request Timeout", Scope: X, Kind: provider.KindTransient}},
		{500, "", `<html>oops</html>`, provider.Error{Type: "server_error", Detail: "Internal Server Error: <html>oops</html>", Scope: X, Kind: provider.KindTransient}},
		{502, "", ``, provider.Error{Type: "server_error", Detail: "Bad Gateway", Scope: X, Kind: provider.KindTransient}},
		{503, "", `{}`, provider.Error{Type: "server_error", Detail: "Service Unavailable: {}", Scope: X, Kind: provider.KindTransient}},
		{418, "", `teapot`, provider.Error{Type: "http_error", Detail: "I'm a teapot: teapot", Scope: T, Kind: provider.KindBadInput}},
		{302, "", ``, provider.Error{Type: "unexpected_status", Detail: "Found", Scope: X, Kind: provider.KindTransient}},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		got := parseError("invite", tt.status, h, []byte(tt.body), now)
		want := tt.want
		want.Provider, want.Op, want.HTTPStatus = provider.Partoo, "invite", tt.status
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("parseError(%d, %s) mismatch (-want +got):\n%s", tt.status, tt.body, diff)
		}
	}
}

// FuzzParseErrorBody checks that any answer gives a classified error with a
// short message, and never panics.
func FuzzParseErrorBody(f *testing.F) {
	f.Add(401, `{"errors":{"authentication":"User not authenticated"}}`, "")
	f.Add(429, `{"errors":{"json":"once every 5 minutes"}}`, "99999")
	f.Add(400, `{"errors":[1,2]}`, "x")
	f.Add(500, strings.Repeat("z", 4000), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(404, `{"errors":{"json":null}}`, "-5")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := parseError("invite", status, h, []byte(body), time.Unix(1_700_000_000, 0))
		if e.Scope == "" || e.Kind == "" || e.Type == "" {
			t.Fatalf("unclassified: %+v", e)
		}
		if e.Kind == provider.KindTooSoon && (e.RetryAfter <= 0 || e.RetryAfter > ResendInterval) {
			t.Fatalf("too soon with RetryAfter %v", e.RetryAfter)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative RetryAfter %v", e.RetryAfter)
		}
		if n := len(e.Error()); n > 1000 {
			t.Fatalf("message of %d bytes", n)
		}
	})
}
