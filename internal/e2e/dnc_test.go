package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// A do-not-contact entry added while tasks for its person are already in
// Redis stops them: zero requests to the provider for that person (no
// lookup, no invitation), whether the entry comes with SQL or the CLI's
// store function, by identifier or provider id, in any scope; the
// reservation's own check stops a task even when the entry's insert did
// not skip the target (its trigger off). Everyone else is invited.
func TestDoNotContactStopsTasksInRedis(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li"})
	camp := h.campaign(li, "Hi {{.FirstName}}")
	// Member ids need no lookup (invite tasks); slugs need one (lookup
	// tasks).
	h.targets(camp, pid("dnc-sql"), pid("dnc-store"), pid("dnc-reserve"), "dnc-lookup", pid("free-a"), "free-b")
	h.start(0) // the scheduler only: tasks wait in Redis for a worker
	insp := asynq.NewInspectorFromRedisClient(h.rdb)
	tasksInRedis := func() int {
		n := 0
		for _, q := range []string{"invites", "lookups"} {
			if qi, err := insp.GetQueueInfo(q); err == nil {
				n += qi.Pending + qi.Scheduled
			}
		}
		return n
	}
	h.waitFor("every target queued with its task in Redis", 20*time.Second, func() bool {
		queued := storetest.TargetsIn(t, h.db, store.TargetQueued)
		return queued == 6 && tasksInRedis() == 6
	})

	// The reservation's check alone: the entry's insert leaves the target
	// queued (its trigger off for this one insert).
	storetest.AddDNCWithoutSkipping(t, h.db, "unipile", pid("dnc-reserve"), "legal hold", "reserve-test")
	// With SQL, as a user would: by identifier (a profile URL), global.
	storetest.AddDNCIdentifier(t, h.db, "unipile", "https://www.linkedin.com/in/"+pid("dnc-sql")+"/", "asked us", "ops")
	// As `outreach dnc add` does: normalised in Go, scoped to the account
	// or the campaign.
	n := scheduler.Normalize("unipile", "https://fr.linkedin.com/in/DNC-Lookup/?trk=x")
	if n.Err != nil {
		t.Fatal(n.Err)
	}
	if _, err := h.st.AddDNC(h.ctx, store.NewDNCEntry{CampaignID: camp, Identifier: "https://fr.linkedin.com/in/DNC-Lookup/?trk=x",
		NormalizedIdentifier: n.Identifier, Reason: "customer", AddedBy: "sales"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AddDNC(h.ctx, store.NewDNCEntry{AccountID: li, ProviderID: pid("dnc-store"), AddedBy: "sales"}); err != nil {
		t.Fatal(err)
	}
	if got := tasksInRedis(); got != 6 {
		t.Fatalf("%d tasks in Redis after the entries, want all 6 still there", got)
	}
	rows := h.rows()
	if r := rows[pid("dnc-reserve")]; r.Status != store.TargetQueued {
		t.Fatalf("dnc-reserve: %s before any worker, want queued (left to the reservation's check)", r.Status)
	}

	h.startWorker()
	rows = h.waitTerminal(30 * time.Second)
	stopped := map[string]string{
		pid("dnc-sql"):     "global entry",
		pid("dnc-store"):   "account ",
		pid("dnc-reserve"): "reserve-test: legal hold",
		"dnc-lookup":       "campaign ",
	}
	for ident, part := range stopped {
		r := rows[ident]
		if r.Status != store.TargetSkipped || r.ErrType != store.ErrorTypeDoNotContact || !strings.Contains(r.Err, part) {
			t.Errorf("%s: %s %q (%s), want skipped by do-not-contact, the reason naming %q", ident, r.Status, r.Err, r.ErrType, part)
		}
	}
	for _, ident := range []string{pid("free-a"), "free-b"} {
		if r := rows[ident]; r.Status != store.TargetSent {
			t.Errorf("%s: %s (%s), want sent", ident, r.Status, r.Err)
		}
	}
	// Zero requests to the provider for the stopped persons: by provider
	// id (invitations) or identifier (lookups).
	person := map[string]bool{"dnc-lookup": true, pid("dnc-lookup"): true}
	for ident := range stopped {
		person[ident] = true
	}
	for _, r := range h.sim.Requests() {
		if person[r.Recipient] {
			t.Errorf("request %s to %s for a do-not-contact person", r.Op, r.Recipient)
		}
	}
	if ledger := storetest.CallsOfStoppedTargets(t, h.db); ledger != 0 {
		t.Errorf("%d ledger rows for stopped targets, want 0 (no slot reserved)", ledger)
	}
	if len(h.invitesTo(pid("free-a"))) != 1 || len(h.invitesTo(pid("free-b"))) != 1 {
		t.Errorf("invitations to the free persons: %d and %d, want 1 each", len(h.invitesTo(pid("free-a"))), len(h.invitesTo(pid("free-b"))))
	}
}
