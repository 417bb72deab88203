package httpclient

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		retryAfter, reset string
		want              time.Duration
	}{
		{"", "", 0},
		{"120", "", 2 * time.Minute},
		{"1.5", "", 1500 * time.Millisecond},
		{now.Add(time.Hour).Format(http.TimeFormat), "", time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), "", 0},
		{"soon", "", 0},
		{"-3", "", 0},
		{"", "30", 30 * time.Second},
		{"", "1740834000", time.Hour}, // a Unix time
		{"99999999", "", 30 * 24 * time.Hour},
		{"10", "999", 10 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		if tt.reset != "" {
			h.Set("X-RateLimit-Reset", tt.reset)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("RetryAfter(%q, reset %q) = %v; want %v", tt.retryAfter, tt.reset, got, tt.want)
		}
	}
}

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		trim     []string
	}{
		{"api1.unipile.com:13111", "https://api1.unipile.com:13111", nil},
		{"https://api1.unipile.com:13111/", "https://api1.unipile.com:13111", nil},
		{"http://127.0.0.1:8089", "http://127.0.0.1:8089", nil},
		{"https://api.partoo.co/v2/", "https://api.partoo.co", []string{"/v2"}},
		{"https://proxy.example/partoo/v2", "https://proxy.example/partoo", []string{"/v2"}},
	}
	for _, tt := range tests {
		u, err := ParseBaseURL(tt.in, tt.trim...)
		if err != nil || u.String() != tt.want {
			t.Errorf("ParseBaseURL(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
		}
	}
	for _, bad := range []string{"", "  ", "ftp://x", "https://", "https://u:p@x", "https://x?a=b", "https://x#f", "http://[::1"} {
		if u, err := ParseBaseURL(bad); err == nil {
			t.Errorf("ParseBaseURL(%q) = %v; want an error", bad, u)
		}
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	if got := Snippet([]byte("  a\nb\x00c  ")); got != "a b c" {
		t.Errorf("Snippet = %q", got)
	}
	long := Snippet([]byte(strings.Repeat("é", 500)))
	if n := len([]rune(long)); n != 121 || !strings.HasSuffix(long, "…") {
		t.Errorf("Snippet of 500 runes has %d runes: %q", n, long)
	}
	if got := Snippet([]byte{0xff, 'a'}); got != "?a" {
		t.Errorf("Snippet of invalid UTF-8 = %q", got)
	}
}

// TestGivenClientNeverFollowsRedirects: a caller's *http.Client (with Go's
// default redirect policy) is copied, not changed, and the copy refuses
// redirects.
func TestGivenClientNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	given := &http.Client{}
	b, err := New(Options{BaseURL: &url.URL{Scheme: "http", Host: "example.invalid"}, HTTPClient: given})
	if err != nil {
		t.Fatal(err)
	}
	if given.CheckRedirect != nil {
		t.Error("New changed the caller's client")
	}
	if b.hc == given || b.hc.CheckRedirect == nil {
		t.Fatal("the Base's client follows redirects")
	}
	if err := b.hc.CheckRedirect(&http.Request{}, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v; want http.ErrUseLastResponse", err)
	}
}
