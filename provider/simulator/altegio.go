package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// altegioErrors are the answers of the Altegio error types a scenario or
// an account may ask for.
var altegioErrors = map[string]struct {
	status int
	msg    string
}{
	"unauthorized":        {http.StatusUnauthorized, "Authentication needed."},
	"forbidden":           {http.StatusForbidden, "Access denied."},
	"not_found":           {http.StatusNotFound, ""},
	"validation_error":    {http.StatusUnprocessableEntity, "An error has occurred."},
	"already_invited":     {http.StatusUnprocessableEntity, "An error has occurred."},
	"too_many_requests":   {http.StatusTooManyRequests, "Too many requests."},
	"server_error":        {http.StatusInternalServerError, "Server error."},
	"service_unavailable": {http.StatusServiceUnavailable, "Service unavailable."},
}

// altegioAlreadyInvited is the simulator's validation message for a person
// invited to the location already. Assumption: the reference lists no
// validation messages.
const altegioAlreadyInvited = "The user has already been invited"

func altegioError(typ string, status int, retryAfter time.Duration, errs ...string) reply {
	e, ok := altegioErrors[typ]
	if !ok {
		e = altegioErrors["validation_error"]
		errs = append(errs, typ)
	}
	if status != 0 {
		e.status = status
	}
	var meta any = map[string]any{"message": e.msg}
	switch {
	case e.status == http.StatusNotFound:
		meta = []any{}
	case e.status == http.StatusUnprocessableEntity:
		if typ == "already_invited" && len(errs) == 0 {
			errs = []string{altegioAlreadyInvited}
		}
		if errs == nil {
			errs = []string{}
		}
		meta = map[string]any{"message": e.msg, "errors": errs}
	}
	rp := reply{status: e.status, header: http.Header{},
		body: map[string]any{"success": false, "data": nil, "meta": meta}}
	if e.status == http.StatusTooManyRequests && retryAfter <= 0 {
		retryAfter = time.Minute
	}
	if retryAfter > 0 {
		rp.header.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	return rp
}

var (
	altegioEmail = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	altegioPhone = regexp.MustCompile(`^\+?[0-9 ()-]{7,20}$`)
	altegioRoles = []string{"worker", "administrator", "accountant", "manager", "owner"}
)

// altegioAuth checks "Bearer <partner token>, User <user token>".
func (s *Simulator) altegioAuth(h string) bool {
	partner, user, ok := strings.Cut(h, ",")
	if !ok {
		return false
	}
	p, ok1 := strings.CutPrefix(strings.TrimSpace(partner), "Bearer ")
	u, ok2 := strings.CutPrefix(strings.TrimSpace(user), "User ")
	return ok1 && ok2 && s.altegioPartn[strings.TrimSpace(p)] && s.altegioUser[strings.TrimSpace(u)]
}

type altegioInvite struct {
	Name            *string          `json:"name"`
	Search          *string          `json:"search"`
	Position        *string          `json:"position"`
	UserRole        *string          `json:"user_role"`
	UserPermissions []map[string]any `json:"user_permissions"`
	StaffID         *float64         `json:"staff_id"`
}

// serveAltegio answers POST /api/v1/user/invite/{location_id}. The
// "account" is the location. Each element of invites is one invitation;
// the request succeeds (202) only if all of them can be sent.
func (s *Simulator) serveAltegio(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"success": false, "data": nil, "meta": map[string]any{"message": "Method not allowed."}})
		return
	}
	if !s.delay(r) {
		return
	}
	var body struct {
		Invites []altegioInvite `json:"invites"`
	}
	decodeErr := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&body)
	loc, locErr := strconv.ParseInt(rest, 10, 64)

	s.mu.Lock()
	now := s.now()
	rp, acc, outcome, sent := s.altegioInviteLocked(r, rest, loc, locErr, decodeErr, body.Invites, now)
	account := ""
	if acc != nil {
		account = rest
	}
	if len(sent) > 0 {
		for _, search := range sent {
			s.add(Request{Time: now, Provider: provider.Altegio, Op: "invite", Account: account,
				Recipient: search, Status: rp.status, Outcome: OutcomeSent}, acc)
		}
	} else {
		recipient := ""
		if len(body.Invites) > 0 {
			recipient = deref(body.Invites[0].Search)
		}
		s.add(Request{Time: now, Provider: provider.Altegio, Op: "invite", Account: account,
			Recipient: recipient, Status: rp.status, Outcome: outcome}, acc)
	}
	s.mu.Unlock()
	rp.write(w)
}

