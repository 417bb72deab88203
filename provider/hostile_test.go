package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// The hostile-provider suite runs the real clients of all three providers
// against httptest servers that misbehave: redirects (to another host and
// to the same host), huge bodies, bodies that trickle past the timeout,
// bad JSON on success and on error statuses, and servers that echo the
// credentials back. The keys are valid DNS labels so that a server can
// also put them in the host of a Location.
const (
	unipileKey     = "hostilekey0unipile"
	partooKey      = "hostilekey0partoo"
	altegioPartner = "hostilekey0partner"
	altegioUser    = "hostilekey0user"
)

// call is one client operation; resolve and list answers are reported
// through Sent.InvitationID so that every call can be checked for a
// success it must not report.
type call func(ctx context.Context) (provider.Sent, error)

// subject is one provider client under attack.
type subject struct {
	name provider.Name
	// secrets are its credentials, none of which may appear in an error.
	secrets []string
	// urlVar is the setting a redirect error must name.
	urlVar string
	// keyVar is the setting a refused credential must name.
	keyVar string
	// calls builds the operations of a client pointed at baseURL.
	calls func(t *testing.T, baseURL string, timeout time.Duration) map[string]call
}

func subjects() []subject {
	return []subject{
		{
			name: provider.Unipile, secrets: []string{unipileKey}, urlVar: "UNIPILE_DSN", keyVar: "UNIPILE_API_KEY",
			calls: func(t *testing.T, baseURL string, timeout time.Duration) map[string]call {
				c, err := unipile.New(unipile.Config{BaseURL: baseURL, APIKey: unipileKey, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return map[string]call{
					"invite": func(ctx context.Context) (provider.Sent, error) {
						return c.Invite(ctx, provider.Invitation{AccountID: "acc", RecipientID: "ACoAAhostile00000000000000", Message: "hi"})
					},
					"resolve": func(ctx context.Context) (provider.Sent, error) {
						p, err := c.Resolve(ctx, "acc", "jane-doe")
						return provider.Sent{InvitationID: p.ProviderID}, err
					},
					"cancel": func(ctx context.Context) (provider.Sent, error) {
						return provider.Sent{}, c.Cancel(ctx, "acc", "inv-1")
					},
					"list_sent": func(ctx context.Context) (provider.Sent, error) {
						l, err := c.ListSent(ctx, "acc")
						if len(l) > 0 {
							return provider.Sent{InvitationID: l[0].ID}, err
						}
						return provider.Sent{}, err
					},
					"relations": func(ctx context.Context) (provider.Sent, error) {
						pg, err := c.ListRelations(ctx, "acc", "", 0)
						if len(pg.Relations) > 0 {
							return provider.Sent{InvitationID: pg.Relations[0].ProviderID}, err
						}
						return provider.Sent{}, err
					},
					"account": func(ctx context.Context) (provider.Sent, error) {
						st, err := c.CheckAccount(ctx, "acc")
						return provider.Sent{InvitationID: st.Status}, err
					},
				}
			},
		},
		{
			name: provider.Partoo, secrets: []string{partooKey}, urlVar: "PARTOO_URL", keyVar: "PARTOO_API_KEY",
			calls: func(t *testing.T, baseURL string, timeout time.Duration) map[string]call {
				c, err := partoo.New(partoo.Config{BaseURL: baseURL, APIKey: partooKey, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return map[string]call{"invite": func(ctx context.Context) (provider.Sent, error) {
					return c.Invite(ctx, provider.Invitation{RecipientID: "user-1"})
				}}
			},
		},
		{
			name: provider.Altegio, secrets: []string{altegioPartner, altegioUser}, urlVar: "ALTEGIO_URL", keyVar: "ALTEGIO_PARTNER_TOKEN",
			calls: func(t *testing.T, baseURL string, timeout time.Duration) map[string]call {
				c, err := altegio.New(altegio.Config{BaseURL: baseURL, PartnerToken: altegioPartner, UserToken: altegioUser, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return map[string]call{"invite": func(ctx context.Context) (provider.Sent, error) {
					return c.Invite(ctx, provider.Invitation{AccountID: "42", RecipientID: "jane@example.com", Name: "Jane"})
				}}
			},
		},
	}
}

// echoedKeys returns every credential the request carried, as a hostile
// server would read them.
func echoedKeys(r *http.Request) string {
	return strings.Join([]string{r.Header.Get("X-API-KEY"), r.Header.Get("x-APIKey"), r.Header.Get("Authorization")}, " ")
}

// successBody is a success answer every client would accept: Unipile's
// UserInvitationSent and UserProfile, Partoo's and Altegio's success.
const successBody = `{"object":"UserInvitationSent","invitation_id":"evil-1","provider_id":"ACoAAevil0000000000000000","items":[{"object":"InvitationSent","id":"evil-1"}],"cursor":null,"status":"success","success":true}`

// recorder is a server that must never be reached: it counts requests
// and the credentials they carried, and answers success.
type recorder struct {
	srv      *httptest.Server
	requests atomic.Int64
	withKey  atomic.Int64
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.requests.Add(1)
		if strings.TrimSpace(echoedKeys(r)) != "" {
			rec.withKey.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, successBody)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// checkSecretFree fails the test if err, in any form a user or a log
// could see, holds a credential.
func checkSecretFree(t *testing.T, s subject, err error) {
	t.Helper()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Error("provider call failed", "err", err)
	for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%q", err), logged.String()} {
		for _, sec := range s.secrets {
			if strings.Contains(form, sec) {
				t.Errorf("error leaks a credential: %s", form)
			}
		}
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		for _, f := range []string{pe.Type, pe.Title, pe.Detail} {
			for _, sec := range s.secrets {
				if strings.Contains(f, sec) {
					t.Errorf("error field leaks a credential: %q", f)
				}
			}
		}
	}
}

// classified returns err as a *provider.Error, failing the test if it is
// not one or if it reports a success.
func classified(t *testing.T, s subject, sent provider.Sent, err error) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got success %+v; want a classified error", sent)
	}
	if sent != (provider.Sent{}) {
		t.Errorf("got %+v with the error; want no result", sent)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v; want a *provider.Error", err, err)
	}
	if pe.Provider != s.name || pe.Scope == "" || pe.Kind == "" {
		t.Errorf("got provider %q scope %q kind %q; want %s and a classification", pe.Provider, pe.Scope, pe.Kind, s.name)
	}
	checkSecretFree(t, s, err)
	return pe
}

// TestHostileRedirects: a redirect answer is never followed (no request
// reaches the other host, with or without credentials) and is an account
// error naming the URL setting, whatever the status and the target.
func TestHostileRedirects(t *testing.T) {
	t.Parallel()
	for _, s := range subjects() {
		for _, status := range []int{301, 302, 303, 307, 308} {
			for _, where := range []string{"other-host", "same-host", "key-in-location"} {
				t.Run(fmt.Sprintf("%s/%d/%s", s.name, status, where), func(t *testing.T) {
					t.Parallel()
					other := newRecorder(t)
					var hits atomic.Int64
					hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if hits.Add(1) > 1 && where == "same-host" {
							// A followed redirect comes back here: answer
							// success, as a confused proxy would.
							fmt.Fprint(w, successBody)
							return
						}
						loc := other.srv.URL + r.URL.RequestURI()
						switch where {
						case "same-host":
							loc = "/elsewhere" + r.URL.RequestURI()
						case "key-in-location":
							loc = "http://" + s.secrets[0] + ".invalid/?key=" + s.secrets[0]
						}
						http.Redirect(w, r, loc, status)
					}))
					defer hostile.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					for op, c := range s.calls(t, hostile.URL, 10*time.Second) {
						hits.Store(0)
						sent, err := c(ctx)
						pe := classified(t, s, sent, err)
						if pe.Scope != provider.ScopeProcess || pe.Kind != provider.KindConfig {
							t.Errorf("%s: got scope %q kind %q; want process/config: %v", op, pe.Scope, pe.Kind, err)
						}
						if pe.HTTPStatus != status {
							t.Errorf("%s: got HTTP status %d; want %d", op, pe.HTTPStatus, status)
						}
						msg := err.Error()
						if !strings.Contains(msg, "redirect") || !strings.Contains(msg, s.urlVar) {
							t.Errorf("%s: message %q; want it to say redirect and name %s", op, msg, s.urlVar)
						}
						if n := hits.Load(); n != 1 {
							t.Errorf("%s: hostile server got %d requests; want 1 (redirect followed)", op, n)
						}
					}
					if n := other.requests.Load(); n != 0 {
						t.Errorf("other host got %d requests (%d with credentials); want none", n, other.withKey.Load())
					}
				})
			}
		}
	}
}

// bigBody is more than any client reads (httpclient.MaxBody is 1 MiB).
const bigBody = 64 << 20

// TestHostileHugeBody: a body far bigger than the read cap is not read
// in full (the client hangs up; the server cannot write it all) and gives
// a classified error: transient on a success status (an invite may exist),
// the status's own class otherwise.
func TestHostileHugeBody(t *testing.T) {
	t.Parallel()
	for _, s := range subjects() {
		for _, status := range []int{200, 202, 500, 401} {
			t.Run(fmt.Sprintf("%s/%d", s.name, status), func(t *testing.T) {
				t.Parallel()
				written := make(chan int, 16)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					n, _ := fmt.Fprint(w, `{"object":"UserInvitationSent","invitation_id":"x","status":"success","success":true,"pad":"`)
					chunk := bytes.Repeat([]byte("a"), 32<<10)
					for n < bigBody {
						m, err := w.Write(chunk)
						n += m
						if err != nil {
							break
						}
					}
					written <- n
				}))
				defer srv.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				for op, c := range s.calls(t, srv.URL, 30*time.Second) {
					sent, err := c(ctx)
					pe := classified(t, s, sent, err)
					switch {
					case status < 300 && pe.Kind != provider.KindTransient:
						t.Errorf("%s: a huge success body gave kind %q; want transient (uncertain): %v", op, pe.Kind, err)
					case status == 500 && pe.Kind != provider.KindTransient:
						t.Errorf("%s: a huge 500 gave kind %q; want transient", op, pe.Kind)
					case status == 401 && pe.Kind != provider.KindAccount && pe.Kind != provider.KindConfig:
						t.Errorf("%s: a huge 401 gave kind %q; want account or config", op, pe.Kind)
					}
					if len(err.Error()) > 2000 {
						t.Errorf("%s: error message is %d bytes long", op, len(err.Error()))
					}
					select {
					case n := <-written:
						if n >= bigBody {
							t.Errorf("%s: the server wrote all %d bytes: the client read past its cap", op, n)
						}
					case <-ctx.Done():
						t.Fatalf("%s: server never finished writing", op)
					}
				}
			})
		}
	}
}

