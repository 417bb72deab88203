// Package inbound receives the webhooks providers post to outreach:
// Unipile's new_relation (an invitation accepted) and account_status (an
// account disconnected or running again). See docs/acceptances.md.
//
// Unipile signs nothing: a webhook is authenticated by a custom header
// given when it is created (POST /api/v1/webhooks, "headers": [{"key",
// "value"}]). The handler compares that header with the secret the user
// configured, in constant time, and refuses, and counts, every request
// that is not an authenticated, well-formed JSON POST of bounded size.
// Processing is idempotent (a repeated webhook changes nothing), and
// polling the relations list remains the reconciliation for lost ones.
package inbound

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// DefaultHeader is the header that carries the secret when
// UnipileConfig.Header is empty.
const DefaultHeader = "Unipile-Auth"

// DefaultMaxBody is the largest body accepted when UnipileConfig.MaxBody
// is 0 (Unipile's webhook bodies are well under a kilobyte).
const DefaultMaxBody = 64 << 10

// Store is what the handler records into (a *store.Store).
type Store interface {
	RecordAcceptances(ctx context.Context, p provider.Name, providerAccountID string, acc []store.Acceptance, via store.AcceptedVia, now time.Time) ([]store.Accepted, error)
	RecordAccountStatus(ctx context.Context, p provider.Name, providerAccountID string, st provider.AccountState, now time.Time, pauseFor time.Duration) ([]store.HealthChange, error)
}

// Metrics counts the webhooks received, by source (users,
// account_status, unknown) and result (accepted, duplicate, ignored,
// method, unauthenticated, too_large, malformed, error); nil means none.
type Metrics interface {
	Webhook(source, result string)
}

