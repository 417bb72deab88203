package store_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestDomainTypesMatchTheSchema checks that each named type's constants
// are exactly the values the schema's CHECK constraints allow, so that Go
// and SQL keep one vocabulary.
func TestDomainTypesMatchTheSchema(t *testing.T) {
	_, dsn := testenv.Store(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	allowed := func(table, column string) []string {
		t.Helper()
		var def string
		if err := conn.QueryRow(ctx, `SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
			WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%(' || $2 || ' = ANY%'
			ORDER BY c.oid LIMIT 1`, table, column).Scan(&def); err != nil {
			t.Fatalf("check constraint of %s.%s: %v", table, column, err)
		}
		var out []string
		for _, m := range regexp.MustCompile(`'([a-z_]+)'::text`).FindAllStringSubmatch(def, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	texts := func(vs ...string) []string {
		slices.Sort(vs)
		return vs
	}
	var targets []string
	for _, s := range store.TargetStatuses() {
		targets = append(targets, string(s))
	}
	for _, tc := range []struct {
		table, column string
		want          []string
	}{
		{"targets", "status", texts(targets...)},
		{"campaigns", "status", texts(string(store.CampaignActive), string(store.CampaignPaused), string(store.CampaignDone))},
		{"accounts", "status", texts(string(store.AccountActive), string(store.AccountPaused), string(store.AccountDisabled))},
		{"accounts", "provider", texts(string(provider.Unipile), string(provider.Partoo), string(provider.Altegio))},
		{"account_limits", "action", texts(string(store.ActionInvite), string(store.ActionLookup), string(store.ActionWithdraw), string(store.ActionPoll))},
	} {
		if got := allowed(tc.table, tc.column); !slices.Equal(got, tc.want) {
			t.Errorf("%s.%s allows %v; the Go constants are %v", tc.table, tc.column, got, tc.want)
		}
	}
	for _, s := range store.TargetStatuses() {
		if want := s == store.TargetSent || s == store.TargetSkipped || s == store.TargetFailed; s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, s.Terminal(), want)
		}
	}
}
