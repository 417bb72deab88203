package contract

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps the errors instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

type answer struct {
	status int
	body   string
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: readCloser(a.body), Request: r}, nil
}

type rc struct{ *strings.Reader }

func (rc) Close() error { return nil }

func readCloser(s string) rc { return rc{strings.NewReader(s)} }

// TestTransportCatchesViolations makes sure the contract can fail.
func TestTransportCatchesViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		specs   []Spec
		method  string
		url     string
		header  map[string]string
		body    string
		res     answer
		wantErr string
	}{
		{"valid invite", Unipile, "POST", "http://x/api/v1/users/invite", map[string]string{"X-API-KEY": "k"},
			`{"provider_id":"p","account_id":"a","user_email":"a@b.c"}`, answer{200, `{"object":"UserInvitationSent","invitation_id":"1"}`}, ""},
		{"note too long", Unipile, "POST", "http://x/api/v1/users/invite", map[string]string{"X-API-KEY": "k"},
			`{"provider_id":"p","account_id":"a","message":"` + strings.Repeat("x", 301) + `"}`, answer{200, `{"object":"UserInvitationSent","invitation_id":"1"}`}, "request"},
		{"missing key", Unipile, "POST", "http://x/api/v1/users/invite", nil,
			`{"provider_id":"p","account_id":"a"}`, answer{200, `{"object":"UserInvitationSent","invitation_id":"1"}`}, "request"},
		{"bad emailLike", Unipile, "POST", "http://x/api/v1/users/invite", map[string]string{"X-API-KEY": "k"},
			`{"provider_id":"p","account_id":"a","user_email":"nope"}`, answer{200, `{"object":"UserInvitationSent","invitation_id":"1"}`}, "request"},
		{"unknown error type", Unipile, "POST", "http://x/api/v1/users/invite", map[string]string{"X-API-KEY": "k"},
			`{"provider_id":"p","account_id":"a"}`, answer{422, `{"title":"t","type":"errors/made_up","status":422}`}, "response"},
		{"undocumented status", Unipile, "POST", "http://x/api/v1/users/invite", map[string]string{"X-API-KEY": "k"},
			`{"provider_id":"p","account_id":"a"}`, answer{418, `{}`}, "response"},
		{"profile without provider id", Unipile, "GET", "http://x/api/v1/users/jane?account_id=a", map[string]string{"X-API-KEY": "k"},
			``, answer{200, `{"object":"UserProfile"}`}, "response"},
		{"profile without websites (required by the SDK)", Unipile, "GET", "http://x/api/v1/users/jane?account_id=a", map[string]string{"X-API-KEY": "k"},
			``, answer{200, `{"object":"UserProfile","provider":"LINKEDIN","provider_id":"p","public_identifier":"jane","headline":"h","first_name":"J","last_name":null}`}, "websites"},
		{"sent list item of another object", Unipile, "GET", "http://x/api/v1/users/invite/sent?account_id=a", map[string]string{"X-API-KEY": "k"},
			``, answer{200, `{"object":"InvitationList","cursor":null,"items":[{"object":"UserInvitation","id":"1","date":"d","parsed_datetime":null,"invited_user":null,"invited_user_id":null,"invited_user_public_id":null,"invited_user_description":null,"invitation_text":null}]}`}, "InvitationSent"},
		{"profile lookup without account", Unipile, "GET", "http://x/api/v1/users/jane", map[string]string{"X-API-KEY": "k"},
			``, answer{200, `{"object":"UserProfile","provider_id":"p"}`}, "request"},
		{"partoo ok", Partoo, "POST", "http://x/v2/user/u/invite", map[string]string{"x-APIKey": "k"},
			``, answer{200, `{"status":"success"}`}, ""},
		{"partoo bad status value", Partoo, "POST", "http://x/v2/user/u/invite", map[string]string{"x-APIKey": "k"},
			``, answer{200, `{"status":"ok"}`}, "response"},
		{"partoo 429 allowed", Partoo, "POST", "http://x/v2/user/u/invite", map[string]string{"x-APIKey": "k"},
			``, answer{429, `whatever`}, ""},
		{"altegio wrong accept", Altegio, "POST", "http://x/api/v1/user/invite/1",
			map[string]string{"Authorization": "Bearer p, User u", "Accept": "application/json", "Content-Type": "application/json"},
			`{"invites":[]}`, answer{202, `{"success":true,"data":null,"meta":{"message":"Saved"}}`}, "request"},
		{"altegio bad role", Altegio, "POST", "http://x/api/v1/user/invite/1",
			map[string]string{"Authorization": "Bearer p, User u", "Accept": "application/vnd.api.v2+json", "Content-Type": "application/json"},
			`{"invites":[{"search":"a@b.c","user_role":"king"}]}`, answer{202, `{"success":true,"data":null,"meta":{"message":"Saved"}}`}, "request"},
		{"no such operation", Altegio, "GET", "http://x/elsewhere", nil, ``, answer{200, `{}`}, "matches no operation"},
	}
	for _, tt := range tests {
		rec := &recorder{TB: t}
		tr := NewTransport(rec, tt.res, tt.specs)
		req, _ := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		if tt.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		res.Body.Close()
		switch {
		case tt.wantErr == "" && len(rec.errs) > 0:
			t.Errorf("%s: unexpected contract errors: %v", tt.name, rec.errs)
		case tt.wantErr != "" && (len(rec.errs) == 0 || !strings.Contains(rec.errs[0], tt.wantErr)):
			t.Errorf("%s: contract errors %v; want one about %q", tt.name, rec.errs, tt.wantErr)
		}
	}
}
