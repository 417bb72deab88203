package unipile

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/httpclient"
)

// class is one row of the outcome policy: who an error concerns and what
// the worker does with it.
type class struct {
	Scope provider.Scope
	Kind  provider.Kind
}

var (
	targetBadInput  = class{provider.ScopeTarget, provider.KindBadInput}
	targetRecipient = class{provider.ScopeTarget, provider.KindRecipient}
	targetNotFound  = class{provider.ScopeTarget, provider.KindNotFound}
	targetResend    = class{provider.ScopeTarget, provider.KindCannotResendYet}
	targetInvited   = class{provider.ScopeTarget, provider.KindAlreadyInvited}
	accountDisabled = class{provider.ScopeAccount, provider.KindAccount}
	accountLimit    = class{provider.ScopeAccount, provider.KindLimitExceeded}
	accountRate     = class{provider.ScopeAccount, provider.KindRateLimited}
	transient       = class{provider.ScopeTransient, provider.KindTransient}
)

// classification maps every error type of the Unipile spec (without the
// "errors/" prefix) to the outcome policy of DESIGN.md. Types it does not
// know fall back on the HTTP status (see classFor).
var classification = map[string]class{
	// 400: the request itself is wrong; fail the target.
	"invalid_parameters":   targetBadInput,
	"malformed_request":    targetBadInput,
	"content_too_large":    targetBadInput,
	"invalid_url":          targetBadInput,
	"too_many_characters":  targetBadInput,
	"unescaped_characters": targetBadInput,
	"missing_parameters":   targetBadInput,

	// 401: the account's session or our credentials; disable the account.
	"missing_credentials":                        accountDisabled,
	"multiple_sessions":                          accountDisabled,
	"invalid_checkpoint_solution":                accountDisabled,
	"checkpoint_error":                           accountDisabled,
	"invalid_credentials":                        accountDisabled,
	"expired_credentials":                        accountDisabled,
	"insufficient_privileges":                    accountDisabled,
	"disconnected_account":                       accountDisabled,
	"disconnected_feature":                       accountDisabled,
	"invalid_credentials_but_valid_account_imap": accountDisabled,
	"expired_link":                               accountDisabled,
	"wrong_account":                              accountDisabled,
	"captcha_not_supported":                      accountDisabled,

	// 403: restricted or not subscribed; disable the account.
	"account_restricted":             accountDisabled,
	"account_mismatch":               accountDisabled,
	"insufficient_permissions":       accountDisabled,
	"session_mismatch":               accountDisabled,
	"feature_not_subscribed":         accountDisabled,
	"subscription_required":          accountDisabled,
	"unknown_authentication_context": accountDisabled,
	"action_required":                accountDisabled,
	// A restricted resource is one profile the account may not reach
	// (private or out of reach): that is the person's refusal, and one
	// person's refusal must never stall the account (invariant 5).
	"resource_access_restricted": targetRecipient,

	// 404: the person (or identifier) does not exist. A 404 whose text
	// says the account is missing is re-scoped in classFor.
	"resource_not_found":          targetNotFound,
	"invalid_resource_identifier": targetNotFound,

	// 422: the provider refused; most concern the recipient.
	"invalid_account":                 accountDisabled,
	"invalid_recipient":               targetRecipient,
	"no_connection_with_recipient":    targetRecipient,
	"blocked_recipient":               targetRecipient,
	"user_unreachable":                targetRecipient,
	"unprocessable_entity":            targetBadInput,
	"action_already_performed":        targetInvited,
	"invalid_message":                 targetBadInput,
	"invalid_post":                    targetBadInput,
	"not_allowed_inmail":              targetRecipient,
	"insufficient_credits":            accountDisabled,
	"cannot_resend_yet":               targetResend,
	"cannot_resend_within_24hrs":      targetResend,
	"cannot_resend_within_":           targetResend, // truncated form seen in a copy of the spec
	"limit_exceeded":                  accountLimit,
	"already_invited_recently":        targetInvited,
	"cannot_invite_attendee":          targetRecipient,
	"parent_mail_not_found":           targetBadInput,
	"invalid_reply_subject":           targetBadInput,
	"invalid_headers":                 targetBadInput,
	"send_as_denied":                  accountDisabled,
	"invalid_folder":                  targetBadInput,
	"invalid_thread":                  targetBadInput,
	"limit_too_high":                  targetBadInput,
	"unauthorized":                    accountDisabled,
	"sender_rejected":                 accountDisabled,
	"recipient_rejected":              targetRecipient,
	"ip_rejected_by_server":           accountDisabled,
	"provider_unreachable":            transient,
	"account_configuration_error":     accountDisabled,
	"cant_send_message":               targetRecipient,
	"realtime_client_not_initialized": transient,

	// 429.
	"too_many_requests": accountRate,

	// 5xx: retry with backoff.
	"unexpected_error":            transient,
	"provider_error":              transient,
	"authentication_intent_error": transient,
	"feature_not_implemented":     transient,
	"no_client_session":           transient,
	"no_channel":                  transient,
	"no_handler":                  transient,
	"network_down":                transient,
	"service_unavailable":         transient,
	"request_timeout":             transient,
}

