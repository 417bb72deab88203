package simulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outreach-dev/outreach/provider"
)

// unipileStatus is the HTTP status of every error type of Unipile's spec.
var unipileStatus = unipileStatuses()

func unipileStatuses() map[string]int {
	out := map[string]int{}
	for status, types := range map[int][]string{
		400: {"invalid_parameters", "malformed_request", "content_too_large", "invalid_url", "too_many_characters", "unescaped_characters", "missing_parameters"},
		401: {"missing_credentials", "multiple_sessions", "invalid_checkpoint_solution", "checkpoint_error", "invalid_credentials", "expired_credentials", "insufficient_privileges", "disconnected_account", "disconnected_feature", "invalid_credentials_but_valid_account_imap", "expired_link", "wrong_account", "captcha_not_supported"},
		403: {"account_restricted", "account_mismatch", "insufficient_permissions", "session_mismatch", "feature_not_subscribed", "subscription_required", "unknown_authentication_context", "action_required", "resource_access_restricted"},
		404: {"resource_not_found", "invalid_resource_identifier"},
		422: {"invalid_account", "invalid_recipient", "no_connection_with_recipient", "blocked_recipient", "user_unreachable", "unprocessable_entity", "action_already_performed", "invalid_message", "invalid_post", "not_allowed_inmail", "insufficient_credits", "cannot_resend_yet", "cannot_resend_within_24hrs", "limit_exceeded", "already_invited_recently", "cannot_invite_attendee", "parent_mail_not_found", "invalid_reply_subject", "invalid_headers", "send_as_denied", "invalid_folder", "invalid_thread", "limit_too_high", "unauthorized", "sender_rejected", "recipient_rejected", "ip_rejected_by_server", "provider_unreachable", "account_configuration_error", "cant_send_message", "realtime_client_not_initialized"},
		429: {"too_many_requests"},
		500: {"unexpected_error", "provider_error", "authentication_intent_error"},
		501: {"feature_not_implemented"},
		503: {"no_client_session", "no_channel", "no_handler", "network_down", "service_unavailable"},
		504: {"request_timeout"},
	} {
		for _, t := range types {
			out[t] = status
		}
	}
	return out
}

// UnipileErrorTypes returns every Unipile error type (without "errors/")
// the simulator can answer, with its HTTP status.
func UnipileErrorTypes() map[string]int {
	out := make(map[string]int, len(unipileStatus))
	for k, v := range unipileStatus {
		out[k] = v
	}
	return out
}

// unipileDetails are the details of the answers the simulator makes itself.
var unipileDetails = map[string]string{
	"missing_credentials":      "The X-API-KEY header is missing.",
	"invalid_credentials":      "The provided API key is not valid.",
	"too_many_characters":      "The provided content exceeds the character limit.",
	"limit_exceeded":           "The provider's limit for this action has been reached.",
	"already_invited_recently": "An invitation has already been sent to this user recently.",
	"cannot_resend_yet":        "The invitation was withdrawn recently; it cannot be sent again yet.",
	"resource_not_found":       "The requested resource were not found.",
	"too_many_requests":        "The provider cannot accept any more requests at the moment. Please try again later.",
	"action_already_performed": "This user is already a relation of the account.",
	"invalid_recipient":        "The recipient is not valid.",
}

// reply is an answer computed under the lock and written after it.
type reply struct {
	status int
	header http.Header
	body   any
}

