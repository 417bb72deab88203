package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// env is one test's scheduler on a database and a Redis of its own, with a
// clock the test moves (Config.Now).
type env struct {
	t    *testing.T
	ctx  context.Context
	st   *store.Store
	db   storetest.DB // the test's own, for setup and checks (storetest)
	rdb  *redis.Client
	insp *asynq.Inspector
	cfg  Config
	s    *Scheduler

	mu  sync.Mutex
	now time.Time
}

// newEnv starts an env; tweak adjusts the scheduler's configuration.
func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	st, db := testenv.StoreDB(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &env{t: t, ctx: t.Context(), st: st, db: db, rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb),
		now: time.Now().UTC().Truncate(time.Millisecond)}
	e.cfg = Config{Store: st, Redis: rdb, Now: e.clock}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.s = e.scheduler()
	return e
}

// scheduler returns a new Scheduler on the env's database, Redis and clock.
func (e *env) scheduler() *Scheduler {
	e.t.Helper()
	s, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// advance moves the scheduler's clock (not the database's).
func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// account creates an active Unipile account off default pacing.
func (e *env) account(name string) int64 {
	e.t.Helper()
	id, err := e.st.CreateAccount(e.ctx, store.NewAccount{Name: name, Provider: provider.Unipile, ProviderAccountID: name,
		Pacing: store.PacingUnlimited})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// campaign creates a campaign of the account with the given status.
func (e *env) campaign(account int64, name string, status store.CampaignStatus) int64 {
	e.t.Helper()
	id, err := e.st.CreateCampaign(e.ctx, store.Campaign{Name: name, AccountID: account, Status: status})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// add adds targets to a campaign and returns their ids, in order.
func (e *env) add(campaign int64, identifiers ...string) []int64 {
	e.t.Helper()
	nts := make([]store.NewTarget, len(identifiers))
	for i, id := range identifiers {
		nts[i] = store.NewTarget{Identifier: id}
	}
	if n, err := e.st.AddTargets(e.ctx, campaign, nts); err != nil || n != int64(len(nts)) {
		e.t.Fatalf("add targets: %d of %d added, %v", n, len(nts), err)
	}
	ids := make([]int64, len(identifiers))
	for i, ident := range identifiers {
		ids[i] = storetest.TargetID(e.t, e.db, campaign, ident)
	}
	return ids
}

// member is a LinkedIn member id: a target resolved without a lookup.
func member(i int) string { return fmt.Sprintf("ACoAAmember%010d", i) }

// members returns n member ids starting at from.
func members(from, n int) []string {
	var out []string
	for i := range n {
		out = append(out, member(from+i))
	}
	return out
}

func (e *env) target(id int64) *store.Target {
	e.t.Helper()
	t, err := e.st.Target(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// statusGen returns the target's status and task generation.
func (e *env) statusGen(id int64) (store.TargetStatus, int) {
	e.t.Helper()
	t := e.target(id)
	return t.Status, t.TaskGen
}

// queuedAt returns the target's queued_at mark.
func (e *env) queuedAt(id int64) time.Time {
	e.t.Helper()
	return storetest.QueuedAt(e.t, e.db, id)
}

func (e *env) tick() TickStats {
	e.t.Helper()
	st, err := e.s.Tick(e.ctx)
	if err != nil {
		e.t.Fatalf("tick: %v", err)
	}
	return st
}

func (e *env) reconcile(grace time.Duration) {
	e.t.Helper()
	if err := e.s.Reconcile(e.ctx, grace); err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
}

// tasks returns every task in Redis (pending, scheduled, active, retry) by
// id.
func (e *env) tasks() map[string]*asynq.TaskInfo {
	e.t.Helper()
	queues, err := e.insp.Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*asynq.TaskInfo{}
	for _, q := range queues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			e.insp.ListPendingTasks, e.insp.ListScheduledTasks, e.insp.ListActiveTasks, e.insp.ListRetryTasks,
		} {
			infos, err := list(q, asynq.PageSize(10000))
			if err != nil {
				e.t.Fatalf("list tasks of queue %s: %v", q, err)
			}
			for _, ti := range infos {
				if _, dup := out[ti.ID]; dup {
					e.t.Fatalf("task %s listed twice", ti.ID)
				}
				out[ti.ID] = ti
			}
		}
	}
	return out
}

// wantTasks checks that Redis holds exactly the tasks want (id → target
// id), each of its type, in its queue, with its target and generation in
// the payload.
func (e *env) wantTasks(want map[string]int64) {
	e.t.Helper()
	got := e.tasks()
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		e.t.Fatalf("tasks in Redis = %v, want %v", g, w)
	}
	for id, target := range want {
		ti := got[id]
		typ, queue := worker.TypeInvite, worker.QueueInvites
		if strings.HasPrefix(id, "resolve:") {
			typ, queue = worker.TypeResolve, worker.QueueLookups
		}
		var p worker.Payload
		if err := json.Unmarshal(ti.Payload, &p); err != nil {
			e.t.Fatalf("task %s payload %q: %v", id, ti.Payload, err)
		}
		if ti.Type != typ || ti.Queue != queue || p.TargetID != target || worker.TaskIDGen(typ, target, p.Gen) != id {
			e.t.Errorf("task %s: type %s, queue %s, payload %+v; want type %s, queue %s, target %d", id, ti.Type, ti.Queue, p, typ, queue, target)
		}
	}
}

func invite(id int64) string  { return worker.TaskID(worker.TypeInvite, id) }
func resolve(id int64) string { return worker.TaskID(worker.TypeResolve, id) }

// wantStatus checks the targets' statuses.
func (e *env) wantStatus(status store.TargetStatus, ids ...int64) {
	e.t.Helper()
	for _, id := range ids {
		if got := e.target(id).Status; got != status {
			e.t.Errorf("target %d is %s, want %s", id, got, status)
		}
	}
}

// TestTickPreparesAndEnqueues checks one tick over new targets: each
// identifier is normalised; one in the people cache is resolved from it
// (and skipped when the account already knows the person as connected), a
// member id needs no lookup, one unknown is queued for a lookup, a bad one
// fails; the resolved ones get invite tasks and the unknown one a resolve
// task, under their deterministic ids, and nothing else reaches Redis.
func TestTickPreparesAndEnqueues(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	storetest.AddPeople(t, e.db,
		storetest.Person{Provider: "unipile", NormalizedIdentifier: "jane-doe", ProviderID: "ACoAAjanedoe000000000000"},
		storetest.Person{Provider: "unipile", NormalizedIdentifier: "old-friend", ProviderID: "ACoAAoldfriend0000000000",
			LookedUpBy: a, NetworkDistance: "FIRST_DEGREE"})
	ids := e.add(c, "https://www.linkedin.com/in/Jane-Doe/?utm=x", "new-person", member(1), "https://example.com/in/x", "old-friend")
	jane, unknown, mem, bad, friend := ids[0], ids[1], ids[2], ids[3], ids[4]

	st := e.tick()
	want := store.PrepareStats{Seen: 5, Failed: 1, Skipped: 1, Resolved: 2, CacheHits: 2, NeedLookup: 1}
	if st.Prepared != want {
		t.Errorf("prepared %+v, want %+v", st.Prepared, want)
	}
	if st.Enqueued != 3 || st.Conflicts != 0 || st.Failed != 0 {
		t.Errorf("tick enqueued %d, conflicts %d, failed %d; want 3, 0, 0", st.Enqueued, st.Conflicts, st.Failed)
	}
	for _, tc := range []struct {
		id        int64
		status    store.TargetStatus
		norm, pid string
		errType   string
	}{
		{jane, store.TargetQueued, "jane-doe", "ACoAAjanedoe000000000000", ""},
		{unknown, store.TargetQueued, "new-person", "", ""},
		{mem, store.TargetQueued, member(1), member(1), ""},
		{bad, store.TargetFailed, "https://example.com/in/x", "", "invalid_identifier"},
		{friend, store.TargetSkipped, "old-friend", "ACoAAoldfriend0000000000", "already_connected"},
	} {
		got := e.target(tc.id)
		if got.Status != tc.status || got.NormalizedIdentifier != tc.norm || got.ProviderID != tc.pid || got.ErrorType != tc.errType {
			t.Errorf("target %d: %s %q %q %q; want %s %q %q %q", tc.id, got.Status, got.NormalizedIdentifier, got.ProviderID,
				got.ErrorType, tc.status, tc.norm, tc.pid, tc.errType)
		}
	}
	e.wantTasks(map[string]int64{invite(jane): jane, invite(mem): mem, resolve(unknown): unknown})
}

// TestTickHorizon checks that a tick enqueues only targets due within the
// horizon: one due later than it stays pending with no task until the
// clock comes near, and one due inside it is enqueued ahead, to run at its
// time.
func TestTickHorizon(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Horizon = time.Minute })
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	ids := e.add(c, member(1), member(2), member(3), "later-lookup")
	now, soon, later, laterLookup := ids[0], ids[1], ids[2], ids[3]
	soonAt := e.clock().Add(30 * time.Second)
	storetest.SetDue(t, e.db, soonAt, soon)
	storetest.SetDue(t, e.db, e.clock().Add(10*time.Minute), later, laterLookup)

	e.tick()
	e.wantTasks(map[string]int64{invite(now): now, invite(soon): soon})
	e.wantStatus(store.TargetQueued, now, soon)
	e.wantStatus(store.TargetPending, later, laterLookup)
	got := e.tasks()
	if ti := got[invite(now)]; ti.State != asynq.TaskStatePending {
		t.Errorf("task of the target due now is %v, want pending", ti.State)
	}
	if ti := got[invite(soon)]; ti.State != asynq.TaskStateScheduled || ti.NextProcessAt.Unix() != soonAt.Unix() {
		t.Errorf("task of the target due in 30 s is %v at %v, want scheduled at %v", ti.State, ti.NextProcessAt, soonAt)
	}

	e.advance(5 * time.Minute)
	e.tick()
	e.wantStatus(store.TargetPending, later, laterLookup)
	if n := len(e.tasks()); n != 2 {
		t.Errorf("%d tasks while the later targets are still beyond the horizon, want 2", n)
	}

	e.advance(5 * time.Minute)
	e.tick()
	e.wantTasks(map[string]int64{invite(now): now, invite(soon): soon, invite(later): later, resolve(laterLookup): laterLookup})
	e.wantStatus(store.TargetQueued, later, laterLookup)
}

