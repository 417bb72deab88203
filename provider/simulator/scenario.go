package simulator

import (
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// Scenario makes matching requests fail with a chosen error, always or
// for the first Times matches ("fail N times then succeed"). Empty fields
// match anything. Scenarios are checked in the order added, after the
// credentials and before the simulator's own rules.
type Scenario struct {
	// Provider limits the scenario to one provider.
	Provider provider.Name
	// Op is "invite" (the default when empty), "resolve", "list_sent",
	// "cancel" or "*" for any.
	Op string
	// Account limits the scenario to one account.
	Account string
	// Recipient matches exactly: a Unipile provider_id, public identifier
	// or identifier looked up, a Partoo user_id, an Altegio search.
	Recipient string
	// RecipientPrefix matches recipients that start with it.
	RecipientPrefix string
	// Error is the error type answered. Unipile: any type of its spec
	// without "errors/" ("blocked_recipient", "too_many_requests", …),
	// answered with that type's status. Partoo: "bad_request",
	// "unauthorized", "forbidden", "not_found", "too_soon",
	// "too_many_requests", "server_error", "service_unavailable". Altegio:
	// "unauthorized", "forbidden", "not_found", "validation_error",
	// "already_invited", "too_many_requests", "server_error",
	// "service_unavailable".
	Error string
	// Status overrides the HTTP status (for unusual answers).
	Status int
	// RetryAfter is sent as Retry-After (seconds) when set.
	RetryAfter time.Duration
	// Times is how many matching requests fail; 0 means all of them.
	Times int
}

type scenarioState struct {
	Scenario
	used int
}

// AddScenario adds a scenario at run time.
func (s *Simulator) AddScenario(sc Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenarios = append(s.scenarios, &scenarioState{Scenario: sc})
}

// ClearScenarios removes every scenario.
func (s *Simulator) ClearScenarios() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenarios = nil
}

// match returns the first live scenario for a request, using it up.
// recipients are the names the recipient goes by. Callers hold s.mu.
func (s *Simulator) match(p provider.Name, op, account string, recipients ...string) (Scenario, bool) {
	for _, sc := range s.scenarios {
		if sc.Times > 0 && sc.used >= sc.Times {
			continue
		}
		if sc.Provider != "" && sc.Provider != p {
			continue
		}
		scOp := sc.Op
		if scOp == "" {
			scOp = "invite"
		}
		if scOp != "*" && scOp != op {
			continue
		}
		if sc.Account != "" && sc.Account != account {
			continue
		}
		if !matchRecipient(sc.Scenario, recipients) {
			continue
		}
		sc.used++
		return sc.Scenario, true
	}
	return Scenario{}, false
}

func matchRecipient(sc Scenario, names []string) bool {
	if sc.Recipient == "" && sc.RecipientPrefix == "" {
		return true
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if sc.Recipient != "" && n == sc.Recipient {
			return true
		}
		if sc.RecipientPrefix != "" && strings.HasPrefix(n, sc.RecipientPrefix) {
			return true
		}
	}
	return false
}