// UnipileConfig configures the Unipile webhook handler.
type UnipileConfig struct {
	Store Store
	// Secret is the value the header must carry; required (a handler
	// without a secret would accept anyone's webhooks).
	Secret string
	// Header names the header; "" means DefaultHeader.
	Header string
	// MaxBody bounds a body; 0 means DefaultMaxBody.
	MaxBody int64
	// HealthPause is how long an account reported not running is paused
	// (it resumes earlier when reported running); 0 means 1 hour.
	HealthPause time.Duration
	Metrics     Metrics
	Logger      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Unipile is the http.Handler of Unipile's webhooks.
type Unipile struct {
	cfg    UnipileConfig
	secret [32]byte
}

// NewUnipile returns the handler; it refuses an empty secret.
func NewUnipile(cfg UnipileConfig) (*Unipile, error) {
	if cfg.Store == nil {
		return nil, errors.New("inbound: Store is required")
	}
	if strings.TrimSpace(cfg.Secret) == "" {
		return nil, errors.New("inbound: a webhook secret is required")
	}
	if cfg.Header == "" {
		cfg.Header = DefaultHeader
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.HealthPause <= 0 {
		cfg.HealthPause = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Unipile{cfg: cfg, secret: sha256.Sum256([]byte(cfg.Secret))}, nil
}

// webhookBody holds both of Unipile's shapes: new_relation's flat fields
// and account_status's {"AccountStatus": {...}}.
type webhookBody struct {
	Event                string `json:"event"`
	AccountID            string `json:"account_id"`
	UserProviderID       string `json:"user_provider_id"`
	UserPublicIdentifier string `json:"user_public_identifier"`
	AccountStatus        *struct {
		AccountID string `json:"account_id"`
		Message   string `json:"message"`
	} `json:"AccountStatus"`
}

// statusRunning says, for each account status message, whether the
// account runs; messages not listed are ignored.
var statusRunning = map[string]bool{
	"OK": true, "RECONNECTED": true, "CREATION_SUCCESS": true, "SYNC_SUCCESS": true,
	"CREDENTIALS": false, "ERROR": false, "STOPPED": false, "PERMISSIONS": false, "CONNECTING": false, "DELETED": false,
}

func (h *Unipile) count(source, result string) {
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.Webhook(source, result)
	}
}

func (h *Unipile) refuse(w http.ResponseWriter, r *http.Request, status int, result, msg string) {
	h.count("unknown", result)
	h.cfg.Logger.WarnContext(r.Context(), "webhook refused", "result", result, "remote", r.RemoteAddr)
	http.Error(w, msg, status)
}

// ServeHTTP authenticates, reads and records one webhook. It answers 200
// once recorded (or ignored), 503 when the database failed (Unipile
// retries), and refuses with 405, 401, 413 or 400 what is not an
// authenticated JSON POST of a known shape, changing nothing.
func (h *Unipile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, "method", "POST only")
		return
	}
	got := sha256.Sum256([]byte(r.Header.Get(h.cfg.Header)))
	if subtle.ConstantTimeCompare(got[:], h.secret[:]) != 1 {
		h.refuse(w, r, http.StatusUnauthorized, "unauthenticated", "unauthenticated")
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, "too_large", "body too large")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		h.refuse(w, r, http.StatusRequestEntityTooLarge, "too_large", "body too large")
		return
	case err != nil:
		h.refuse(w, r, http.StatusBadRequest, "malformed", "unreadable body")
		return
	}
	var b webhookBody
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t := strings.TrimSpace(string(raw)); !strings.HasPrefix(t, "{") {
		h.refuse(w, r, http.StatusBadRequest, "malformed", "not a JSON object")
		return
	}
	if err := dec.Decode(&b); err != nil || dec.More() {
		h.refuse(w, r, http.StatusBadRequest, "malformed", "not a JSON object")
		return
	}
	now := h.cfg.Now()
	ctx := r.Context()
	switch {
	case b.AccountStatus != nil:
		h.accountStatus(w, r, b, now)
	case b.Event == "new_relation":
		if b.AccountID == "" || b.UserProviderID == "" && b.UserPublicIdentifier == "" || len(b.AccountID) > 200 ||
			len(b.UserProviderID) > 200 || len(b.UserPublicIdentifier) > 200 {
			h.refuse(w, r, http.StatusBadRequest, "malformed", "new_relation without account_id and user")
			return
		}
		got, err := h.cfg.Store.RecordAcceptances(ctx, provider.Unipile, b.AccountID,
			[]store.Acceptance{{ProviderID: b.UserProviderID, PublicID: b.UserPublicIdentifier}}, store.AcceptedByWebhook, now)
		if err != nil {
			h.count("users", "error")
			h.cfg.Logger.ErrorContext(ctx, "recording a new relation failed; Unipile retries it", "error", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		result := "duplicate" // or a relation outreach did not invite
		if len(got) > 0 {
			result = "accepted"
		}
		h.count("users", result)
		w.WriteHeader(http.StatusOK)
	default:
		h.count("unknown", "ignored")
		w.WriteHeader(http.StatusOK)
	}
}

func (h *Unipile) accountStatus(w http.ResponseWriter, r *http.Request, b webhookBody, now time.Time) {
	st := b.AccountStatus
	if st.AccountID == "" || st.Message == "" || len(st.AccountID) > 200 {
		h.refuse(w, r, http.StatusBadRequest, "malformed", "AccountStatus without account_id and message")
		return
	}
	msg := strings.ToUpper(strings.TrimSpace(st.Message))
	running, known := statusRunning[msg]
	if !known {
		h.count("account_status", "ignored")
		w.WriteHeader(http.StatusOK)
		return
	}
	changes, err := h.cfg.Store.RecordAccountStatus(r.Context(), provider.Unipile, st.AccountID,
		provider.AccountState{Status: msg, Running: running}, now, h.cfg.HealthPause)
	if err != nil {
		h.count("account_status", "error")
		h.cfg.Logger.ErrorContext(r.Context(), "recording an account status failed; Unipile retries it", "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	for _, c := range changes {
		h.cfg.Logger.InfoContext(r.Context(), "account status from Unipile", "account", c.Name, "status", msg,
			"paused", c.Paused, "resumed", c.Resumed)
	}
	h.count("account_status", "accepted")
	w.WriteHeader(http.StatusOK)
}
