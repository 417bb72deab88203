package dashboard_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/dashboard"
)

// send makes a request with the given headers ("Name: value").
func send(t *testing.T, method, url string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCrossSiteRequestsRefused: a page on another site cannot make a
// visitor's browser change the queues; the dashboard's own pages and
// non-browser clients can.
func TestCrossSiteRequestsRefused(t *testing.T) {
	t.Parallel()
	srv := setup(t, dashboard.Options{TrustedOrigins: []string{"https://ops.example.com"}})
	pause := srv.URL + "/api/queues/invites:pause"
	for _, tc := range []struct {
		name    string
		method  string
		headers []string
	}{
		{"Sec-Fetch-Site cross-site", "POST", []string{"Sec-Fetch-Site: cross-site"}},
		{"Sec-Fetch-Site same-site", "POST", []string{"Sec-Fetch-Site: same-site"}},
		{"Origin of another host", "POST", []string{"Origin: http://evil.example"}},
		{"Origin null", "DELETE", []string{"Origin: null"}},
		{"Referer of another host", "POST", []string{"Referer: http://evil.example/page"}},
		{"Referer that does not parse", "POST", []string{"Referer: http://[::1"}},
		{"delete from another host", "DELETE", []string{"Origin: http://evil.example"}},
	} {
		code, body := send(t, tc.method, pause, tc.headers...)
		if code != http.StatusForbidden || !strings.Contains(body, "cross-site request refused") {
			t.Errorf("%s: %d %q, want 403 cross-site request refused", tc.name, code, body)
		}
	}
	code, body := send(t, "GET", srv.URL+"/api/queues/invites")
	if code != 200 || strings.Contains(body, `"paused":true`) {
		t.Fatalf("after refused requests the invites queue should run: %d %s", code, body)
	}
	// Reads from anywhere are fine (the browser keeps the answer from the
	// other site's script).
	if code, _ := send(t, "GET", srv.URL+"/api/queues", "Sec-Fetch-Site: cross-site"); code != 200 {
		t.Errorf("cross-site GET: %d, want 200", code)
	}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"same origin", []string{"Sec-Fetch-Site: same-origin", "Origin: " + srv.URL}},
		{"Origin of its own host, older browser", []string{"Origin: " + srv.URL}},
		{"Referer of its own host", []string{"Referer: " + srv.URL + "/queues"}},
		{"typed by the user", []string{"Sec-Fetch-Site: none"}},
		{"a trusted origin", []string{"Origin: https://ops.example.com"}},
		{"no browser (curl)", nil},
	} {
		if code, body := send(t, "POST", srv.URL+"/api/queues/lookups:pause", tc.headers...); code >= 300 {
			t.Errorf("%s: %d %s, want the pause done", tc.name, code, body)
		}
		if code, body := send(t, "POST", srv.URL+"/api/queues/lookups:resume", tc.headers...); code >= 300 {
			t.Errorf("%s: resume: %d %s", tc.name, code, body)
		}
	}

	// Read-only is unchanged: every write is refused as before, whatever
	// the headers.
	ro := setup(t, dashboard.Options{ReadOnly: true})
	for _, h := range [][]string{{"Origin: http://evil.example"}, {"Sec-Fetch-Site: same-origin"}, nil} {
		if code, _ := send(t, "POST", ro.URL+"/api/queues/invites:pause", h...); code != http.StatusMethodNotAllowed {
			t.Errorf("read-only POST with %v: %d, want 405", h, code)
		}
	}
}
