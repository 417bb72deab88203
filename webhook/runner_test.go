package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A subscriber that fails is visible (attempts, failing_since, last_error
// without the URL's token), is not tried again before its backoff ends
// (by the injected clock), and gets everything once it answers; the
// cursor moves only on success.
func TestRunnerFailingSubscriberRetriesThenCatchesUp(t *testing.T) {
	t.Parallel()
	st, db := testenv.StoreDB(t)
	ctx := context.Background()
	acc, err := st.CreateAccount(ctx, store.NewAccount{Name: "a", Provider: "unipile", ProviderAccountID: "u", Pacing: store.PacingUnlimited})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTargets(ctx, camp, []store.NewTarget{{Identifier: "a"}, {Identifier: "b"}, {Identifier: "c"}}); err != nil {
		t.Fatal(err)
	}
	storetest.MarkAllSent(t, db)

	var fail atomic.Bool
	var requests, events atomic.Int64
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		if fail.Load() {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		events.Add(int64(strings.Count(string(b), `"kind"`)))
	}))
	defer srv.Close()
	if _, err := st.AddWebhook(ctx, srv.URL+"/in?token=tok-secret-1", "whsec_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r, err := webhook.New(webhook.Config{Store: st, Now: func() time.Time { return now }, MinBackoff: time.Minute, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the three events are readable (another database's tests
	// do not hold them; this one's do not run).
	for i := 0; ; i++ {
		evs, err := st.EventsAfter(ctx, store.EventCursor{}, store.EventFilter{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 3 {
			break
		}
		if i > 1000 {
			t.Fatalf("events not readable: %d", len(evs))
		}
		time.Sleep(10 * time.Millisecond)
	}

	for i := 1; i <= 2; i++ {
		// Until the round tries: one that finds the events held back a
		// moment (see below) does nothing.
		for before, j := requests.Load(), 0; requests.Load() == before; j++ {
			if n, err := r.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("round %d: delivered %d (%v)", i, n, err)
			}
			if j > 1000 {
				t.Fatalf("round %d: no request", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ws, _ := st.Webhooks(ctx)
		w := ws[0]
		if w.Attempts != i || w.FailingSince.IsZero() || w.Cursor.ID != 0 || !strings.Contains(w.LastError, "HTTP 500: down for maintenance") {
			t.Fatalf("after failure %d: %+v", i, w)
		}
		if strings.Contains(w.LastError, "tok-secret-1") {
			t.Fatalf("last_error holds the token: %q", w.LastError)
		}
		before := requests.Load()
		if _, err := r.RunOnce(ctx); err != nil || requests.Load() != before {
			t.Fatalf("tried again before the backoff ended (%v)", err)
		}
		if d := w.NextAttemptAt.Sub(now); d < time.Duration(i)*30*time.Second || d > time.Duration(1<<(i-1))*time.Minute+time.Second {
			t.Fatalf("after failure %d: next try in %s", i, d)
		}
		now = w.NextAttemptAt
	}
	fail.Store(false)
	// The events are readable, but a reader can find the horizon held
	// back a moment by another database's transaction that just ended.
	delivered := 0
	for i := 0; delivered < 3 && i < 1000; i++ {
		n, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		delivered += n
		if delivered < 3 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if delivered != 3 || events.Load() != 3 {
		t.Fatalf("after recovery: delivered %d, received %d", delivered, events.Load())
	}
	ws, _ := st.Webhooks(ctx)
	if w := ws[0]; w.Attempts != 0 || !w.FailingSince.IsZero() || w.Delivered != 3 || w.Cursor.ID == 0 {
		t.Fatalf("after recovery: %+v", w)
	}
	if n, _ := r.RunOnce(ctx); n != 0 {
		t.Fatalf("delivered %d again", n)
	}
}

// runListening runs a runner that polls only once an hour, so that what
// it delivers it was woken for, until the test ends; it returns once the
// runner listens, with the deliveries' channel.
func runListening(t *testing.T, st *store.Store, db storetest.DB) <-chan string {
	t.Helper()
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	t.Cleanup(srv.Close)
	if _, err := st.AddWebhook(context.Background(), srv.URL, "whsec_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	r, err := webhook.New(webhook.Config{Store: st, Poll: time.Hour, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	storetest.WaitListeners(t, db, store.EventsChannel, 1)
	return got
}

// waitDelivery waits for a delivery holding kind.
func waitDelivery(t *testing.T, got <-chan string, kind store.EventKind) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case body := <-got:
			if strings.Contains(body, `"`+string(kind)+`"`) {
				return
			}
		case <-timeout:
			t.Fatalf("no delivery of %s in 30s (the runner polls once an hour)", kind)
		}
	}
}

// An event the stream's horizon holds back when its notification comes
// (a transaction older than its own still runs) is delivered once the
// horizon passes it, without another notification: the runner looks
// again shortly, instead of at the next poll.
func TestRunnerLooksAgainWhenTheHorizonHoldsEvents(t *testing.T) {
	t.Parallel()
	st, db := testenv.StoreDB(t)
	got := runListening(t, st, db)
	end := storetest.OpenTransaction(t, db)
	if _, err := st.RecordEvent(context.Background(), "account.paused", 0, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-got:
		t.Fatalf("delivered while an older transaction runs: %s", body)
	case <-time.After(300 * time.Millisecond):
	}
	end()
	waitDelivery(t, got, "account.paused")
}

// A runner whose listening connection is lost listens again within
// seconds (not at the next poll), and is woken by the next change.
func TestRunnerListensAgain(t *testing.T) {
	t.Parallel()
	st, db := testenv.StoreDB(t)
	got := runListening(t, st, db)
	if n := storetest.TerminateListeners(t, db, store.EventsChannel); n != 1 {
		t.Fatalf("ended %d listeners, want 1", n)
	}
	storetest.WaitListeners(t, db, store.EventsChannel, 0)
	storetest.WaitListeners(t, db, store.EventsChannel, 1)
	if _, err := st.RecordEvent(context.Background(), "account.paused", 0, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, got, "account.paused")
}