func (s *Simulator) altegioInviteLocked(r *http.Request, rawLoc string, loc int64, locErr, decodeErr error, invites []altegioInvite, now time.Time) (reply, *account, string, []string) {
	if !s.altegioAuth(r.Header.Get("Authorization")) {
		return altegioError("unauthorized", 0, 0), nil, "unauthorized", nil
	}
	if locErr != nil || loc <= 0 {
		return altegioError("not_found", 0, 0), nil, "not_found", nil
	}
	acc := s.accountFor(provider.Altegio, rawLoc)
	if acc == nil {
		return altegioError("not_found", 0, 0), nil, "not_found", nil
	}
	if acc.cfg.Error != "" {
		return altegioError(acc.cfg.Error, 0, 0), acc, acc.cfg.Error, nil
	}
	if d, ok := acc.burst(now); !ok {
		return altegioError("too_many_requests", 0, d), acc, "too_many_requests", nil
	}
	if !strings.HasPrefix(r.Header.Get("Accept"), "application/vnd.api.v2+json") {
		return altegioError("validation_error", 0, 0, "Accept: must be application/vnd.api.v2+json"), acc, "validation_error", nil
	}
	if decodeErr != nil || len(invites) == 0 {
		return altegioError("validation_error", 0, 0, "invites: a non-empty list of invites is required"), acc, "validation_error", nil
	}
	var errs []string
	for i, in := range invites {
		search := strings.TrimSpace(deref(in.Search))
		if !altegioEmail.MatchString(search) && !altegioPhone.MatchString(search) {
			errs = append(errs, fmt.Sprintf("invites.%d.search: must be an email address or a phone number", i))
		}
		if in.UserRole != nil && !slices.Contains(altegioRoles, *in.UserRole) {
			errs = append(errs, fmt.Sprintf("invites.%d.user_role: must be one of %s", i, strings.Join(altegioRoles, ", ")))
		}
		for j, p := range in.UserPermissions {
			if slug, _ := p["slug"].(string); slug == "" {
				errs = append(errs, fmt.Sprintf("invites.%d.user_permissions.%d.slug: is required", i, j))
			}
		}
	}
	if len(errs) > 0 {
		return altegioError("validation_error", 0, 0, errs...), acc, "validation_error", nil
	}
	if _, ok := s.randomFailure(); ok {
		return altegioError("service_unavailable", 0, 0), acc, "service_unavailable", nil
	}
	searches := make([]string, len(invites))
	for i, in := range invites {
		searches[i] = strings.TrimSpace(deref(in.Search))
	}
	if sc, ok := s.match(provider.Altegio, "invite", rawLoc, searches...); ok {
		return altegioError(sc.Error, sc.Status, sc.RetryAfter), acc, sc.Error, nil
	}
	for _, search := range searches {
		if acc.invitees[search] > 0 {
			return altegioError("already_invited", 0, 0), acc, "already_invited", nil
		}
	}
	for _, w := range acc.limits(s.cfg.DefaultLimits) {
		if w.Per > 0 && countIn(acc.sent, now, w.Per)+len(searches) > w.Max {
			return altegioError("too_many_requests", 0, 0), acc, "limit_exceeded", nil
		}
	}
	for range searches {
		acc.sent = insertSorted(acc.sent, now)
	}
	return reply{status: http.StatusAccepted, body: map[string]any{"success": true, "data": nil, "meta": map[string]any{"message": "Saved"}}}, acc, OutcomeSent, searches
}
