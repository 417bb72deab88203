package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// loseAnswer is a client that sends the invitation but then loses the
// answer for chosen recipients, once each: the worker sees a transport
// error although the provider did send it (the "worker died between the
// provider's answer and the commit" case, and any timeout after delivery).
type loseAnswer struct {
	provider.Client
	mu   sync.Mutex
	lose map[string]bool
}

func (l *loseAnswer) Invite(ctx context.Context, inv provider.Invitation) (provider.Sent, error) {
	sent, err := l.Client.Invite(ctx, inv)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.lose[inv.RecipientID] {
		delete(l.lose, inv.RecipientID)
		return provider.Sent{}, &provider.Error{Provider: provider.Unipile, Op: "invite", Kind: provider.KindTransient,
			Scope: provider.ScopeTransient, Type: "transport_error", Err: errors.New("connection reset by peer")}
	}
	return sent, err
}

func (l *loseAnswer) Resolve(ctx context.Context, account, id string) (provider.Profile, error) {
	return l.Client.(provider.Resolver).Resolve(ctx, account, id)
}

// Invariant 3: a repeated request after a lost answer is recognised and
// recorded as sent; nobody is invited twice.
func TestInvariantLostAnswerIsRecognisedAsSent(t *testing.T) {
	t.Parallel()
	la := &loseAnswer{lose: map[string]bool{pid("lost-1"): true}}
	h := newHarness(t, options{wrap: func(c provider.Client) provider.Client { la.Client = c; return la }})
	li := h.account(accountSpec{name: "li"})
	h.targets(h.campaign(li, ""), pid("lost-1"), pid("fine-1"))
	h.start(1)
	rows := h.waitTerminal(20 * time.Second)
	if r := rows[pid("lost-1")]; r.Status != "sent" || !strings.Contains(r.Err, "recognised") {
		t.Errorf("target whose answer was lost: %+v, want sent (recognised on retry)", r)
	}
	rs := h.invitesTo(pid("lost-1"))
	if len(rs) != 2 || rs[0].Outcome != simulator.OutcomeSent || rs[1].Outcome != "already_invited_recently" {
		t.Errorf("requests %+v, want one sent then one already_invited_recently", rs)
	}
	if d := h.sim.DuplicateInvites(); len(d) != 0 {
		t.Errorf("duplicates: %+v", d)
	}
}

// Invariant 3 across campaigns: one person, two campaigns of one account,
// one invitation.
func TestInvariantOneInvitePerPersonAcrossCampaigns(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li"})
	c1 := h.campaign(li, "")
	c2, err := h.st.CreateCampaign(h.ctx, store.Campaign{Name: "second", AccountID: li})
	if err != nil {
		t.Fatal(err)
	}
	// The same person as a URL in one campaign, a slug in the other.
	h.targets(c1, "https://www.linkedin.com/in/same-person/")
	h.targets(c2, "same-person", "https://linkedin.com/in/same-person?trk=x")
	h.start(2)
	h.waitTerminal(20 * time.Second)
	if n := len(h.invitesTo(pid("same-person"))); n != 1 {
		t.Errorf("%d invitations to one person, want 1", n)
	}
	// The others are skipped: as duplicates, or, if looked up after the
	// invitation went out, because one is pending.
	sent, skipped := storetest.SentAndSkippedAsDuplicates(t, h.db)
	if sent != 1 || skipped != 2 {
		t.Errorf("%d sent and %d skipped, want 1 and 2", sent, skipped)
	}
}

// Invariant 6: API keys never appear in task payloads, logs, or what is
// stored, even when every kind of error happens.
func TestInvariantSecretsStaySecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{
		Accounts: []simulator.Account{{Provider: provider.Unipile, ID: "bad", Error: "disconnected_account"}},
		Scenarios: []simulator.Scenario{
			{Provider: provider.Unipile, Recipient: pid("s-5xx"), Error: "unexpected_error", Times: 1},
			{Provider: provider.Unipile, Recipient: pid("s-429"), Error: "too_many_requests", RetryAfter: time.Second, Times: 1},
			{Provider: provider.Partoo, Recipient: "u-403", Error: "forbidden"},
			{Provider: provider.Altegio, Error: "unauthorized", Times: 1},
		}}})
	li := h.account(accountSpec{name: "li"})
	bad := h.account(accountSpec{name: "bad", minGap: 10 * time.Millisecond})
	pa := h.account(accountSpec{name: "pa", provider: "partoo"})
	al := h.account(accountSpec{name: "al", provider: "altegio", providerAccountID: "77"})
	h.targets(h.campaign(li, "Hi {{.FirstName}}"), pid("s-5xx"), pid("s-429"), "unknown-x", "jane-secret")
	h.targets(h.campaign(bad, ""), pid("s-bad"))
	h.targets(h.campaign(pa, ""), "u-403", "u-ok")
	h.targets(h.campaign(al, ""), "x@example.com")
	h.start(1)
	h.waitFor("the errors to be recorded", 20*time.Second, func() bool {
		n := storetest.TargetsIn(t, h.db, storetest.Ended()...)
		return n >= 6 && h.accountRow(bad).Status == store.AccountDisabled
	})
	// Snapshot every task payload in Redis while work is still queued.
	insp := asynq.NewInspectorFromRedisClient(h.rdb)
	var payloads []string
	for _, q := range []string{"invites", "lookups"} {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			insp.ListPendingTasks, insp.ListScheduledTasks, insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListActiveTasks} {
			tasks, _ := list(q)
			for _, ti := range tasks {
				payloads = append(payloads, string(ti.Payload)+" "+ti.LastErr)
			}
		}
	}
	var stored strings.Builder
	for _, s := range storetest.StoredTexts(t, h.db) {
		stored.WriteString(s + "\n")
	}
	keys, _ := h.rdb.Keys(h.ctx, "*").Result()
	var redisDump strings.Builder
	for _, k := range keys {
		if typ, _ := h.rdb.Type(h.ctx, k).Result(); typ == "hash" {
			for _, v := range h.rdb.HGetAll(h.ctx, k).Val() {
				redisDump.WriteString(v)
			}
		}
	}
	if stored.Len() == 0 || h.logs.String() == "" {
		t.Fatal("nothing to check")
	}
	for _, secret := range []string{unipileKey, partooKey, altegioPartner, altegioUser} {
		for what, text := range map[string]string{"logs": h.logs.String(), "database": stored.String(),
			"task payloads": strings.Join(payloads, "\n"), "redis": redisDump.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("a secret appears in the %s", what)
			}
		}
	}
	for _, p := range payloads {
		if !strings.HasPrefix(p, `{"target_id":`) {
			t.Errorf("payload %q carries more than ids", p)
		}
	}
}

