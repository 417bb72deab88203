package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestClaimAndPrepareTakesNewTargets checks that the invitation claim takes
// an account's new targets itself (issue 15: normalised in the claim, one
// row update from new to queued): a resolved one is queued with its
// normalised identifier, provider id and cached profile; the others are
// written as PrepareTargets writes them (invalid identifier failed, a
// duplicate of a live target skipped, one needing a lookup left waiting
// for it), a do-not-contact entry skips one as the claim does for
// normalised targets, and a resolved one that no slot takes stays new.
func TestClaimAndPrepareTakesNewTargets(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if _, err := f.db.Exec(ctx, `INSERT INTO people (provider, normalized_identifier, provider_id, first_name)
		VALUES ('unipile', 'cached-slug', 'ACoAcached', 'Cache')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddDNC(ctx, store.NewDNCEntry{Provider: "unipile", Identifier: "dnc-person", Reason: "asked"}); err != nil {
		t.Fatal(err)
	}
	// A live target of the same person in another campaign of the account.
	other, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "c2", AccountID: f.account, MessageTemplate: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddTargets(ctx, other, []store.NewTarget{{Identifier: "dup-person"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `UPDATE targets SET status = 'queued' WHERE campaign_id = $1`, other); err != nil {
		t.Fatal(err)
	}
	normalize := func(_ provider.Name, id string) store.Normalized {
		switch {
		case strings.HasPrefix(id, "bad"):
			return store.Normalized{Err: errors.New("not an identifier")}
		case strings.HasSuffix(id, "slug"):
			return store.Normalized{Identifier: id}
		}
		return store.Normalized{Identifier: id, ProviderID: id}
	}
	var nt []store.NewTarget
	for _, id := range []string{"m1", "m2", "bad-x", "lookup-slug", "cached-slug", "dnc-person", "dup-person"} {
		nt = append(nt, store.NewTarget{Identifier: id})
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, nt); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	persons := map[string]string{}
	got, st, err := f.st.ClaimAndPrepare(ctx, []store.ClaimWant{{AccountID: f.account, N: 10}}, now.Add(time.Hour), now, normalize,
		func(c store.Claimed) store.Prepared {
			if c.Person != nil {
				persons[c.Target.Identifier] = c.Person.FirstName
			}
			return store.Prepared{Message: "hello"}
		})
	if err != nil {
		t.Fatal(err)
	}
	queued := map[string]bool{}
	for _, tg := range got[f.account] {
		queued[tg.Identifier] = true
		if tg.NormalizedIdentifier == "" || tg.ProviderID == "" {
			t.Errorf("claimed %s with normalised identifier %q, provider id %q; want both", tg.Identifier, tg.NormalizedIdentifier, tg.ProviderID)
		}
	}
	if len(queued) != 3 || !queued["m1"] || !queued["m2"] || !queued["cached-slug"] {
		t.Errorf("claimed %v, want m1, m2, cached-slug", queued)
	}
	if persons["cached-slug"] != "Cache" {
		t.Errorf("cached-slug claimed with profile %q, want the cache's", persons["cached-slug"])
	}
	// dnc-person counts as resolved: the do-not-contact check runs on the
	// claimed targets, as for normalised ones.
	want := store.PrepareStats{Seen: 7, Failed: 1, Skipped: 1, Resolved: 4, CacheHits: 1, NeedLookup: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	for _, w := range []struct{ ident, status, norm, pid, errType string }{
		{"m1", "queued", "m1", "m1", ""},
		{"cached-slug", "queued", "cached-slug", "ACoAcached", ""},
		{"bad-x", "failed", "bad-x", "", "invalid_identifier"},
		{"lookup-slug", "pending", "lookup-slug", "", ""},
		{"dnc-person", "skipped", "dnc-person", "dnc-person", store.ErrorTypeDoNotContact},
		{"dup-person", "skipped", "dup-person", "dup-person", "duplicate"},
	} {
		var status, norm, pid, errType string
		if err := f.db.QueryRow(ctx, `SELECT status, coalesce(normalized_identifier, ''), coalesce(provider_id, ''), coalesce(error_type, '')
			FROM targets WHERE campaign_id = $1 AND identifier = $2`, f.campaign, w.ident).Scan(&status, &norm, &pid, &errType); err != nil {
			t.Fatal(err)
		}
		if status != w.status || norm != w.norm || pid != w.pid || errType != w.errType {
			t.Errorf("%s: %s %q %q %q; want %s %q %q %q", w.ident, status, norm, pid, errType, w.status, w.norm, w.pid, w.errType)
		}
	}

	// Slots for one: the oldest resolved new target is queued, the other
	// stays new (PrepareTargets normalises it later).
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "n1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "n2"}}); err != nil {
		t.Fatal(err)
	}
	got, _, err = f.st.ClaimAndPrepare(ctx, []store.ClaimWant{{AccountID: f.account, N: 1}}, now.Add(time.Hour), now, normalize,
		func(store.Claimed) store.Prepared { return store.Prepared{Message: "hello"} })
	if err != nil {
		t.Fatal(err)
	}
	if len(got[f.account]) != 1 || got[f.account][0].Identifier != "n1" {
		t.Errorf("with one slot claimed %v, want n1", got[f.account])
	}
	var n2 string
	if err := f.db.QueryRow(ctx, `SELECT status || ' ' || coalesce(normalized_identifier, 'new') FROM targets
		WHERE campaign_id = $1 AND identifier = 'n2'`, f.campaign).Scan(&n2); err != nil {
		t.Fatal(err)
	}
	if n2 != "pending new" {
		t.Errorf("n2 is %q, want pending new", n2)
	}
}