// TestTickSkipsStoppedAccountsAndCampaigns checks that targets of a paused
// campaign, a paused account or a disabled account get no task, and that
// they do once the campaign is active again and the pause has ended by
// the scheduler's clock; the disabled account's stay without one.
func TestTickSkipsStoppedAccountsAndCampaigns(t *testing.T) {
	e := newEnv(t, nil)
	active, paused, disabled, other := e.account("active"), e.account("paused"), e.account("disabled"), e.account("other")
	ta := e.add(e.campaign(active, "active", store.CampaignActive), member(1))[0]
	tp := e.add(e.campaign(paused, "paused-account", store.CampaignActive), member(2))[0]
	td := e.add(e.campaign(disabled, "disabled-account", store.CampaignActive), member(3))[0]
	pausedCampaign := e.campaign(other, "paused-campaign", store.CampaignPaused)
	tc := e.add(pausedCampaign, member(4))[0]
	if err := e.st.PauseAccount(e.ctx, paused, e.clock().Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DisableAccount(e.ctx, disabled, "test"); err != nil {
		t.Fatal(err)
	}

	st := e.tick()
	if st.Prepared.Resolved != 4 {
		t.Errorf("prepared %+v, want the 4 targets resolved (preparing does not wait for the account)", st.Prepared)
	}
	e.wantTasks(map[string]int64{invite(ta): ta})
	e.wantStatus(store.TargetPending, tp, td, tc)

	if err := e.st.SetCampaignStatus(e.ctx, pausedCampaign, store.CampaignActive); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Hour)
	e.tick()
	e.wantTasks(map[string]int64{invite(ta): ta, invite(tp): tp, invite(tc): tc})
	e.wantStatus(store.TargetPending, td)
	if a, err := e.st.Account(e.ctx, paused); err != nil || a.Status != store.AccountActive {
		t.Errorf("account paused for an hour, two hours later: %+v, %v; want active", a, err)
	}
}

