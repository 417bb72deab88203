package altegio

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
		status int
		body   string
		want   provider.Error
	}{
		{401, `{"success":false,"data":null,"meta":{"message":"Authentication needed."}}`,
			provider.Error{Type: "unauthorized", Title: "Authentication needed.", Scope: A, Kind: provider.KindAccount}},
		{403, `{"success":false,"data":null,"meta":{"message":"Access denied."}}`,
			provider.Error{Type: "forbidden", Title: "Access denied.", Scope: A, Kind: provider.KindAccount}},
		{404, `{"success":false,"data":null,"meta":[]}`,
			provider.Error{Type: "not_found", Detail: "Not Found", Scope: A, Kind: provider.KindAccount}},
		{404, `{"success":false,"data":null,"meta":{}}`,
			provider.Error{Type: "not_found", Detail: "Not Found", Scope: A, Kind: provider.KindAccount}},
		{422, `{"success":false,"data":null,"meta":{"message":"An error has occurred.","errors":["invites.0.search: must be an email"]}}`,
			provider.Error{Type: "validation_error", Title: "An error has occurred.", Detail: "invites.0.search: must be an email", Scope: T, Kind: provider.KindBadInput}},
		{422, `{"success":false,"data":null,"meta":{"message":"An error has occurred.","errors":{"search":["The user has already been invited"]}}}`,
			provider.Error{Type: "already_invited", Title: "An error has occurred.", Detail: "search: The user has already been invited", Scope: T, Kind: provider.KindAlreadyInvited}},
		{400, `{"success":false,"data":null,"meta":{"message":"Bad request"}}`,
			provider.Error{Type: "bad_request", Title: "Bad request", Scope: T, Kind: provider.KindBadInput}},
		{409, ``, provider.Error{Type: "conflict", Detail: "Conflict", Scope: T, Kind: provider.KindAlreadyInvited}},
		{429, `{"success":false,"data":null,"meta":{"message":"Too many requests."}}`,
			provider.Error{Type: "too_many_requests", Title: "Too many requests.", Scope: A, Kind: provider.KindRateLimited}},
		{408, ``, provider.Error{Type: "request_timeout", Detail: "Request Timeout", Scope: X, Kind: provider.KindTransient}},
		{500, `<html>x</html>`, provider.Error{Type: "server_error", Detail: "Internal Server Error: <html>x</html>", Scope: X, Kind: provider.KindTransient}},
		{503, ``, provider.Error{Type: "server_error", Detail: "Service Unavailable", Scope: X, Kind: provider.KindTransient}},
		{418, `{"a":1}`, provider.Error{Type: "http_error", Detail: `I'm a teapot: {"a":1}`, Scope: T, Kind: provider.KindBadInput}},
	}
	for _, tt := range tests {
		got := parseError("invite", tt.status, http.Header{}, []byte(tt.body), now)
		want := tt.want
		want.Provider, want.Op, want.HTTPStatus = provider.Altegio, "invite", tt.status
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("parseError(%d, %s) mismatch (-want +got):\n%s", tt.status, tt.body, diff)
		}
	}
}

// FuzzParseErrorBody checks that any answer gives a classified error with a
// short message, and never panics.
func FuzzParseErrorBody(f *testing.F) {
	f.Add(422, `{"success":false,"data":null,"meta":{"message":"m","errors":[{"a":["b"]}]}}`, "1")
	f.Add(404, `{"success":false,"data":null,"meta":[]}`, "")
	f.Add(401, `{"meta":"x"}`, "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(500, strings.Repeat("[", 10000), "1e9")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		e := parseError("invite", status, h, []byte(body), time.Unix(1_700_000_000, 0))
		if e.Scope == "" || e.Kind == "" || e.Type == "" {
			t.Fatalf("unclassified: %+v", e)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative RetryAfter %v", e.RetryAfter)
		}
		if n := len(e.Error()); n > 1000 {
			t.Fatalf("message of %d bytes", n)
		}
	})
}
