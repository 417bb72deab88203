// Package dashboard serves the asynq dashboard (asynqmon, embedded) for
// outreach's queues, behind optional basic auth, optionally read-only, and
// with payloads shown as task type and ids only. Requests that change
// something are refused when they come from another site (cross-site
// request forgery).
package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// Options configures the dashboard.
type Options struct {
	// RedisConnOpt is the Redis that holds the queues. Required.
	RedisConnOpt asynq.RedisConnOpt
	// RootPath is the URL path the dashboard is served under; "" means "/".
	RootPath string
	// ReadOnly refuses every request that would change the queues (only
	// GET and HEAD are allowed), in the UI and the API.
	ReadOnly bool
	// User and Password, when both set, require HTTP basic auth.
	User, Password string
	// TrustedOrigins are other origins ("https://ops.example.com") whose
	// pages may change the queues. By default only the dashboard's own
	// host may: a POST or DELETE whose Sec-Fetch-Site says cross-site or
	// same-site, or whose Origin (else Referer) names another host, is
	// refused with 403.
	TrustedOrigins []string
	// Console, if set, is served under ConsolePath (such as "/console/")
	// behind the same middleware as the dashboard: auth, read-only and
	// the other request checks.
	Console     http.Handler
	ConsolePath string
	// TargetLabel, if set, names a task's target in the task view (such as
	// its account and campaign), after its type and id. It must never
	// return secrets; "" adds nothing.
	TargetLabel func(targetID int64) string
}

// Dashboard is the dashboard's http.Handler. Close releases its Redis
// connections.
type Dashboard struct {
	mon     *asynqmon.HTTPHandler
	handler http.Handler
}

// New returns the dashboard. It fails if RedisConnOpt is missing, if only
// one of User and Password is set, or if RootPath does not start with "/".
func New(o Options) (*Dashboard, error) {
	if o.RedisConnOpt == nil {
		return nil, errors.New("dashboard: RedisConnOpt is required")
	}
	if (o.User == "") != (o.Password == "") {
		return nil, errors.New("dashboard: basic auth needs both a user and a password")
	}
	if o.RootPath != "" && !strings.HasPrefix(o.RootPath, "/") {
		return nil, fmt.Errorf("dashboard: root path %q must start with /", o.RootPath)
	}
	mon := asynqmon.New(asynqmon.Options{
		RootPath:         o.RootPath,
		RedisConnOpt:     o.RedisConnOpt,
		ReadOnly:         o.ReadOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(payloadFormatter(o.TargetLabel)),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
	})
	var h http.Handler = mon
	if o.Console != nil {
		mux := http.NewServeMux()
		mux.Handle(strings.TrimSuffix(o.ConsolePath, "/")+"/", o.Console)
		mux.Handle("/", mon)
		h = mux
	}
	h, err := sameOrigin(h, o.TrustedOrigins)
	if err != nil {
		return nil, err
	}
	if o.ReadOnly {
		h = readOnly(h)
	}
	if o.User != "" {
		h = basicAuth(h, o.User, o.Password)
	}
	return &Dashboard{mon: mon, handler: securityHeaders(h)}, nil
}

// ServeHTTP serves the dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.handler.ServeHTTP(w, r) }

// Close closes the dashboard's Redis connections.
func (d *Dashboard) Close() error { return d.mon.Close() }

// FormatPayload renders a task's payload for the UI: its type and the
// target id, nothing else, whatever the payload holds. Payloads hold only
// ids by design (worker.Payload); this keeps it so should one ever carry
// more.
func FormatPayload(taskType string, payload []byte) string {
	var p struct {
		TargetID json.Number `json:"target_id"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.TargetID == "" {
		return taskType + " (payload not shown)"
	}
	id, err := strconv.ParseInt(string(p.TargetID), 10, 64)
	if err != nil {
		return taskType + " (payload not shown)"
	}
	return fmt.Sprintf("%s target_id=%d", taskType, id)
}

// payloadFormatter is FormatPayload, followed by the target's label when
// label is set and names it.
func payloadFormatter(label func(int64) string) func(string, []byte) string {
	if label == nil {
		return FormatPayload
	}
	return func(taskType string, payload []byte) string {
		s := FormatPayload(taskType, payload)
		var p struct {
			TargetID json.Number `json:"target_id"`
		}
		if json.Unmarshal(payload, &p) != nil {
			return s
		}
		id, err := strconv.ParseInt(string(p.TargetID), 10, 64)
		if err != nil {
			return s
		}
		if l := label(id); l != "" {
			s += " (" + l + ")"
		}
		return s
	}
}

// formatResult hides task results: outreach writes none, and anything
// there is not for display.
func formatResult(taskType string, result []byte) string {
	if len(result) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d bytes, not shown)", len(result))
}

// readOnly refuses anything but GET and HEAD, in addition to asynqmon's
// own read-only mode (which covers only its API).
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// crossSiteRefused is the answer to a refused cross-site request.
const crossSiteRefused = "cross-site request refused: the dashboard takes changes only from its own pages " +
	"(Origin, Referer or Sec-Fetch-Site named another site)"

// sameOrigin refuses state-changing requests (all but GET, HEAD and
// OPTIONS) from other sites, with net/http's CrossOriginProtection
// (Sec-Fetch-Site, else Origin against Host), and, when a request carries
// neither header, its Referer against Host. Requests with none of the
// three (curl, scripts) are not from a browser and pass.
func sameOrigin(h http.Handler, trusted []string) (http.Handler, error) {
	cop := http.NewCrossOriginProtection()
	trustedHosts := map[string]bool{}
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("dashboard: trusted origin: %w", err)
		}
		if u, err := url.Parse(o); err == nil {
			trustedHosts[u.Scheme+"://"+u.Host] = true
		}
	}
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, crossSiteRefused, http.StatusForbidden)
	})
	cop.SetDenyHandler(deny)
	protected := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if ref := r.Referer(); ref != "" && r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
				u, err := url.Parse(ref)
				if err != nil || (u.Host != r.Host && !trustedHosts[u.Scheme+"://"+u.Host]) {
					deny(w, r)
					return
				}
			}
		}
		protected.ServeHTTP(w, r)
	}), nil
}

// basicAuth requires the user and password, compared in constant time
// (over hashes, so the lengths do not leak either).
func basicAuth(h http.Handler, user, password string) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="outreach dashboard", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
