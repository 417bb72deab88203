package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/webhook"
)

// A run against the simulator with sends, skips, failures, an account
// disabled and a campaign closed: every change is in events once, and a
// webhook subscriber that refuses, redirects and times out some
// deliveries still receives every event, in order per target, each
// signed.
func TestEventsRunAndWebhook(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{
		Accounts: []simulator.Account{{Provider: provider.Unipile, ID: "bad", Error: "disconnected_account"}},
	}})
	const secret = "whsec-0123456789abcdef"

	var mu sync.Mutex
	var requests int
	received := map[int64]webhook.Event{} // by id: deliveries repeat
	var order []int64                     // ids in first-delivery order
	var badSignatures, elsewhere int
	var hang = make(chan struct{})
	t.Cleanup(func() { close(hang) })
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path != "/hook" {
			elsewhere++ // a redirect followed
		}
		requests++
		n := requests
		mu.Unlock()
		switch n % 4 {
		case 1:
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		case 2:
			if n%8 == 2 {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			} else {
				select { // longer than the runner's timeout
				case <-hang:
				case <-r.Context().Done():
				}
			}
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			mu.Lock()
			badSignatures++
			mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, e := range p.Events {
			if _, ok := received[e.ID]; !ok {
				received[e.ID] = e
				order = append(order, e.ID)
			}
		}
		mu.Unlock()
	}))
	t.Cleanup(sub.Close)
	if _, err := h.st.AddWebhook(h.ctx, sub.URL+"/hook?token=s3cret-token", secret); err != nil {
		t.Fatal(err)
	}
	runner, err := webhook.New(webhook.Config{Store: h.st, Logger: h.log, Timeout: 300 * time.Millisecond,
		BatchSize: 3, Poll: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = runner.Run(h.ctx) }()

	li := h.account(accountSpec{name: "li"})
	bad := h.account(accountSpec{name: "bad"})
	camp := h.campaign(li, "Hi {{.FirstName}}")
	idents := []string{"jane-doe", "john-roe", "connected-bob-smith", "fail-invalid_recipient-x", "unknown-person", "amy-lee", "connected-kim-wu"}
	h.targets(camp, idents...)
	h.targets(h.campaign(bad, ""), "dan-poe")
	h.start(2)
	h.waitFor("li's targets to end and bad to be disabled", 30*time.Second, func() bool {
		n := storetest.CampaignTargetsIn(t, h.db, camp, storetest.Ended()...)
		return n == len(idents) && h.accountRow(bad).Status == store.AccountDisabled
	})
	h.sys.Close() // the run is over: nothing changes behind the checks
	if err := h.st.SetCampaignStatus(h.ctx, camp, store.CampaignDone); err != nil {
		t.Fatal(err)
	}
	if err := h.st.ResumeAccount(h.ctx, bad); err != nil {
		t.Fatal(err)
	}

	// What the run changed, as the tables say, and what events say.
	type change struct {
		kind   store.EventKind
		target int64
	}
	var want []change
	for _, r := range h.rows() {
		if r.Status.Terminal() {
			want = append(want, change{store.EventKind("target." + string(r.Status)), r.ID})
		}
	}
	want = append(want, change{store.EventAccountDisabled, 0}, change{store.EventAccountResumed, 0}, change{store.EventCampaignDone, 0})
	var all []store.Event
	h.waitFor("every event to be readable and delivered", 30*time.Second, func() bool {
		evs, err := h.st.EventsAfter(h.ctx, store.EventCursor{}, store.EventFilter{}, 10000)
		if err != nil {
			t.Fatal(err)
		}
		all = evs
		// The runner records a delivery once the subscriber answered:
		// after the subscriber saw it.
		ws, err := h.st.Webhooks(h.ctx)
		if err != nil || len(ws) != 1 || ws[0].Delivered != int64(len(evs)) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return len(evs) >= len(want) && len(received) == len(evs)
	})
	var got []change
	for _, e := range all {
		got = append(got, change{e.Kind, e.TargetID})
	}
	sortChanges := func(cs []change) {
		slices.SortFunc(cs, func(a, b change) int {
			if a.target != b.target {
				return int(a.target - b.target)
			}
			return cmpString(string(a.kind), string(b.kind))
		})
	}
	sortChanges(got)
	sortChanges(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}

	mu.Lock()
	defer mu.Unlock()
	if elsewhere != 0 {
		t.Errorf("%d requests followed a redirect", elsewhere)
	}
	if badSignatures != 0 {
		t.Errorf("%d deliveries with a bad signature", badSignatures)
	}
	// Delivered in the stream's order: so in order per target.
	var stream []int64
	for _, e := range all {
		stream = append(stream, e.ID)
	}
	if fmt.Sprint(order) != fmt.Sprint(stream) {
		t.Errorf("delivered in order %v, stream order %v", order, stream)
	}
	for _, e := range all {
		if r := received[e.ID]; r.Kind != e.Kind || r.TargetID != e.TargetID || string(r.Data) == "" {
			t.Errorf("event %d delivered as %+v", e.ID, r)
		}
	}
	ws, err := h.st.Webhooks(h.ctx)
	if err != nil || len(ws) != 1 {
		t.Fatalf("webhooks: %v %v", ws, err)
	}
	w := ws[0]
	if w.Delivered != int64(len(all)) || w.LastError == "" || !w.FailingSince.IsZero() || w.Attempts != 0 {
		t.Errorf("subscriber after the run: %+v", w)
	}
	if requests < 4 {
		t.Errorf("%d requests: the failures were not exercised", requests)
	}
	for _, leak := range []string{"s3cret-token", sub.URL} {
		if strings.Contains(h.logs.String(), leak) || strings.Contains(w.LastError, leak) {
			t.Errorf("%q leaked into logs or last_error (%q)", leak, w.LastError)
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
