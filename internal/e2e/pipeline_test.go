package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestPipelineAllProviders drives targets of all three providers through
// the whole pipeline and checks each ends where the policy says.
func TestPipelineAllProviders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li"})
	pa := h.account(accountSpec{name: "pa", provider: "partoo", providerAccountID: "org-1"})
	al := h.account(accountSpec{name: "al", provider: "altegio", providerAccountID: "123"})
	c1 := h.campaign(li, "Hi {{.FirstName}}, glad to connect.")
	c2 := h.campaign(pa, "")
	c3 := h.campaign(al, "")
	h.targets(c1,
		"https://www.linkedin.com/in/jane-doe/?utm_source=share",
		"connected-bob-smith",
		"pending-carol-jones",
		"unknown-nobody",
		"https://example.com/not-linkedin",
		"fail-blocked_recipient-dan",
		simulator.ProviderID("eve-adams"),
	)
	h.targets(c2, "user-1", "unknown-user")
	h.targets(c3, "Olivia@Example.com", "+33 6 12 34 56 78", "not an email")
	h.start(2)
	got := h.waitTerminal(30 * time.Second)

	want := map[string]store.TargetStatus{
		"https://www.linkedin.com/in/jane-doe/?utm_source=share": "sent",
		"connected-bob-smith":              "skipped",
		"pending-carol-jones":              "skipped",
		"unknown-nobody":                   "failed",
		"https://example.com/not-linkedin": "failed",
		"fail-blocked_recipient-dan":       "failed",
		simulator.ProviderID("eve-adams"):  "sent",
		"user-1":                           "sent",
		"unknown-user":                     "failed",
		"Olivia@Example.com":               "sent",
		"+33 6 12 34 56 78":                "sent",
		"not an email":                     "failed",
	}
	for id, status := range want {
		if got[id].Status != status {
			t.Errorf("target %q: status %q (%s), want %q", id, got[id].Status, got[id].Err, status)
		}
		if status != "sent" && got[id].Err == "" {
			t.Errorf("target %q is %s with no reason", id, status)
		}
	}
	if r := got["https://www.linkedin.com/in/jane-doe/?utm_source=share"]; r.InvitationID == "" {
		t.Errorf("sent target has no invitation_id: %+v", r)
	}
	// Nobody skipped was invited.
	if n := len(h.invitesTo(simulator.ProviderID("connected-bob-smith"))); n != 0 {
		t.Errorf("a connected person got %d invitation requests, want 0", n)
	}
	// The message was rendered with the profile's first name.
	msg := storetest.MessageTo(t, h.db, "jane-doe")
	if !strings.HasPrefix(msg, "Hi Jane,") {
		t.Errorf("message = %q, want it to start with %q", msg, "Hi Jane,")
	}
	_ = store.TargetSent
}