// classFor classifies an answer by its type, falling back on its status.
func classFor(status int, typ, title, detail string) class {
	if status == http.StatusTooManyRequests {
		return accountRate // whatever the body says
	}
	if status == http.StatusNotFound && accountMissing(title, detail) {
		return accountDisabled
	}
	if c, ok := classification[typ]; ok {
		return c
	}
	return classForStatus(status)
}

// accountMissing reports whether a 404 concerns the sending account
// ("Account not found") rather than the person: every target of that
// account would fail the same way, so the account is disabled instead.
func accountMissing(title, detail string) bool {
	return strings.Contains(strings.ToLower(title+" "+detail), "account not found")
}

// classForStatus is the fallback for unknown or missing error types.
func classForStatus(status int) class {
	switch {
	case status == http.StatusBadRequest:
		return targetBadInput
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return accountDisabled
	case status == http.StatusNotFound, status == http.StatusGone:
		return targetNotFound
	case status == http.StatusConflict:
		return targetInvited
	case status == http.StatusUnprocessableEntity:
		return targetRecipient
	case status == http.StatusTooManyRequests:
		return accountRate
	case status == http.StatusRequestTimeout, status >= 500:
		return transient
	case status >= 400:
		return targetBadInput
	default: // 1xx or an unexpected 2xx body: odd, worth a retry (3xx never gets here: httpclient refuses redirects)
		return transient
	}
}

// errorBody is Unipile's error document.
type errorBody struct {
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Type     string `json:"type"`
	Status   any    `json:"status"`
}

// parseError turns a non-success answer into a classified error. It never
// fails: bodies that are not Unipile's error document still give the
// status and a short snippet.
func parseError(op string, status int, header http.Header, body []byte, now time.Time) *provider.Error {
	e := &provider.Error{Provider: provider.Unipile, Op: op, HTTPStatus: status}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Type != "" || eb.Title != "" || eb.Detail != "") {
		e.Type = httpclient.Snippet([]byte(strings.TrimPrefix(strings.TrimSpace(eb.Type), "errors/")))
		e.Title = httpclient.Snippet([]byte(eb.Title))
		e.Detail = httpclient.Snippet([]byte(eb.Detail))
	} else if len(body) > 0 {
		e.Detail = httpclient.StatusText(status) + ": " + httpclient.Snippet(body)
	} else {
		e.Detail = httpclient.StatusText(status)
	}
	if e.Type == "" {
		e.Type = fallbackType(status)
	}
	c := classFor(status, e.Type, e.Title, e.Detail)
	e.Scope, e.Kind = c.Scope, c.Kind
	e.RetryAfter = httpclient.RetryAfter(header, now)
	e.Detail = httpclient.WithRateLimitNote(e.Detail, header)
	return e
}

// fallbackType names an answer without an error type after its status.
func fallbackType(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusNotFound:
		return "resource_not_found"
	}
	return "http_" + strconv.Itoa(status)
}