// TestTickCapsQueuedPerAccount checks MaxQueuedPerAccount: an account gets
// at most that many tasks per action in Redis, another account is not held
// back by it, a second tick adds nothing, and a task that finished frees
// one place.
func TestTickCapsQueuedPerAccount(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxQueuedPerAccount = 3 })
	a, b := e.account("a"), e.account("b")
	ca := e.add(e.campaign(a, "a", store.CampaignActive), members(1, 5)...)
	la := e.add(e.campaign(a, "a-lookups", store.CampaignActive), "p-1", "p-2", "p-3", "p-4", "p-5")
	cb := e.add(e.campaign(b, "b", store.CampaignActive), members(100, 2)...)

	count := func() (invites, lookups map[int64]int) {
		invites, lookups = map[int64]int{}, map[int64]int{}
		for _, ti := range e.tasks() {
			var p worker.Payload
			if err := json.Unmarshal(ti.Payload, &p); err != nil {
				t.Fatal(err)
			}
			acc := e.target(p.TargetID).AccountID
			if ti.Type == worker.TypeResolve {
				lookups[acc]++
			} else {
				invites[acc]++
			}
		}
		return invites, lookups
	}
	st := e.tick()
	if st.Enqueued != 3+3+2 {
		t.Errorf("first tick enqueued %d, want 8", st.Enqueued)
	}
	inv, look := count()
	if inv[a] != 3 || look[a] != 3 || inv[b] != 2 || look[b] != 0 {
		t.Fatalf("tasks: invites %v, lookups %v; want a 3 and 3, b 2 and 0", inv, look)
	}
	// The oldest are taken first; the rest wait.
	e.wantStatus(store.TargetQueued, ca[0], ca[1], ca[2], la[0], la[1], la[2], cb[0], cb[1])
	e.wantStatus(store.TargetPending, ca[3], ca[4], la[3], la[4])

	if st := e.tick(); st.Enqueued != 0 || st.Conflicts != 0 {
		t.Errorf("second tick at the cap enqueued %d (conflicts %d), want 0", st.Enqueued, st.Conflicts)
	}
	if n := len(e.tasks()); n != 8 {
		t.Errorf("%d tasks after a second tick, want 8", n)
	}

	// A worker sent ca[0]: its task is gone, a place is free.
	storetest.Finish(t, e.db, ca[0], store.TargetSent)
	if err := e.insp.DeleteTask(worker.QueueInvites, invite(ca[0])); err != nil {
		t.Fatal(err)
	}
	if st := e.tick(); st.Enqueued != 1 {
		t.Errorf("tick after one send enqueued %d, want 1", st.Enqueued)
	}
	e.wantStatus(store.TargetQueued, ca[3])
	e.wantStatus(store.TargetPending, ca[4])
	if inv, look := count(); inv[a] != 3 || look[a] != 3 {
		t.Errorf("tasks of a: %d invites, %d lookups; want 3 and 3", inv[a], look[a])
	}
}

