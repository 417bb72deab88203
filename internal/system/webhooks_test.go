package system

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/webhook"
)

// A System with Webhooks runs the webhook runner: a change is delivered
// (woken by its notification), and Close stops the runner.
func TestWebhooksRunner(t *testing.T) {
	ctx := context.Background()
	st, db := testenv.StoreDB(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(webhook.SignatureHeader)
	}))
	defer srv.Close()
	if _, err := st.AddWebhook(ctx, srv.URL, "whsec_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	sys, err := New(ctx, Config{Store: st, Redis: rdb, Webhooks: &webhook.Config{Poll: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAccount(ctx, store.NewAccount{Name: "a", Provider: "unipile", ProviderAccountID: "u"}); err != nil {
		t.Fatal(err)
	}
	storetest.DisableAllAccounts(t, db, "test")
	select {
	case sig := <-got:
		if sig == "" {
			t.Fatal("delivery without a signature")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery: the runner does not run, or LISTEN does not wake it")
	}
	// The delivery is recorded (the runner records it even if Close
	// comes first).
	sys.Close()
	ws, err := st.Webhooks(ctx)
	if err != nil || len(ws) != 1 || ws[0].Delivered != 1 {
		t.Fatalf("after Close: %+v (%v)", ws[0], err)
	}
}
