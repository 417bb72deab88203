package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store"
)

// A request body holds at most BatchSize events and about MaxBody bytes
// (at least one event), only kinds the subscriber wants, and the cursor
// covers the events passed over.
func TestBodyBounded(t *testing.T) {
	t.Parallel()
	r, err := New(Config{Store: &store.Store{}, BatchSize: 10, MaxBody: 600})
	if err != nil {
		t.Fatal(err)
	}
	big := json.RawMessage(`{"reason":"` + strings.Repeat("x", 200) + `"}`)
	var evs []store.Event
	for i := int64(1); i <= 8; i++ {
		kind := store.EventTargetSent
		if i == 1 {
			kind = store.EventAccountPaused
		}
		evs = append(evs, store.Event{ID: i, XID: 7, Kind: kind, Data: big})
	}
	w := &store.WebhookSubscriber{Kinds: []store.EventKind{store.EventTargetSent}}
	body, batch, cur := r.body(w, evs)
	if len(body) > 600 || len(batch) != 2 || batch[0].ID != 2 || cur.ID != 3 {
		t.Fatalf("body of %d bytes, %d events (first %d), cursor %+v", len(body), len(batch), batch[0].ID, cur)
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil || len(p.Events) != 2 {
		t.Fatalf("body does not parse: %v", err)
	}
	huge := []store.Event{{ID: 9, XID: 8, Kind: store.EventTargetSent, Data: json.RawMessage(`{"reason":"` + strings.Repeat("y", 2000) + `"}`)}}
	if _, batch, cur := r.body(w, huge); len(batch) != 1 || cur.ID != 9 {
		t.Fatalf("one event over MaxBody is still sent alone: %d events", len(batch))
	}
	// Nothing wanted: no body, the cursor passes them.
	if body, batch, cur := r.body(&store.WebhookSubscriber{Kinds: []store.EventKind{"campaign.done"}}, evs); body != nil || len(batch) != 0 || cur.ID != 8 {
		t.Fatalf("nothing wanted: %d events, cursor %+v", len(batch), cur)
	}
}