// TestTickCountsACallBeingSentOnce checks how a tick counts an account's
// window: a target being sent is one request still out (its ledger row),
// not also one of the account's queued tasks. With 3 per 30 s, one sent,
// one being sent and one queued, the window is full until the sent one
// leaves it, and the next target gets that slot (the tick counted the
// call being sent twice, found the window over-full and planned nothing
// until the call's answer came).
func TestTickCountsACallBeingSentOnce(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	storetest.AddLimit(t, e.db, a, store.Limit{Action: store.ActionInvite, Max: 3, Per: 30 * time.Second})
	ids := e.add(e.campaign(a, "c", store.CampaignActive), members(1, 5)...)
	e.tick()
	e.wantStatus(store.TargetQueued, ids[:3]...)
	e.wantStatus(store.TargetPending, ids[3:]...)

	sentAt := e.clock().Truncate(time.Microsecond)
	storetest.AddSend(t, e.db, storetest.Send{Account: a, Target: ids[0], Action: store.ActionInvite, Reserved: sentAt,
		Answered: sentAt, Outcome: store.OutcomeSent})
	storetest.Finish(t, e.db, ids[0], store.TargetSent)
	out := storetest.AddSend(t, e.db, storetest.Send{Account: a, Target: ids[1], Action: store.ActionInvite, Reserved: sentAt})
	storetest.Hold(t, e.db, ids[1], out, sentAt.Add(time.Minute))
	for _, id := range ids[:2] {
		if err := e.insp.DeleteTask(worker.QueueInvites, invite(id)); err != nil {
			t.Fatal(err)
		}
	}

	e.advance(time.Second)
	e.tick()
	e.wantStatus(store.TargetQueued, ids[3])
	e.wantStatus(store.TargetPending, ids[4])
	if ti := e.tasks()[invite(ids[3])]; ti == nil || ti.NextProcessAt.Unix() != sentAt.Add(30*time.Second).Unix() {
		t.Errorf("task of the next target: %+v; want one at %v, when the sent one leaves the window", ti, sentAt.Add(30*time.Second))
	}
}

