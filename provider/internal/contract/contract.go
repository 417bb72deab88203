// Package contract validates HTTP traffic against the providers' OpenAPI
// documents in provider/testdata, for tests: Transport checks every
// request a client sends and every response it gets back.
package contract

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec names one OpenAPI document of provider/testdata.
type Spec struct {
	// File is the name in provider/testdata.
	File string
	// Undocumented are statuses the provider may answer although the
	// document does not list them (such as 429 for Partoo); their bodies
	// are not validated.
	Undocumented []int
}

// The documents of each provider.
var (
	Unipile = []Spec{
		{File: "unipile-users-invite.openapi.json"},
		{File: "unipile-users-extra.openapi.yaml"},
		{File: "unipile-accounts.openapi.yaml"},
	}
	Partoo  = []Spec{{File: "partoo-user-invite.openapi.yaml", Undocumented: []int{400, 429, 500, 502, 503, 504}}}
	Altegio = []Spec{{File: "altegio-user-invite.openapi.yaml", Undocumented: []int{400, 429, 500, 502, 503, 504}}}
)

// testdata is provider/testdata, found from this file's location.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

type doc struct {
	spec   Spec
	t      *openapi3.T
	router routers.Router
	host   string
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*doc{}
)

// load reads, validates and routes one document (once per test binary).
func load(tb testing.TB, s Spec) *doc {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if d := cache[s.File]; d != nil {
		return d
	}
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromFile(filepath.Join(testdata(), s.File))
	if err != nil {
		tb.Fatalf("contract: loading %s: %v", s.File, err)
	}
	// Unipile's export carries a readme.com "_id" at its root.
	if err := t.Validate(context.Background(), openapi3.AllowExtraSiblingFields("_id")); err != nil {
		tb.Fatalf("contract: %s is not a valid OpenAPI document: %v", s.File, err)
	}
	// Unipile's "emailLike" format is theirs: accept what contains an @.
	t.SetStringFormatValidator("emailLike", openapi3.NewCallbackValidator(func(v string) error {
		if !strings.Contains(v, "@") {
			return fmt.Errorf("not an email address")
		}
		return nil
	}))
	// Route on the path only: the first server's base path, any host.
	base := ""
	if len(t.Servers) > 0 {
		u := t.Servers[0].URL
		for name, v := range t.Servers[0].Variables {
			u = strings.ReplaceAll(u, "{"+name+"}", v.Default)
		}
		if pu, err := url.Parse(u); err == nil {
			base = strings.TrimRight(pu.Path, "/")
		}
	}
	const host = "contract.test"
	t.Servers = openapi3.Servers{{URL: "http://" + host + base}}
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		tb.Fatalf("contract: routing %s: %v", s.File, err)
	}
	d := &doc{spec: s, t: t, router: r, host: host}
	cache[s.File] = d
	return d
}

// formats turns on the checks of string formats, with the document's own
// (Unipile's emailLike) besides the standard ones (date-time…).
func (d *doc) formats() []openapi3.SchemaValidationOption {
	return append(d.t.GetSchemaValidationOptions(), openapi3.EnableFormatValidation())
}

// Transport is an http.RoundTripper that validates every request and
// response passing through it against a provider's documents, reporting
// mismatches with tb.Errorf. It is safe for concurrent use.
type Transport struct {
	tb   testing.TB
	next http.RoundTripper
	docs []*doc

	mu    sync.Mutex
	count int
}

// NewTransport wraps next (nil: http.DefaultTransport) with validation
// against specs.
func NewTransport(tb testing.TB, next http.RoundTripper, specs []Spec) *Transport {
	tb.Helper()
	if next == nil {
		next = http.DefaultTransport
	}
	t := &Transport{tb: tb, next: next}
	for _, s := range specs {
		t.docs = append(t.docs, load(tb, s))
	}
	return t
}

// Validated returns how many request/response pairs were validated.
func (t *Transport) Validated() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// RoundTrip validates req, sends it, and validates the response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	probe := req.Clone(req.Context())
	probe.URL.Scheme, probe.URL.Host, probe.Host = "http", "contract.test", "contract.test"
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))

	var (
		d      *doc
		route  *routers.Route
		params map[string]string
	)
	for _, cand := range t.docs {
		r, p, err := cand.router.FindRoute(probe)
		if err == nil {
			d, route, params = cand, r, p
			break
		}
	}
	if d == nil {
		t.tb.Errorf("contract: %s %s matches no operation of %s", req.Method, req.URL.Path, t.files())
		return t.next.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: authenticate,
			SchemaValidationOptions: d.formats()},
	}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		t.tb.Errorf("contract: request %s %s does not follow %s: %v", req.Method, req.URL.Path, d.spec.File, err)
	}
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if !slices.Contains(d.spec.Undocumented, res.StatusCode) {
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
			Body: io.NopCloser(bytes.NewReader(resBody)),
			Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true,
				SchemaValidationOptions: d.formats()},
		}
		if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
			t.tb.Errorf("contract: response %d to %s %s does not follow %s: %v\nbody: %s",
				res.StatusCode, req.Method, req.URL.Path, d.spec.File, err, resBody)
		}
	}
	t.mu.Lock()
	t.count++
	t.mu.Unlock()
	return res, nil
}

func (t *Transport) files() string {
	var names []string
	for _, d := range t.docs {
		names = append(names, d.spec.File)
	}
	return strings.Join(names, ", ")
}

// authenticate checks that the credentials a security scheme asks for are
// present (their value is the provider's business).
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	h := in.RequestValidationInput.Request.Header
	switch {
	case s.Type == "apiKey" && s.In == "header":
		if h.Get(s.Name) == "" {
			return fmt.Errorf("header %s is missing", s.Name)
		}
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		if !strings.HasPrefix(h.Get("Authorization"), "Bearer ") {
			return fmt.Errorf("no Bearer Authorization header")
		}
	}
	return nil
}