// TestHostileSlowDrip: headers then a body trickling forever, or no
// headers at all, end in a transient timeout at the client's timeout.
func TestHostileSlowDrip(t *testing.T) {
	t.Parallel()
	for _, s := range subjects() {
		for _, mode := range []string{"body", "headers"} {
			t.Run(fmt.Sprintf("%s/%s", s.name, mode), func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Reading the request lets the server notice the
					// client hanging up (r.Context() is then done).
					io.Copy(io.Discard, r.Body)
					if mode == "headers" {
						<-r.Context().Done()
						return
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusOK)
					fmt.Fprint(w, `{"object":"UserInvitationSent",`)
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					for {
						w.(http.Flusher).Flush()
						select {
						case <-r.Context().Done():
							return
						case <-tick.C:
							if _, err := w.Write([]byte(" ")); err != nil {
								return
							}
						}
					}
				}))
				defer srv.Close()
				// The watchdog only bounds a broken client; the client's own
				// timeout is what must end each call.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for op, c := range s.calls(t, srv.URL, 200*time.Millisecond) {
					sent, err := c(ctx)
					pe := classified(t, s, sent, err)
					if pe.Scope != provider.ScopeTransient || pe.Kind != provider.KindTransient || pe.Type != "timeout" {
						t.Errorf("%s: got scope %q kind %q type %q; want a transient timeout: %v", op, pe.Scope, pe.Kind, pe.Type, err)
					}
					if ctx.Err() != nil {
						t.Fatalf("%s: the call ran past the watchdog instead of its own timeout", op)
					}
				}
			})
		}
	}
}