// TestTickEnqueuesOnce checks that ticking again, and two schedulers
// ticking at once on the same database and Redis, enqueue each target
// once: every target has exactly one task, and the enqueues add up to the
// number of targets.
func TestTickEnqueuesOnce(t *testing.T) {
	e := newEnv(t, nil)
	var want = map[string]int64{}
	for i := range 4 {
		acc := e.account(fmt.Sprintf("a%d", i))
		c := e.campaign(acc, fmt.Sprintf("c%d", i), store.CampaignActive)
		for _, id := range e.add(c, members(100*i, 10)...) {
			want[invite(id)] = id
		}
		for _, id := range e.add(c, fmt.Sprintf("p-%d-1", i), fmt.Sprintf("p-%d-2", i)) {
			want[resolve(id)] = id
		}
	}
	other := e.scheduler()
	var wg sync.WaitGroup
	stats := make([]TickStats, 2)
	errs := make([]error, 2)
	for i, s := range []*Scheduler{e.s, other} {
		wg.Go(func() { stats[i], errs[i] = s.Tick(e.ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := stats[0].Enqueued + stats[1].Enqueued; got != len(want) {
		t.Errorf("two schedulers enqueued %d + %d, want %d in all", stats[0].Enqueued, stats[1].Enqueued, len(want))
	}
	if got := stats[0].Prepared.Seen + stats[1].Prepared.Seen; got != len(want) {
		t.Errorf("two schedulers prepared %d + %d, want %d in all", stats[0].Prepared.Seen, stats[1].Prepared.Seen, len(want))
	}
	e.wantTasks(want)
	before := map[int64]time.Time{}
	for _, id := range want {
		before[id] = e.queuedAt(id)
	}

	e.advance(time.Second)
	for _, s := range []*Scheduler{e.s, other} {
		st, err := s.Tick(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Enqueued != 0 || st.Conflicts != 0 || st.Prepared.Seen != 0 {
			t.Errorf("tick again: enqueued %d, conflicts %d, prepared %d; want none", st.Enqueued, st.Conflicts, st.Prepared.Seen)
		}
	}
	e.wantTasks(want)
	for id, at := range before {
		if got := e.queuedAt(id); !got.Equal(at) {
			t.Errorf("target %d queued_at moved from %v to %v", id, at, got)
		}
	}
}

// TestReconcileRestoresLostTasks checks reconciliation: a queued target
// whose task Redis lost is enqueued again, as the task of its type, once
// its queued mark is older than the grace period, and its mark renewed;
// targets whose task is still there are left alone.
func TestReconcileRestoresLostTasks(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	ids := e.add(c, member(1), member(2), member(3), "person-x")
	want := map[string]int64{invite(ids[0]): ids[0], invite(ids[1]): ids[1], invite(ids[2]): ids[2], resolve(ids[3]): ids[3]}
	e.tick()
	e.wantTasks(want)
	queued := e.queuedAt(ids[0])

	for _, d := range []struct{ queue, id string }{{worker.QueueInvites, invite(ids[1])}, {worker.QueueLookups, resolve(ids[3])}} {
		if err := e.insp.DeleteTask(d.queue, d.id); err != nil {
			t.Fatal(err)
		}
	}
	// Within the grace period, nothing is checked.
	e.advance(30 * time.Second)
	e.reconcile(time.Minute)
	e.wantTasks(map[string]int64{invite(ids[0]): ids[0], invite(ids[2]): ids[2]})

	e.advance(time.Minute)
	e.reconcile(time.Minute)
	e.wantTasks(want)
	e.wantStatus(store.TargetQueued, ids...)
	for _, id := range []int64{ids[1], ids[3]} {
		if got := e.queuedAt(id); !got.Equal(e.clock()) {
			t.Errorf("restored target %d queued_at %v, want now %v", id, got, e.clock())
		}
	}
	for _, id := range []int64{ids[0], ids[2]} {
		if got := e.queuedAt(id); !got.Equal(queued) {
			t.Errorf("target %d whose task was there: queued_at %v, want it kept at %v", id, got, queued)
		}
	}
}

// TestStepAfterRedisLoss checks the epoch marker: the first step sets it;
// while it is there a task lost within the grace period waits for the
// reconcile; once Redis loses everything (FLUSHALL) the next step finds
// the marker gone and enqueues every queued target again at once, and sets
// the marker again.
func TestStepAfterRedisLoss(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	ids := e.add(c, member(1), member(2), member(3), "person-x")
	want := map[string]int64{invite(ids[0]): ids[0], invite(ids[1]): ids[1], invite(ids[2]): ids[2], resolve(ids[3]): ids[3]}
	step := func() {
		t.Helper()
		if _, err := e.s.step(e.ctx); err != nil {
			t.Fatalf("step: %v", err)
		}
		if n, err := e.rdb.Exists(e.ctx, epochKey).Result(); err != nil || n != 1 {
			t.Fatalf("epoch marker after a step: %d, %v; want it set", n, err)
		}
	}
	step()
	e.wantTasks(want)

	// The marker is there: a lost task waits for the reconcile.
	if err := e.insp.DeleteTask(worker.QueueInvites, invite(ids[0])); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	step()
	delete(want, invite(ids[0]))
	e.wantTasks(want)
	want[invite(ids[0])] = ids[0]

	if err := e.rdb.FlushAll(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	step()
	e.wantTasks(want)
	e.wantStatus(store.TargetQueued, ids...)
}

// TestRecoverDeadWorkers checks the liveness path: a worker whose heartbeat
// is old and that held a target in flight is recovered: its ledger row
// becomes unknown and the target is queued again at once under a new
// generation (invite:N:1, while asynq may still hold invite:N). A live
// worker's target is left alone, a second pass recovers nothing twice, and
// a later reconcile restores the new generation's task, not the old one.
func TestRecoverDeadWorkers(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	ids := e.add(c, member(1), member(2))
	deadT, liveT := ids[0], ids[1]
	e.tick()
	e.wantTasks(map[string]int64{invite(deadT): deadT, invite(liveT): liveT})

	// Each target is held by a worker in the middle of its call.
	hold := func(target int64, heartbeatAgo time.Duration) (workerID, sendID int64) {
		t.Helper()
		workerID = storetest.AddWorker(t, e.db, heartbeatAgo)
		sendID = storetest.AddSend(t, e.db, storetest.Send{Account: a, Target: target, Action: store.ActionInvite, Worker: workerID})
		storetest.Hold(t, e.db, target, sendID, e.clock().Add(time.Hour))
		return workerID, sendID
	}
	deadW, deadS := hold(deadT, time.Hour)
	_, liveS := hold(liveT, 0)

	if err := e.s.RecoverDeadWorkers(e.ctx); err != nil {
		t.Fatal(err)
	}
	recovered := invite(deadT) + ":1"
	want := map[string]int64{invite(deadT): deadT, invite(liveT): liveT, recovered: deadT}
	e.wantTasks(want)
	if s, g := e.statusGen(deadT); s != store.TargetQueued || g != 1 {
		t.Errorf("dead worker's target: %s gen %d, want queued gen 1", s, g)
	}
	if s, g := e.statusGen(liveT); s != store.TargetSending || g != 0 {
		t.Errorf("live worker's target: %s gen %d, want sending gen 0", s, g)
	}
	outcome := func(id int64) store.Outcome { return storetest.OutcomeOf(t, e.db, id) }
	if o := outcome(deadS); o != "unknown" {
		t.Errorf("dead worker's send is %s, want unknown", o)
	}
	if o := outcome(liveS); o != "in_flight" {
		t.Errorf("live worker's send is %s, want in_flight", o)
	}
	if recoveredAt := storetest.RecoveredAt(t, e.db, deadW); recoveredAt == nil {
		t.Errorf("dead worker's recovered_at %v; want set", recoveredAt)
	}

	// Once only.
	if err := e.s.RecoverDeadWorkers(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.wantTasks(want)
	if _, g := e.statusGen(deadT); g != 1 {
		t.Errorf("second pass: target generation %d, want 1", g)
	}

	// Redis loses both tasks of the target: the reconcile restores the
	// new generation's, not the old one.
	for _, id := range []string{invite(deadT), recovered} {
		if err := e.insp.DeleteTask(worker.QueueInvites, id); err != nil {
			t.Fatal(err)
		}
	}
	e.advance(2 * time.Minute)
	e.reconcile(time.Minute)
	e.wantTasks(map[string]int64{recovered: deadT, invite(liveT): liveT})
}

// TestQueuesRegisteredAgainAfterRedisLoss checks that a scheduler that did
// not see a Redis loss itself (another one found the epoch marker gone)
// makes its tasks visible again from its next reconcile: asynq's client
// registers a queue in Redis once per client, and Redis forgot it.
func TestQueuesRegisteredAgainAfterRedisLoss(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	ids := e.add(c, member(1), "person-x")
	other := e.scheduler()
	if _, err := other.Tick(e.ctx); err != nil { // its client registers both queues
		t.Fatal(err)
	}
	if _, err := e.s.step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.wantTasks(map[string]int64{invite(ids[0]): ids[0], resolve(ids[1]): ids[1]})
	// The lookup ends (the person is not found); then Redis loses
	// everything, and this scheduler re-enqueues the one queued target.
	storetest.Finish(t, e.db, ids[1], store.TargetFailed)
	if err := e.rdb.FlushAll(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	if _, err := e.s.step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.wantTasks(map[string]int64{invite(ids[0]): ids[0]})

	// A new lookup, taken by the other scheduler after its reconcile.
	later := e.add(c, "person-y")[0]
	if err := other.Reconcile(e.ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := other.Tick(e.ctx); err != nil || st.Enqueued != 1 {
		t.Fatalf("other scheduler's tick: %+v, %v; want 1 enqueued", st, err)
	}
	e.wantTasks(map[string]int64{invite(ids[0]): ids[0], resolve(later): later})
}

// TestRunRecoversDeadWorkers checks that Run's liveness loop recovers a
// dead worker's target without anyone calling RecoverDeadWorkers: the new
// generation's task appears.
func TestRunRecoversDeadWorkers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LivenessInterval = 20 * time.Millisecond })
	a := e.account("a")
	c := e.campaign(a, "c", store.CampaignActive)
	id := e.add(c, member(1))[0]
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 60 s", what)
			}
			<-tick.C
		}
	}
	waitFor("first task", func() bool { _, ok := e.tasks()[invite(id)]; return ok })

	// The worker, its call and its hold on the target in one statement:
	// the liveness loop must not find the worker dead before its call.
	storetest.HoldByDeadWorker(t, e.db, a, id, e.clock().Add(time.Hour))
	waitFor("task of the new generation", func() bool { _, ok := e.tasks()[invite(id)+":1"]; return ok })
	if s, g := e.statusGen(id); s != store.TargetQueued || g != 1 {
		t.Errorf("target %s gen %d, want queued gen 1", s, g)
	}
}
