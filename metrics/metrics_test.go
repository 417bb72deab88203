package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Compile-time checks that Metrics plugs into the pipeline.
var (
	_ worker.Metrics    = (*metrics.Metrics)(nil)
	_ scheduler.Metrics = (*metrics.Metrics)(nil)
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScrapeAgainstPostgresAndRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, db := testenv.StoreDB(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })

	id, err := st.CreateAccount(ctx, store.NewAccount{Name: "li-alice", Provider: "unipile", ProviderAccountID: "acc-secret-ref",
		Limits: []store.Limit{{Action: "invite", Max: 25, Per: 24 * time.Hour}, {Action: "invite", Max: 100, Per: 7 * 24 * time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	// Three sends in the day window (one still in flight), one older than
	// a day but inside the week.
	now := storetest.Now(t, db)
	storetest.AddSends(t, db,
		storetest.Send{Account: id, Action: store.ActionInvite, Reserved: now, Answered: now, Outcome: store.OutcomeSent},
		storetest.Send{Account: id, Action: store.ActionInvite, Reserved: now, Answered: now, Outcome: store.OutcomeRefused},
		storetest.Send{Account: id, Action: store.ActionInvite, Reserved: now, Outcome: store.OutcomeInFlight},
		storetest.Send{Account: id, Action: store.ActionInvite, Reserved: now.Add(-48 * time.Hour), Answered: now.Add(-48 * time.Hour), Outcome: store.OutcomeSent})
	if err := st.PauseAccount(ctx, id, time.Now().Add(time.Hour), "429 from the provider"); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb)
	for i := int64(1); i <= 3; i++ {
		task, opts := worker.NewTask(worker.TypeInvite, i)
		if _, err := client.Enqueue(task, opts...); err != nil {
			t.Fatal(err)
		}
	}
	task, opts := worker.NewTask(worker.TypeResolve, 9)
	if _, err := client.Enqueue(task, opts...); err != nil {
		t.Fatal(err)
	}

	m := metrics.New()
	if err := m.Register(metrics.NewBudgetCollector(st, 0)); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(metrics.NewQueueCollector(rdb)); err != nil {
		t.Fatal(err)
	}
	m.Outcome("unipile", "li-alice", "sent", "")
	m.Outcome("unipile", "li-alice", "sent", "")
	m.Outcome("unipile", "li-alice", "deferred", "cannot_resend_yet")
	m.Outcome("unipile", "li-alice", "failed", "invalid_recipient")
	m.AccountPaused("unipile", "li-alice", "limit_exceeded")
	m.Tick(scheduler.TickStats{Duration: 30 * time.Millisecond, Lag: 1500 * time.Millisecond, Enqueued: 4,
		Prepared: store.PrepareStats{CacheHits: 7, Resolved: 7, NeedLookup: 2}})

	body := scrape(t, m.Handler())
	for _, want := range []string{
		`outreach_outcomes_total{account="li-alice",error_type="",outcome="sent",provider="unipile"} 2`,
		`outreach_outcomes_total{account="li-alice",error_type="cannot_resend_yet",outcome="deferred",provider="unipile"} 1`,
		`outreach_outcomes_total{account="li-alice",error_type="invalid_recipient",outcome="failed",provider="unipile"} 1`,
		`outreach_account_pauses_total{account="li-alice",kind="limit_exceeded",provider="unipile"} 1`,
		`outreach_resolve_cache_hits_total 7`,
		`outreach_scheduler_lag_seconds 1.5`,
		`outreach_scheduler_enqueued_total 4`,
		`outreach_scheduler_tick_duration_seconds_count 1`,
		`outreach_account_budget_remaining{account="li-alice",action="invite",provider="unipile",window="24h"} 22`,
		`outreach_account_budget_remaining{account="li-alice",action="invite",provider="unipile",window="168h"} 96`,
		`outreach_account_budget_limit{account="li-alice",action="invite",provider="unipile",window="168h"} 100`,
		`outreach_account_status{account="li-alice",provider="unipile",status="paused"} 1`,
		`outreach_budget_scrape_success 1`,
		`asynq_queue_size{queue="invites"} 3`,
		`asynq_queue_size{queue="lookups"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "acc-secret-ref") || regexp.MustCompile(`sim-[a-z]+-key`).MatchString(body) {
		t.Errorf("/metrics leaks a provider reference or key")
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", grepOutreach(body))
	}
}

// TestBudgetScrapeSurvivesPostgresDown: a scrape with the database gone
// still answers, with outreach_budget_scrape_success 0.
func TestBudgetScrapeSurvivesPostgresDown(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	m := metrics.New()
	if err := m.Register(metrics.NewBudgetCollector(st, time.Second)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	body := scrape(t, m.Handler())
	if !strings.Contains(body, "outreach_budget_scrape_success 0") {
		t.Errorf("want outreach_budget_scrape_success 0, got:\n%s", grepOutreach(body))
	}
}

func grepOutreach(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "outreach_") || strings.HasPrefix(l, "asynq_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
