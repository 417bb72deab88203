package unipile_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/unipile"
)

const secret = "sk-live-SECRET-0123456789"

// echoKey answers with the API key it received everywhere it can: the
// body fields, a non-JSON body, the headers. A hostile or buggy server
// must not make the key leak into an error.
func echoKey(mode string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := r.Header.Get("X-API-KEY")
		w.Header().Set("Retry-After", k)
		w.Header().Set("X-RateLimit-Limit", k)
		switch mode {
		case "json":
			w.WriteHeader(422)
			fmt.Fprintf(w, `{"title":"%s","detail":"key %s","type":"errors/%s","status":422}`, k, k, k)
		case "text":
			w.WriteHeader(500)
			fmt.Fprintf(w, "upstream said: X-API-KEY=%s", k)
		case "429":
			w.WriteHeader(429)
		case "success":
			fmt.Fprintf(w, `{"weird":"%s"}`, k)
		case "list":
			fmt.Fprintf(w, `[%q]`, k)
		}
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	_, err := unipile.New(unipile.Config{BaseURL: "https://user:" + secret + "@api1.unipile.com:13111", APIKey: secret})
	check(err)
	_, err = unipile.New(unipile.Config{BaseURL: "ftp://x", APIKey: secret})
	check(err)
	_, err = unipile.New(unipile.Config{BaseURL: "https://x/?k=" + secret, APIKey: secret})
	check(err)

	for _, mode := range []string{"json", "text", "429", "success", "list"} {
		srv := httptest.NewServer(echoKey(mode))
		c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(ctx, "a", "jane")
		check(err)
		_, err = c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x", Message: "hi"})
		check(err)
		_, err = c.ListSent(ctx, "a")
		check(err)
		check(c.Cancel(ctx, "a", "i"))
		srv.Close()
		// Now closed: transport errors.
		_, err = c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x"})
		check(err)
	}

	// A transport whose error quotes the request's header.
	leaky := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused request with X-API-KEY %s", r.Header.Get("X-API-KEY"))
	})
	c, _ := unipile.New(unipile.Config{BaseURL: "api1.unipile.com:13111", APIKey: secret, Transport: leaky})
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x"})
	check(err)
	// Local refusals and timeouts.
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x", Message: strings.Repeat("x", 301)})
	check(err)
	_, err = c.Invite(ctx, provider.Invitation{})
	check(err)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	c, _ = unipile.New(unipile.Config{BaseURL: hang.URL, APIKey: secret, Timeout: 10 * time.Millisecond})
	_, err = c.Resolve(ctx, "a", "jane")
	check(err)

	if len(errs) < 25 {
		t.Fatalf("only %d error paths exercised", len(errs))
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("error leaks the API key: %v", err)
		}
	}
}