// Invariant 7: a worker shut down mid-call finishes the call and records
// it; nothing is left in flight, nothing is lost.
func TestInvariantGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Latency: 400 * time.Millisecond}})
	li := h.account(accountSpec{name: "li"})
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, pid("g-"+string(rune('a'+i))))
	}
	h.targets(h.campaign(li, ""), ids...)
	h.start(0)
	w1 := h.startWorker()
	h.waitFor("calls in flight", 10*time.Second, func() bool { return storetest.InFlight(t, h.db) > 0 })
	w1.Shutdown() // what SIGTERM does in `outreach worker`
	if n := storetest.InFlight(t, h.db); n != 0 {
		t.Errorf("%d calls left in flight after shutdown, want 0 (finished and recorded)", n)
	}
	if sending := storetest.TargetsIn(t, h.db, store.TargetSending); sending != 0 {
		t.Errorf("%d targets still held after shutdown", sending)
	}
	h.startWorker()
	rows := h.waitTerminal(30 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Errorf("%s: %s (%s), want sent", r.Identifier, r.Status, r.Err)
		}
	}
	if d := h.sim.DuplicateInvites(); len(d) != 0 {
		t.Errorf("duplicates after a restart: %+v", d)
	}
}

// Control: pausing a campaign takes effect for tasks already in Redis.
func TestControlPauseCampaignWithTasksInRedis(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	// A gap of a second: the scheduler queues the next slots ahead, as
	// scheduled tasks in Redis.
	li := h.account(accountSpec{name: "li", minGap: time.Second})
	c := h.campaign(li, "")
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, pid("c-"+string(rune('a'+i))))
	}
	h.targets(c, ids...)
	h.start(1)
	h.waitFor("the first sent and more queued", 10*time.Second, func() bool {
		queued := storetest.TargetsIn(t, h.db, store.TargetQueued)
		return len(h.requestsOf("li")) >= 1 && queued >= 2
	})
	storetest.SetCampaignStatus(t, h.db, c, store.CampaignPaused)
	pausedAt := len(h.requestsOf("li"))
	h.waitFor("queued targets handed back", 10*time.Second, func() bool {
		return storetest.TargetsIn(t, h.db, store.TargetQueued, store.TargetSending) == 0
	})
	// At most a call already under way when the pause was written.
	if n := len(h.requestsOf("li")); n > pausedAt+1 {
		t.Errorf("%d requests after pausing, want at most 1", n-pausedAt)
	}
	storetest.SetCampaignStatus(t, h.db, c, store.CampaignActive)
	h.waitTerminal(20 * time.Second)
	if n := len(h.requestsOf("li")); n != 5 {
		t.Errorf("%d requests in all, want 5", n)
	}
}

// Control: raising a limit with SQL takes effect within seconds.
func TestControlLimitChangeTakesEffect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li", limits: []store.Limit{{Action: store.ActionInvite, Max: 2, Per: time.Hour}}})
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, pid("l-"+string(rune('a'+i))))
	}
	h.targets(h.campaign(li, ""), ids...)
	h.start(1)
	h.waitFor("the first two sent", 10*time.Second, func() bool {
		return storetest.TargetsIn(t, h.db, store.TargetSent) == 2
	})
	if waiting := storetest.Unfinished(t, h.db); waiting != 4 {
		t.Fatalf("%d targets waiting under the limit, want 4", waiting)
	}
	start := time.Now()
	storetest.RaiseLimits(t, h.db, li, 100)
	h.waitTerminal(10 * time.Second)
	t.Logf("the rest sent %s after raising the limit", time.Since(start).Round(time.Millisecond))
	if n := len(h.requestsOf("li")); n != 6 {
		t.Errorf("%d requests in all, want 6", n)
	}
}
