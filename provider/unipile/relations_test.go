package unipile_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// simClient is a client of a fresh simulator on a fake clock, every
// exchange checked against the specs in provider/testdata.
func simClient(t *testing.T, now *time.Time) (*unipile.Client, *simulator.Simulator) {
	t.Helper()
	sim := simulator.New(simulator.Config{Now: func() time.Time { return *now }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	tr := contract.NewTransport(t, srv.Client().Transport, contract.Unipile)
	c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: simulator.DefaultUnipileAPIKey, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
}

// TestListRelationsNewestFirstAcrossPages: accepted invitations come back
// as relations, newest first, page after page, in the SDK's shape.
func TestListRelationsNewestFirstAcrossPages(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	c, sim := simClient(t, &now)
	sim.SetAcceptance(simulator.Acceptance{Probability: 1, Delay: time.Hour, Jitter: time.Hour, Seed: 7})
	ctx := context.Background()
	var want []provider.Relation
	for _, slug := range []string{"ann-a", "bob-b", "cat-c", "dan-d", "eve-e"} {
		p, err := c.Resolve(ctx, "acc", slug)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Invite(ctx, provider.Invitation{AccountID: "acc", RecipientID: p.ProviderID}); err != nil {
			t.Fatal(err)
		}
		d, ok := sim.WillAccept("acc", p.ProviderID)
		if !ok {
			t.Fatalf("probability 1 and %s does not accept", slug)
		}
		want = append(want, provider.Relation{ProviderID: p.ProviderID, PublicID: slug,
			CreatedAt: now.Add(d).Truncate(time.Millisecond)})
		now = now.Add(time.Minute)
	}
	first, err := c.ListRelations(ctx, "acc", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Relations) != 0 {
		t.Fatalf("relations before anyone accepted: %+v", first.Relations)
	}
	now = now.Add(3 * time.Hour)
	var got []provider.Relation
	cursor, pages := "", 0
	for {
		pg, err := c.ListRelations(ctx, "acc", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, pg.Relations...)
		if pg.Cursor == "" {
			break
		}
		cursor = pg.Cursor
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3 (5 relations by 2)", pages)
	}
	for i := 1; i < len(got); i++ {
		if got[i].CreatedAt.After(got[i-1].CreatedAt) {
			t.Errorf("relation %d is newer than %d: not newest first", i, i-1)
		}
	}
	sortByID := cmp.Transformer("byID", func(in []provider.Relation) map[string]provider.Relation {
		m := map[string]provider.Relation{}
		for _, r := range in {
			m[r.ProviderID] = r
		}
		return m
	})
	if diff := cmp.Diff(want, got, sortByID); diff != "" {
		t.Errorf("relations mismatch (-want +got):\n%s", diff)
	}
}

// TestCheckAccountReportsStatus: the account endpoint reports the status
// the simulator holds, and a disconnected account is not running.
func TestCheckAccountReportsStatus(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c, sim := simClient(t, &now)
	ctx := context.Background()
	for _, tc := range []struct {
		status  string
		running bool
	}{{"OK", true}, {"CREDENTIALS", false}, {"CONNECTING", false}, {"OK", true}} {
		sim.SetAccountStatus("acc", tc.status)
		got, err := c.CheckAccount(ctx, "acc")
		if err != nil {
			t.Fatal(err)
		}
		if want := (provider.AccountState{Status: tc.status, Running: tc.running}); got != want {
			t.Errorf("status %s: got %+v, want %+v", tc.status, got, want)
		}
	}
	// A wrong key is this process's configuration, never the account's.
	srv := httptest.NewServer(sim)
	defer srv.Close()
	wrong, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: "wrong-key"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.CheckAccount(ctx, "acc")
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Scope != provider.ScopeProcess || pe.Kind != provider.KindConfig {
		t.Errorf("wrong key: got %v, want a ScopeProcess KindConfig error", err)
	}
}
