package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/internal/throwaway"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// Postgres goes down while invitations are going out, then comes back:
// the scheduler and workers ride it out, every target ends, nobody is
// invited twice and no limit is exceeded.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server")
	}
	t.Parallel()
	ctx := context.Background()
	pg, st, db, dsn := ownPostgres(t, "outage", false)

	limit := store.Limit{Action: store.ActionInvite, Max: 4, Per: 2 * time.Second}
	h := newHarness(t, options{sim: simulator.Config{Latency: 50 * time.Millisecond}})
	h.st, h.db, h.dsn = st, db, dsn // this test's own server, which it can take down
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, pid("o-"+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	for _, name := range []string{"o1", "o2"} {
		acc := h.account(accountSpec{name: name, limits: []store.Limit{limit}})
		c, err := st.CreateCampaign(ctx, store.Campaign{Name: name, AccountID: acc})
		if err != nil {
			t.Fatal(err)
		}
		h.targets(c, ids[:20]...)
		ids = ids[20:]
	}
	h.start(2)
	h.waitFor("some sent", 20*time.Second, func() bool {
		return storetest.TargetsIn(t, db, store.TargetSent) >= 8
	})
	mark := len(h.logs.String())
	if err := pg.Down(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Up again once the scheduler and the workers have failed their calls.
	waitLogged(t, h.logs, mark, 60*time.Second, "scheduler", "worker")
	if err := pg.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres was down for %s", time.Since(down).Round(time.Millisecond))
	rows := h.waitTerminal(90 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Errorf("%s: %s (%s), want sent", r.Identifier, r.Status, r.Err)
		}
	}
	if d := h.sim.DuplicateInvites(); len(d) > 0 {
		t.Errorf("invited twice: %+v", d)
	}
	if v := h.sim.LimitViolations([]simulator.Window{{Max: limit.Max, Per: limit.Per}}); len(v) > 0 {
		t.Errorf("limit violations: %+v", v)
	}
}

// waitLogged waits until each component has logged a failed call (an
// error, or a warning with an error: a worker holding an answer it could
// not record, or whose heartbeat failed, warns and retries) after the
// first mark bytes of logs.
func waitLogged(t *testing.T, logs *syncBuffer, mark int, timeout time.Duration, components ...string) {
	t.Helper()
	changed := logs.Changed()
	timeout = patient(timeout)
	deadline := time.After(timeout)
	failed := map[string]bool{}
	for {
		for _, line := range strings.Split(logs.String()[mark:], "\n") {
			var e struct{ Level, Component, Error string }
			if json.Unmarshal([]byte(line), &e) == nil && (e.Level == "ERROR" || e.Level == "WARN") && e.Error != "" && !failed[e.Component] {
				failed[e.Component] = true
				t.Logf("%s failed: %s", e.Component, line)
			}
		}
		missing := []string{}
		for _, c := range components {
			if !failed[c] {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %v to log a failure; logs:\n%s", timeout, missing, tail(logs.String()[mark:], 4000))
		}
	}
}

// ownPostgres starts a throwaway Postgres server that the test may take
// down, with one migrated database of that name, and returns the server, a
// store and a pool of the test's own on it, and its URL. The throwaway
// server trades durability for speed (synchronous_commit off: a crash
// would undo commits already acknowledged, which no production server
// does); durable makes the database commit as production does.
func ownPostgres(t *testing.T, name string, durable bool) (*throwaway.Server, *store.Store, storetest.DB, string) {
	t.Helper()
	ctx := context.Background()
	pg, err := throwaway.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	if err := store.CreateDatabase(ctx, pg.URL, name, ""); err != nil {
		t.Fatal(err)
	}
	if durable {
		storetest.CommitDurably(t, pg.URL, name)
	}
	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	dsn := u.String()
	if _, err := store.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return pg, st, testenv.DB(t, dsn), dsn
}