// TestHostileBadJSON: a body that is not what the provider sends is
// always classified. On a success status it is transient, never a
// success and never permanent: for an invite the invitation may exist,
// so the attempt is retried and settled later.
func TestHostileBadJSON(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"truncated": `{"object":"UserInvitationSent","invitation_id":`,
		"html":      `<html><body>OK</body></html>`,
		"array":     `[1,2,3]`,
		"string":    `"success"`,
	}
	for _, s := range subjects() {
		for _, status := range []int{200, 201, 202, 400, 401, 404, 422, 429, 500, 502, 503} {
			for name, body := range bodies {
				t.Run(fmt.Sprintf("%s/%d/%s", s.name, status, name), func(t *testing.T) {
					t.Parallel()
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(status)
						fmt.Fprint(w, body)
					}))
					defer srv.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					for op, c := range s.calls(t, srv.URL, 10*time.Second) {
						sent, err := c(ctx)
						if op == "cancel" && status < 300 && err == nil {
							continue // a withdrawal's answer is its status; it reports no result
						}
						pe := classified(t, s, sent, err)
						if pe.HTTPStatus != status {
							t.Errorf("%s: got HTTP status %d; want %d", op, pe.HTTPStatus, status)
						}
						switch {
						case status < 300:
							if pe.Scope != provider.ScopeTransient || pe.Kind != provider.KindTransient {
								t.Errorf("%s: bad JSON on %d gave scope %q kind %q; want transient (uncertain): %v", op, status, pe.Scope, pe.Kind, err)
							}
						case status >= 500:
							if pe.Kind != provider.KindTransient {
								t.Errorf("%s: %d gave kind %q; want transient", op, status, pe.Kind)
							}
						case status == 401:
							if pe.Kind != provider.KindAccount && pe.Kind != provider.KindConfig {
								t.Errorf("%s: 401 gave kind %q; want account or config", op, pe.Kind)
							}
						case status == 429:
							if pe.Kind != provider.KindRateLimited {
								t.Errorf("%s: 429 gave kind %q; want rate_limited", op, pe.Kind)
							}
						}
					}
				})
			}
		}
	}
}

// TestHostileEchoesKey: a provider echoing the credentials in the body,
// the headers or a Location never makes them appear in an error or a log.
func TestHostileEchoesKey(t *testing.T) {
	t.Parallel()
	for _, s := range subjects() {
		for _, status := range []int{200, 202, 302, 400, 401, 403, 404, 409, 422, 429, 500, 503} {
			t.Run(fmt.Sprintf("%s/%d", s.name, status), func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					k := echoedKeys(r)
					for _, h := range []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Echo"} {
						w.Header().Set(h, k)
					}
					w.Header().Set("Location", "http://"+s.secrets[0]+".invalid/"+s.secrets[len(s.secrets)-1]+"?k="+k)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					fmt.Fprintf(w, `{"title":%q,"detail":%q,"type":"errors/%s","status":%d,"errors":{"authentication":%q},"success":false,"meta":{"message":%q,"errors":[%q]}}`,
						k, "key "+k, s.secrets[0], status, k, k, k)
				}))
				defer srv.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				for op, c := range s.calls(t, srv.URL, 10*time.Second) {
					sent, err := c(ctx)
					if op == "cancel" && status < 300 && err == nil {
						continue // a withdrawal's answer is its status
					}
					classified(t, s, sent, err)
				}
			})
		}
	}
}
