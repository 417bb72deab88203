// Package httpclient holds the HTTP plumbing the provider clients share:
// a paced, context-bound request helper that turns transport failures into
// classified *provider.Error values, Retry-After parsing, body snippets and
// secret redaction.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/outreach-dev/outreach/provider"
)

// DefaultTimeout bounds one request when a Config leaves Timeout at zero.
const DefaultTimeout = 30 * time.Second

// MaxBody is the most bytes read from a response body. A success answer
// with a longer body is refused (see Do); an error answer is classified on
// its status with the body cut at MaxBody.
const MaxBody = 1 << 20

// Options configures a Base.
type Options struct {
	Provider          provider.Name
	BaseURL           *url.URL
	HTTPClient        *http.Client // nil: a new client on a clone of http.DefaultTransport
	Transport         http.RoundTripper
	Timeout           time.Duration // 0: DefaultTimeout
	RequestsPerSecond float64       // 0: unlimited
	Burst             int           // 0: 1 when RequestsPerSecond > 0
	// Secrets are redacted from every error this Base builds.
	Secrets []string
	// URLSetting names the setting that holds BaseURL (such as
	// "UNIPILE_DSN"); redirect errors name it as the thing to check.
	URLSetting string
}

// Base sends requests for one provider client with one credential.
type Base struct {
	provider provider.Name
	base     *url.URL
	hc       *http.Client
	timeout  time.Duration
	limiter  *rate.Limiter
	secrets  []string
	// urlSetting is Options.URLSetting.
	urlSetting string
}

// New builds a Base. It never uses http.DefaultClient, and its client
// never follows a redirect: Go's default policy would re-send the
// credentials headers (X-API-KEY, x-APIKey, Authorization) and the body to
// whatever host a Location names and trust its answer. A given HTTPClient
// is copied, not changed.
func New(o Options) (*Base, error) {
	if o.BaseURL == nil {
		return nil, errors.New("base URL is required")
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("timeout must not be negative, got %s", o.Timeout)
	}
	if o.RequestsPerSecond < 0 {
		return nil, fmt.Errorf("requests per second must not be negative, got %g", o.RequestsPerSecond)
	}
	if o.Burst < 0 {
		return nil, fmt.Errorf("burst must not be negative, got %d", o.Burst)
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := o.Transport
		if tr == nil {
			tr = http.DefaultTransport.(*http.Transport).Clone()
		}
		hc = &http.Client{Transport: tr}
	} else if o.Transport != nil {
		return nil, errors.New("set either HTTPClient or Transport, not both")
	} else {
		cp := *hc
		hc = &cp
	}
	hc.CheckRedirect = neverFollow
	b := &Base{provider: o.Provider, base: o.BaseURL, hc: hc, timeout: o.Timeout, urlSetting: o.URLSetting}
	if b.timeout == 0 {
		b.timeout = DefaultTimeout
	}
	if o.RequestsPerSecond > 0 {
		burst := o.Burst
		if burst == 0 {
			burst = 1
		}
		b.limiter = rate.NewLimiter(rate.Limit(o.RequestsPerSecond), burst)
	}
	for _, s := range o.Secrets {
		if s != "" {
			b.secrets = append(b.secrets, s)
		}
	}
	return b, nil
}