func (rp reply) write(w http.ResponseWriter) {
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	writeJSON(w, rp.status, rp.body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// unipileError builds Unipile's error document for typ.
func unipileError(typ, detail string, status int, retryAfter time.Duration) reply {
	if status == 0 {
		status = unipileStatus[typ]
		if status == 0 {
			status = http.StatusUnprocessableEntity
		}
	}
	if detail == "" {
		detail = unipileDetails[typ]
	}
	title := strings.ReplaceAll(typ, "_", " ")
	if title != "" {
		title = strings.ToUpper(title[:1]) + title[1:]
	}
	body := map[string]any{"title": title, "type": "errors/" + typ, "status": status}
	if detail != "" {
		body["detail"] = detail
	}
	rp := reply{status: status, body: body, header: http.Header{}}
	if status == http.StatusTooManyRequests && retryAfter == 0 { // negative: no header
		retryAfter = time.Minute
	}
	if retryAfter > 0 {
		rp.header.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	return rp
}

func (s *Simulator) serveUnipile(w http.ResponseWriter, r *http.Request, rest string) {
	var op string
	var want string
	switch {
	case rest == "invite":
		op, want = "invite", http.MethodPost
	case rest == "invite/sent":
		op, want = "list_sent", http.MethodGet
	case strings.HasPrefix(rest, "invite/sent/") && !strings.Contains(rest[len("invite/sent/"):], "/"):
		op, want = "cancel", http.MethodDelete
	case rest != "" && !strings.Contains(rest, "/"):
		op, want = "resolve", http.MethodGet
	default:
		unipileError("resource_not_found", "No such route.", 0, 0).write(w)
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"title": "Method Not Allowed", "status": 405})
		return
	}
	if !s.delay(r) {
		return
	}
	var rp reply
	switch op {
	case "invite":
		rp = s.unipileInvite(r)
	case "list_sent":
		rp = s.unipileList(r)
	case "cancel":
		id, _ := url.PathUnescape(rest[len("invite/sent/"):])
		rp = s.unipileCancel(r, id)
	case "resolve":
		id, err := url.PathUnescape(rest)
		if err != nil {
			id = rest
		}
		rp = s.unipileResolve(r, id)
	}
	rp.write(w)
}

// unipileGate runs the checks every Unipile call shares: credentials,
// account, account-wide error, burst, random failure and scenarios. It
// returns the account, or the reply to give. Callers hold s.mu.
func (s *Simulator) unipileGate(r *http.Request, op, accountID string, names ...string) (*account, *reply, string) {
	key := r.Header.Get("X-API-KEY")
	if key == "" {
		rp := unipileError("missing_credentials", "", 0, 0)
		return nil, &rp, "missing_credentials"
	}
	if !s.unipileKeys[key] {
		rp := unipileError("invalid_credentials", "", 0, 0)
		return nil, &rp, "invalid_credentials"
	}
	if accountID == "" {
		rp := unipileError("missing_parameters", "account_id is required.", 0, 0)
		return nil, &rp, "missing_parameters"
	}
	acc := s.accountFor(provider.Unipile, accountID)
	if acc == nil {
		rp := unipileError("resource_not_found", "Account not found.", 0, 0)
		return nil, &rp, "resource_not_found"
	}
	if acc.cfg.Error != "" {
		rp := unipileError(acc.cfg.Error, "", 0, 0)
		return acc, &rp, acc.cfg.Error
	}
	now := s.now()
	if d, ok := acc.burst(now); !ok {
		rp := unipileError("too_many_requests", "", 0, d)
		rp.header.Set("X-RateLimit-Limit", strconv.Itoa(acc.limiter.Burst()))
		rp.header.Set("X-RateLimit-Remaining", "0")
		rp.header.Set("X-RateLimit-Reset", rp.header.Get("Retry-After"))
		return acc, &rp, "too_many_requests"
	}
	if op == "invite" || op == "resolve" {
		if typ, ok := s.randomFailure(); ok {
			rp := unipileError(typ, "Simulated random failure.", 0, 0)
			return acc, &rp, typ
		}
	}
	if sc, ok := s.match(provider.Unipile, op, accountID, names...); ok {
		rp := unipileError(sc.Error, "Simulated by a scenario.", sc.Status, sc.RetryAfter)
		return acc, &rp, sc.Error
	}
	return acc, nil, ""
}

func (s *Simulator) unipileInvite(r *http.Request) reply {
	var in struct {
		ProviderID *string `json:"provider_id"`
		AccountID  *string `json:"account_id"`
		Message    *string `json:"message"`
		UserEmail  *string `json:"user_email"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	decodeErr := dec.Decode(&in)
	pid, accID := deref(in.ProviderID), deref(in.AccountID)
	rec := Request{Provider: provider.Unipile, Op: "invite", Account: accID, Recipient: pid}

	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Time = s.now()
	fail := func(acc *account, rp reply, outcome string) reply {
		rec.Status, rec.Outcome = rp.status, outcome
		s.add(rec, acc)
		return rp
	}
	// Credentials come before the body, as on the real API.
	if key := r.Header.Get("X-API-KEY"); key == "" || !s.unipileKeys[key] {
		_, rp, outcome := s.unipileGate(r, "invite", "")
		return fail(nil, *rp, outcome)
	}
	switch {
	case decodeErr != nil:
		return fail(nil, unipileError("malformed_request", "The request body is not valid JSON.", 0, 0), "malformed_request")
	case pid == "" || accID == "":
		return fail(nil, unipileError("missing_parameters", "provider_id and account_id are required.", 0, 0), "missing_parameters")
	case in.Message != nil && utf8.RuneCountInString(*in.Message) > 300:
		return fail(nil, unipileError("too_many_characters", "", 0, 0), "too_many_characters")
	case in.UserEmail != nil && !strings.Contains(*in.UserEmail, "@"):
		return fail(nil, unipileError("invalid_parameters", "user_email is not an email address.", 0, 0), "invalid_parameters")
	}
	p := s.personByProviderID(pid)
	acc, rp, outcome := s.unipileGate(r, "invite", accID, pid, p.Slug)
	if rp != nil {
		return fail(acc, *rp, outcome)
	}
	now := rec.Time
	prev := acc.pending[pid]
	switch {
	case !looksLikeProviderID(pid):
		return fail(acc, unipileError("invalid_recipient", "provider_id is not a LinkedIn member id.", 0, 0), "invalid_recipient")
	case p.Unknown:
		return fail(acc, unipileError("resource_not_found", "", 0, 0), "resource_not_found")
	case p.InviteError != "":
		return fail(acc, unipileError(p.InviteError, "Simulated for this person.", 0, 0), p.InviteError)
	case p.IsRelationship || p.NetworkDistance == "FIRST_DEGREE":
		return fail(acc, unipileError("action_already_performed", "", 0, 0), "action_already_performed")
	case prev != nil && !prev.Withdrawn,
		prev == nil && p.InvitationType == "SENT" && p.InvitationStatus == "PENDING":
		return fail(acc, unipileError("already_invited_recently", "", 0, 0), "already_invited_recently")
	case prev != nil && now.Before(prev.WithdrawnAt.Add(s.cfg.ResendCooldown)),
		prev == nil && p.InvitationType == "SENT" && p.InvitationStatus == "WITHDRAWN":
		return fail(acc, unipileError("cannot_resend_yet", "", 0, 0), "cannot_resend_yet")
	}
	limits := acc.limits(s.cfg.DefaultLimits)
	if w, ok := full(acc.sent, now, limits); ok {
		return fail(acc, unipileError("limit_exceeded",
			fmt.Sprintf("The provider's limit of %d invitations per %s has been reached.", w.Max, w.Per), 0, 0), "limit_exceeded")
	}
	acc.sent = insertSorted(acc.sent, now)
	s.nextID++
	inv := &invitation{ID: strconv.FormatUint(7_200_000_000_000_000_000+s.nextID, 10), Account: accID,
		ProviderID: pid, PublicID: p.Slug, Message: deref(in.Message), SentAt: now}
	acc.pending[pid] = inv
	acc.ordered = append(acc.ordered, inv)
	s.invitations[inv.ID] = inv
	body := map[string]any{"object": "UserInvitationSent", "invitation_id": inv.ID}
	if u, crossed := usage(acc.sent, now, limits); crossed {
		body["usage"] = u
		rec.Usage = u
	}
	rec.InvitationID = inv.ID
	rec.Status, rec.Outcome = http.StatusOK, OutcomeSent
	s.add(rec, acc)
	return reply{status: http.StatusOK, body: body}
}

func (s *Simulator) unipileResolve(r *http.Request, identifier string) reply {
	accID := r.URL.Query().Get("account_id")
	rec := Request{Provider: provider.Unipile, Op: "resolve", Account: accID, Recipient: identifier}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Time = s.now()
	var p *Person
	if looksLikeProviderID(identifier) {
		p = s.personByProviderID(identifier)
	} else {
		p = s.personBySlug(identifier)
	}
	acc, rp, outcome := s.unipileGate(r, "resolve", accID, identifier, p.Slug, p.ProviderID)
	if rp == nil {
		if w, ok := full(acc.lookups, rec.Time, acc.lookupLimits(s.cfg.DefaultLookupLimits)); ok {
			rpl := unipileError("limit_exceeded", fmt.Sprintf("The provider's limit of %d profile lookups per %s has been reached.", w.Max, w.Per), 0, 0)
			rp, outcome = &rpl, "limit_exceeded"
		} else {
			acc.lookups = insertSorted(acc.lookups, rec.Time)
		}
	}
	if rp == nil && (p.Unknown || identifier == "") {
		rpl := unipileError("resource_not_found", "", 0, 0)
		rp, outcome = &rpl, "resource_not_found"
	}
	if rp != nil {
		rec.Status, rec.Outcome = rp.status, outcome
		s.add(rec, acc)
		return *rp
	}
	// The LinkedIn UserProfile of Unipile's Node SDK
	// (dist/types/users/user-profile.types.d.ts,
	// LinkedinProfileApiResponseSchema): object, provider_id, provider,
	// public_identifier, headline, first_name, last_name and websites are
	// required.
	body := map[string]any{
		"object": "UserProfile", "provider": "LINKEDIN",
		"provider_id": p.ProviderID, "public_identifier": p.Slug,
		"first_name": p.FirstName, "last_name": p.LastName, "headline": p.Headline,
		"websites":           []string{},
		"public_profile_url": "https://www.linkedin.com/in/" + url.PathEscape(p.Slug),
		"network_distance":   p.NetworkDistance, "is_relationship": p.IsRelationship,
	}
	typ, status := p.InvitationType, p.InvitationStatus
	if inv := acc.pending[p.ProviderID]; inv != nil {
		typ, status = "SENT", "PENDING"
		if inv.Withdrawn {
			status = "WITHDRAWN"
		}
	}
	typ, status = s.acceptedProfile(acc, p.ProviderID, rec.Time, body, typ, status) // relations.go
	if typ != "" && status != "" {
		body["invitation"] = map[string]any{"type": typ, "status": status}
	}
	rec.Status, rec.Outcome = http.StatusOK, "ok"
	s.add(rec, acc)
	return reply{status: http.StatusOK, body: body}
}

// listPage is the most invitations one page of the sent list holds unless
// the request asks for fewer with limit.
const listPage = 100

func (s *Simulator) unipileList(r *http.Request) reply {
	q := r.URL.Query()
	accID := q.Get("account_id")
	rec := Request{Provider: provider.Unipile, Op: "list_sent", Account: accID}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Time = s.now()
	acc, rp, outcome := s.unipileGate(r, "list_sent", accID)
	if rp == nil {
		rp, outcome = s.listPageLocked(acc, q)
	}
	rec.Status, rec.Outcome = rp.status, outcome
	s.add(rec, acc)
	return *rp
}

func (s *Simulator) listPageLocked(acc *account, q url.Values) (*reply, string) {
	limit := listPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			rp := unipileError("invalid_parameters", "limit must be between 1 and 250.", 0, 0)
			return &rp, "invalid_parameters"
		}
		limit = n
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			rp := unipileError("invalid_parameters", "cursor is not valid.", 0, 0)
			return &rp, "invalid_parameters"
		}
		start = n
	}
	items := []map[string]any{}
	i := start
	for ; i < len(acc.ordered) && len(items) < limit; i++ {
		inv := acc.ordered[i]
		if inv.Withdrawn || acc.pending[inv.ProviderID] != inv || s.acceptedNow(inv) {
			continue
		}
		// An item of Unipile's Node SDK
		// (dist/types/users/user-invitation-sent-list.types.d.ts): every
		// field is required, the text ones may be null.
		var text any
		if inv.Message != "" {
			text = inv.Message
		}
		items = append(items, map[string]any{
			"object": "InvitationSent", "id": inv.ID,
			"date":            inv.SentAt.UTC().Format(time.RFC3339),
			"parsed_datetime": inv.SentAt.UTC().Format(time.RFC3339),
			"invited_user":    inv.PublicID, "invited_user_id": inv.ProviderID,
			"invited_user_public_id":   inv.PublicID,
			"invited_user_description": nil,
			"invitation_text":          text,
		})
	}
	var cursor any
	if i < len(acc.ordered) {
		cursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(i)))
	}
	return &reply{status: http.StatusOK, body: map[string]any{"object": "InvitationList", "items": items, "cursor": cursor}}, "ok"
}

func (s *Simulator) unipileCancel(r *http.Request, id string) reply {
	accID := r.URL.Query().Get("account_id")
	rec := Request{Provider: provider.Unipile, Op: "cancel", Account: accID, Recipient: id}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Time = s.now()
	acc, rp, outcome := s.unipileGate(r, "cancel", accID, id)
	if rp == nil {
		inv := s.invitations[id]
		if inv == nil || inv.Account != accID || inv.Withdrawn {
			rpl := unipileError("resource_not_found", "No pending invitation with this id.", 0, 0)
			rp, outcome = &rpl, "resource_not_found"
		} else {
			inv.Withdrawn, inv.WithdrawnAt = true, rec.Time
			rp, outcome = &reply{status: http.StatusOK, body: map[string]any{"object": "InvitationCanceled"}}, "ok"
		}
	}
	rec.Status, rec.Outcome = rp.status, outcome
	s.add(rec, acc)
	return *rp
}

// Withdraw withdraws the pending invitation of account to providerID, as
// a cancel through the API would, at the simulator's current time. It
// reports whether there was one.
func (s *Simulator) Withdraw(account, providerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accounts[accountKey{provider.Unipile, account}]
	if acc == nil {
		return false
	}
	inv := acc.pending[providerID]
	if inv == nil || inv.Withdrawn {
		return false
	}
	inv.Withdrawn, inv.WithdrawnAt = true, s.now()
	return true
}

// looksLikeProviderID mirrors unipile.IsProviderID without importing the
// client.
func looksLikeProviderID(s string) bool {
	if len(s) < 20 || len(s) > 80 || !(strings.HasPrefix(s, "ACoAA") || strings.HasPrefix(s, "ACwAA")) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
