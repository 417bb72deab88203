package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

func (f *fixture) accountState(id int64) (store.AccountStatus, string) {
	f.t.Helper()
	return storetest.AccountState(f.t, f.db, id)
}

// TestDisconnectedAccountPausedBeforeAnyCall: an account Unipile reports
// disconnected is paused, with the reason, before any LinkedIn call is
// spent on it (no invite reaches the simulator, no ledger row stays), and
// resumes by itself when Unipile reports it running: its target is due
// again and goes out.
func TestDisconnectedAccountPausedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	f := clockedFixture(t)
	acc := f.account("acc1", "default")
	w := f.worker(Config{Polls: PollConfig{HealthMaxAge: -1}})
	f.sim.SetAccountStatus("acc1", simulator.StatusCredentials)
	id := f.target(acc, "ann-a", true)
	if err := f.run(w, TypeInvite, id); err != nil {
		t.Fatal(err)
	}
	if n := f.simRequests("invite"); n != 0 {
		t.Errorf("%d invitations reached the provider of a disconnected account", n)
	}
	if n := f.ledger(); n != 0 {
		t.Errorf("%d ledger rows: the reservation made no call and must leave", n)
	}
	status, reason := f.accountState(acc)
	if status != store.AccountPaused || !strings.HasPrefix(reason, store.HealthPausePrefix+"CREDENTIALS") {
		t.Fatalf("account %s %q, want paused for CREDENTIALS", status, reason)
	}
	if st := f.state(id); st.Status != store.TargetPending || st.LastError != store.HealthWait {
		t.Errorf("target %+v, want pending, waiting for the account", st)
	}
	// A poll while it is still disconnected spends no call either.
	f.poll(w, acc)
	if n := f.simRequests("relations"); n != 0 {
		t.Errorf("%d relations calls on a disconnected account", n)
	}
	// Running again: the next check resumes it and the target is due.
	f.sim.SetAccountStatus("acc1", simulator.StatusOK)
	f.setClock(f.clock().Add(time.Minute))
	f.poll(w, acc)
	if status, reason := f.accountState(acc); status != store.AccountActive {
		t.Fatalf("account %s %q after Unipile reports it OK, want active", status, reason)
	}
	if st := f.state(id); st.Next.After(time.Now()) {
		t.Errorf("target due at %v after the resume, want now", st.Next)
	}
	f.queue(id)
	if err := f.run(w, TypeInvite, id); err != nil {
		t.Fatal(err)
	}
	if st := f.state(id); st.Status != store.TargetSent {
		t.Errorf("target %+v after the resume, want sent", st)
	}
}

// TestHealthPauseDoesNotEndOtherPauses: a report that the account runs
// ends only a pause its health caused, never an operator's or a disable.
func TestHealthPauseDoesNotEndOtherPauses(t *testing.T) {
	t.Parallel()
	f := clockedFixture(t)
	acc := f.account("acc1", "default")
	w := f.worker(Config{})
	if err := f.st.DisableAccount(f.ctx, acc, "HTTP 401 disconnected_account"); err != nil {
		t.Fatal(err)
	}
	f.poll(w, acc)
	if status, _ := f.accountState(acc); status != store.AccountDisabled {
		t.Errorf("disabled account %s after a poll that found it OK, want still disabled", status)
	}
	acc2 := f.account("acc2", "default")
	if err := f.st.PauseAccount(f.ctx, acc2, f.clock().Add(time.Hour), "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RecordAccountStatus(f.ctx, provider.Unipile, "acc2", provider.AccountState{Status: "OK", Running: true}, f.clock(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if status, reason := f.accountState(acc2); status != store.AccountPaused || reason != "operator" {
		t.Errorf("operator's pause: %s %q after OK, want kept", status, reason)
	}
}

// TestWrongKeyNeverChangesTheAccount: a worker whose own key Unipile
// refuses (invariant 11) leaves the account as it is, however its status
// check and poll fail.
func TestWrongKeyNeverChangesTheAccount(t *testing.T) {
	t.Parallel()
	f := clockedFixture(t)
	acc := f.account("acc1", "default")
	f.sim.SetAccountStatus("acc1", simulator.StatusCredentials)
	w := f.worker(Config{Clients: func(p provider.Name, ref string) (provider.Client, error) {
		return unipile.New(unipile.Config{BaseURL: f.simURL, APIKey: "wrong-key", Timeout: 5 * time.Second})
	}})
	f.poll(w, acc)
	if status, reason := f.accountState(acc); status != store.AccountActive || reason != "" {
		t.Errorf("account %s %q after a poll with a wrong key, want active and unchanged", status, reason)
	}
	if provStatus := storetest.ProviderStatus(t, f.db, acc); provStatus != nil {
		t.Errorf("provider_status %q recorded from a refused check", *provStatus)
	}
}