// ParseBaseURL parses a base URL, adding "https://" to a bare host[:port]
// (a Unipile DSN), and drops a trailing slash and any suffix in trim (such
// as "/v2") so that clients can append their own paths.
func ParseBaseURL(raw string, trim ...string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("base URL is required")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	// Errors name the scheme and host at most: the rest of a URL may hold
	// a credential.
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("invalid base URL: cannot parse it")
	}
	if u.User != nil {
		return nil, errors.New("invalid base URL: credentials in the URL are not allowed")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid base URL: scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("invalid base URL: no host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("invalid base URL for host %q: no query or fragment allowed", u.Host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	for _, t := range trim {
		u.Path = strings.TrimSuffix(u.Path, t)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Request is one call to make.
type Request struct {
	Op     string
	Method string
	Path   string // already escaped, appended to the base URL path
	Query  url.Values
	Header http.Header
	Body   any // JSON-encoded when not nil
}

// neverFollow is the CheckRedirect of every provider client: the 3xx
// answer itself comes back to Do, which refuses it.
func neverFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Response is a provider's answer, body read in full (up to MaxBody).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do waits for the pacing limiter, sends r with the client timeout and
// reads the answer. Transport failures, timeouts and a cancelled context
// come back as a *provider.Error of KindTransient. Two answers are refused
// here for every provider and call:
//
//   - a redirect (any 3xx) is never followed and is a configuration error
//     of this process (ScopeProcess, KindConfig, Type "redirect"): the configured URL is
//     wrong or something between us and the provider is, and every call
//     of the account would meet it, so the account waits for an operator;
//   - a success (2xx) whose body is longer than MaxBody is transient
//     (Type "response_too_large"): it cannot be read, and for an invite
//     the invitation may exist, so the attempt is retried and settled.
//
// Any other HTTP answer comes back as a Response for the caller to
// classify, its body cut at MaxBody.
//
// Callers classify a 2xx whose body they cannot read (bad JSON, a missing
// id) as transient too, never as a success and never as permanent.
func (b *Base) Do(ctx context.Context, r Request) (*Response, error) {
	if b.limiter != nil {
		if err := b.limiter.Wait(ctx); err != nil {
			return nil, b.Transport(r.Op, fmt.Errorf("waiting for the request pace: %w", err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()

	u := *b.base
	unescaped, err := url.PathUnescape(r.Path)
	if err != nil {
		return nil, &provider.Error{Provider: b.provider, Op: r.Op, Type: "bad_request",
			Detail: "cannot build request path", Scope: provider.ScopeTarget, Kind: provider.KindBadInput}
	}
	u.Path = b.base.Path + unescaped
	u.RawPath = b.base.EscapedPath() + r.Path
	if r.Query != nil {
		u.RawQuery = r.Query.Encode()
	}
	var body io.Reader
	if r.Body != nil {
		buf, err := json.Marshal(r.Body)
		if err != nil {
			return nil, &provider.Error{Provider: b.provider, Op: r.Op, Type: "bad_request_body",
				Detail: "cannot encode request body", Scope: provider.ScopeTarget, Kind: provider.KindBadInput, Err: b.redactErr(err)}
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, &provider.Error{Provider: b.provider, Op: r.Op, Type: "bad_request",
			Detail: "cannot build request", Scope: provider.ScopeTarget, Kind: provider.KindBadInput, Err: b.redactErr(err)}
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if r.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	res, err := b.hc.Do(req)
	if err != nil {
		return nil, b.Transport(r.Op, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 && res.StatusCode <= 399 {
		return nil, b.redirect(r.Op, req.URL, res)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxBody+1))
	if err != nil {
		return nil, b.Transport(r.Op, fmt.Errorf("reading response body (HTTP %d): %w", res.StatusCode, err))
	}
	if len(data) > MaxBody {
		if res.StatusCode >= 200 && res.StatusCode <= 299 {
			return nil, b.Redact(&provider.Error{Provider: b.provider, Op: r.Op, HTTPStatus: res.StatusCode,
				Type: "response_too_large", Detail: fmt.Sprintf("the answer is longer than %d bytes; the outcome is unknown", MaxBody),
				Scope: provider.ScopeTransient, Kind: provider.KindTransient})
		}
		data = data[:MaxBody]
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

// redirect builds the error for a 3xx answer. It names the host the
// Location points to (never its path or query, which may echo a
// credential) and the URL setting to check.
func (b *Base) redirect(op string, sent *url.URL, res *http.Response) *provider.Error {
	where := "without a usable Location"
	if loc := res.Header.Get("Location"); loc != "" {
		if u, err := sent.Parse(loc); err == nil && u.Host != "" {
			if strings.EqualFold(u.Host, sent.Host) {
				where = "to another path on the same host " + Snippet([]byte(u.Host))
			} else {
				where = "to " + Snippet([]byte(u.Host))
			}
		}
	}
	setting := "the provider URL"
	if b.urlSetting != "" {
		setting += " (" + b.urlSetting + ")"
	}
	return b.Redact(&provider.Error{Provider: b.provider, Op: op, HTTPStatus: res.StatusCode, Type: "redirect",
		Detail: where + " — " + setting + " is probably wrong; redirects are never followed with credentials",
		Scope:  provider.ScopeProcess, Kind: provider.KindConfig})
}

// Transport returns the classified error for a failure with no HTTP answer.
func (b *Base) Transport(op string, err error) *provider.Error {
	typ := "transport_error"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		typ = "timeout"
	case errors.Is(err, context.Canceled):
		typ = "canceled"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		typ = "timeout"
	}
	return &provider.Error{Provider: b.provider, Op: op, Type: typ,
		Scope: provider.ScopeTransient, Kind: provider.KindTransient, Err: b.redactErr(err)}
}

// Redact finalises an error built by a client: it replaces every secret in
// its text fields and wraps Err so that its message is redacted too.
func (b *Base) Redact(e *provider.Error) *provider.Error {
	e.Type = b.RedactString(e.Type)
	e.Title = b.RedactString(e.Title)
	e.Detail = b.RedactString(e.Detail)
	e.Err = b.redactErr(e.Err)
	return e
}

// RedactString replaces every secret in s with "[REDACTED]".
func (b *Base) RedactString(s string) string {
	for _, sec := range b.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return s
}

func (b *Base) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := b.RedactString(msg); red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

// redacted hides a secret in an error's message but keeps the chain for
// errors.Is and errors.As.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// RetryAfter reads the Retry-After header (delay in seconds or an HTTP
// date), else X-RateLimit-Reset (seconds from now, or a Unix time when it
// is large), relative to now. It returns 0 when neither is usable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if d, ok := parseSeconds(v, now); ok {
			return d
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d.Round(time.Second)
			}
			return 0
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if d, ok := parseSeconds(v, now); ok {
			return d
		}
	}
	return 0
}

// maxRetryAfter caps absurd hints.
const maxRetryAfter = 30 * 24 * time.Hour

func parseSeconds(v string, now time.Time) (time.Duration, bool) {
	for _, r := range v {
		if (r < '0' || r > '9') && r != '.' {
			return 0, false
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false
	}
	if n > 1e9 { // a Unix time in seconds
		d := time.Unix(int64(n), 0).Sub(now)
		if d < 0 {
			return 0, true
		}
		return min(d.Round(time.Second), maxRetryAfter), true
	}
	if n*float64(time.Second) > float64(maxRetryAfter) {
		return maxRetryAfter, true
	}
	return time.Duration(n * float64(time.Second)), true
}

// RateLimitNote describes the X-RateLimit-Limit, -Remaining and -Reset
// headers as "limit 100, remaining 0, reset 30", or "" when absent.
func RateLimitNote(h http.Header) string {
	var parts []string
	for _, k := range []string{"Limit", "Remaining", "Reset"} {
		if v := strings.TrimSpace(h.Get("X-RateLimit-" + k)); v != "" {
			parts = append(parts, strings.ToLower(k)+" "+Snippet([]byte(v)))
		}
	}
	return strings.Join(parts, ", ")
}

// Snippet returns a short, printable excerpt of a body for error messages:
// at most 120 characters, control characters replaced by spaces.
func Snippet(body []byte) string {
	const max = 120
	s := strings.ToValidUTF8(string(bytes.TrimSpace(body)), "?")
	var out strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			out.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		out.WriteRune(r)
		n++
	}
	return out.String()
}

// StatusText is "HTTP 404 Not Found"-style text used when a body says
// nothing useful.
func StatusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "unexpected status"
}

// WithRateLimitNote appends the RateLimitNote of h to detail.
func WithRateLimitNote(detail string, h http.Header) string {
	note := RateLimitNote(h)
	switch {
	case note == "":
		return detail
	case detail == "":
		return "rate limit: " + note
	}
	return detail + " (rate limit: " + note + ")"
}
