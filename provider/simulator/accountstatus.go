package simulator

import (
	"net/http"
	"net/url"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// Account statuses, as Unipile reports them in an account's sources
// (GET /api/v1/accounts/{id}) and in the account_status webhook.
const (
	StatusOK          = "OK"
	StatusCredentials = "CREDENTIALS" // disconnected: the user must reconnect
	StatusError       = "ERROR"
	StatusStopped     = "STOPPED"
	StatusPermissions = "PERMISSIONS"
	StatusConnecting  = "CONNECTING"
)

// disconnectedError is the error type a LinkedIn call of an account in
// each status answers.
var disconnectedError = map[string]string{
	StatusCredentials: "disconnected_account",
	StatusPermissions: "insufficient_permissions",
	StatusError:       "disconnected_account",
	StatusStopped:     "disconnected_account",
	StatusConnecting:  "no_client_session",
}

// SetAccountStatus sets a Unipile account's status (StatusOK,
// StatusCredentials, ...): the account endpoint reports it, the
// account_status webhook announces it (see DeliverWebhooks), and while
// it is not OK the account's LinkedIn calls answer as Unipile does
// (401 disconnected_account, 503 no_client_session while connecting).
func (s *Simulator) SetAccountStatus(accountID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept.init()
	if status == "" {
		status = StatusOK
	}
	prev := s.accountStatusLocked(accountID)
	s.accept.status[accountID] = status
	acc := s.accountFor(provider.Unipile, accountID)
	if acc != nil {
		// Only an error the status set is cleared by another status.
		if typ, ok := disconnectedError[status]; ok && (acc.cfg.Error == "" || isStatusError(acc.cfg.Error)) {
			acc.cfg.Error = typ
		} else if status == StatusOK && isStatusError(acc.cfg.Error) {
			acc.cfg.Error = ""
		}
	}
	if prev != status {
		msg := status
		if status == StatusOK && prev != StatusOK {
			msg = "RECONNECTED"
		}
		s.accept.outbox = append(s.accept.outbox, WebhookEvent{Kind: WebhookAccountStatus, Account: accountID, Status: msg})
	}
}

func isStatusError(typ string) bool {
	for _, t := range disconnectedError {
		if t == typ {
			return true
		}
	}
	return false
}

// AccountStatus is a Unipile account's status (StatusOK unless set).
func (s *Simulator) AccountStatus(accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accountStatusLocked(accountID)
}

func (s *Simulator) accountStatusLocked(accountID string) string {
	if st, ok := s.accept.status[accountID]; ok {
		return st
	}
	return StatusOK
}

// serveAccount answers GET /api/v1/accounts/{id} with the LINKEDIN variant
// of the Node SDK's AccountApiResponse: the status is in sources[].status.
// It answers for any account the simulator accepts (Strict: registered
// ones), whatever its status, and makes no LinkedIn call.
func (s *Simulator) serveAccount(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"title": "Method Not Allowed", "status": 405})
		return
	}
	id, err := url.PathUnescape(rest)
	if err != nil || id == "" {
		unipileError("resource_not_found", "No such route.", 0, 0).write(w)
		return
	}
	rec := Request{Provider: provider.Unipile, Op: "account", Account: id}
	s.mu.Lock()
	rec.Time = s.now()
	rp := s.accountReplyLocked(r, id)
	rec.Status = rp.status
	rec.Outcome = "ok"
	if rp.status != http.StatusOK {
		rec.Outcome = "error"
	}
	s.add(rec, nil)
	s.mu.Unlock()
	rp.write(w)
}

func (s *Simulator) accountReplyLocked(r *http.Request, id string) reply {
	key := r.Header.Get("X-API-KEY")
	switch {
	case key == "":
		return unipileError("missing_credentials", "", 0, 0)
	case !s.unipileKeys[key]:
		return unipileError("invalid_credentials", "", 0, 0)
	}
	if s.accountFor(provider.Unipile, id) == nil {
		return unipileError("resource_not_found", "Account not found.", 0, 0)
	}
	return reply{status: http.StatusOK, body: map[string]any{
		"object": "Account", "type": "LINKEDIN", "id": id, "name": "Simulated " + id,
		"created_at": time.Unix(0, 0).UTC().Format("2006-01-02T15:04:05.000Z"),
		"groups":     []string{},
		"sources":    []map[string]any{{"id": id + "_MESSAGING", "status": s.accountStatusLocked(id)}},
		"connection_params": map[string]any{"im": map[string]any{
			"id": "sim-" + id, "username": "Simulated " + id, "premiumContractId": nil}},
	}}
}
