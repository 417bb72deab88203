package simulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// partooErrors are the answers of the Partoo error types a scenario or
// an account may ask for: status, key of the errors object, message.
var partooErrors = map[string]struct {
	status   int
	key, msg string
}{
	"bad_request":         {http.StatusBadRequest, "json", "Invalid request"},
	"unauthorized":        {http.StatusUnauthorized, "authentication", "User not authenticated"},
	"forbidden":           {http.StatusForbidden, "authorization", "Operation not allowed"},
	"not_found":           {http.StatusNotFound, "json", "Resource not found"},
	"too_soon":            {http.StatusTooManyRequests, "json", partooTooSoon},
	"too_many_requests":   {http.StatusTooManyRequests, "json", "Too many requests"},
	"server_error":        {http.StatusInternalServerError, "json", "Internal server error"},
	"service_unavailable": {http.StatusServiceUnavailable, "json", "Service unavailable"},
}

// partooTooSoon is the simulator's answer to Partoo's five-minute rule.
// Assumption: Partoo's spec states the rule but not its answer; we answer
// 429 with a Retry-After (seconds left) and this message in Partoo's usual
// {"errors": {"json": …}} shape.
const partooTooSoon = "The invitation email can only be sent once every 5 minutes"

func partooError(typ string, status int, retryAfter time.Duration) reply {
	e, ok := partooErrors[typ]
	if !ok {
		e = partooErrors["bad_request"]
		e.msg = typ
	}
	if status != 0 {
		e.status = status
	}
	rp := reply{status: e.status, header: http.Header{},
		body: map[string]any{"errors": map[string]any{e.key: e.msg}}}
	if e.status == http.StatusTooManyRequests && retryAfter <= 0 {
		retryAfter = time.Minute
	}
	if retryAfter > 0 {
		rp.header.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	return rp
}

// servePartoo answers POST /v2/user/{user_id}/invite. The "account" is the
// API key. Users whose id starts with "unknown-" do not exist (404); with
// "forbidden-" the key may not write them (403).
func (s *Simulator) servePartoo(w http.ResponseWriter, r *http.Request, rest string) {
	rawID, ok := strings.CutSuffix(rest, "/invite")
	if !ok || rawID == "" || strings.Contains(rawID, "/") {
		partooError("not_found", 0, 0).write(w)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": map[string]any{"json": "Method not allowed"}})
		return
	}
	userID, err := url.PathUnescape(rawID)
	if err != nil {
		userID = rawID
	}
	if !s.delay(r) {
		return
	}
	key := r.Header.Get("x-APIKey")
	rec := Request{Provider: provider.Partoo, Op: "invite", Recipient: userID}
	s.mu.Lock()
	rec.Time = s.now()
	rp, acc, outcome := s.partooInviteLocked(key, userID, rec.Time)
	if s.partooKeys[key] {
		rec.Account = key
	}
	rec.Status, rec.Outcome = rp.status, outcome
	s.add(rec, acc)
	s.mu.Unlock()
	rp.write(w)
}

func (s *Simulator) partooInviteLocked(key, userID string, now time.Time) (reply, *account, string) {
	if !s.partooKeys[key] {
		return partooError("unauthorized", 0, 0), nil, "unauthorized"
	}
	acc := s.accountFor(provider.Partoo, key)
	if acc == nil {
		return partooError("unauthorized", 0, 0), nil, "unauthorized"
	}
	if acc.cfg.Error != "" {
		return partooError(acc.cfg.Error, 0, 0), acc, acc.cfg.Error
	}
	if d, ok := acc.burst(now); !ok {
		return partooError("too_many_requests", 0, d), acc, "too_many_requests"
	}
	if _, ok := s.randomFailure(); ok {
		return partooError("service_unavailable", 0, 0), acc, "service_unavailable"
	}
	if sc, ok := s.match(provider.Partoo, "invite", key, userID); ok {
		return partooError(sc.Error, sc.Status, sc.RetryAfter), acc, sc.Error
	}
	switch {
	case strings.HasPrefix(userID, "unknown-"):
		return partooError("not_found", 0, 0), acc, "not_found"
	case strings.HasPrefix(userID, "forbidden-"):
		return partooError("forbidden", 0, 0), acc, "forbidden"
	}
	if last, ok := s.partooLast[userID]; ok && now.Before(last.Add(PartooResendInterval)) {
		return partooError("too_soon", 0, last.Add(PartooResendInterval).Sub(now)), acc, "too_soon"
	}
	limits := acc.limits(s.cfg.DefaultLimits)
	if _, ok := full(acc.sent, now, limits); ok {
		return partooError("too_many_requests", 0, 0), acc, "limit_exceeded"
	}
	acc.sent = insertSorted(acc.sent, now)
	s.partooLast[userID] = now
	return reply{status: http.StatusOK, body: map[string]any{"status": "success"}}, acc, OutcomeSent
}
