package readmetest

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

// TestDNCPageSQL runs the README's SQL, then docs/dnc.md's, and checks the
// entries it leaves (normalised on insert) and that the scheduler's claim
// skips the README's targets they list, naming the entry.
func TestDNCPageSQL(t *testing.T) {
	t.Parallel()
	r := newDocRun(t)
	r.run(root + "/README.md")
	r.run(root + "/docs/dnc.md")
	r.check("after docs/dnc.md, entries", `SELECT coalesce(account_id::text, '-') AS account, coalesce(campaign_id::text, '-') AS campaign,
			coalesce(provider, 'any') AS provider, coalesce(normalized_identifier, provider_id, domain) AS matches, added_by
		FROM do_not_contact ORDER BY id`, []map[string]any{
		{"account": "-", "campaign": "-", "provider": "unipile", "matches": "marie-curie-1867", "added_by": "alice"},
		{"account": "1", "campaign": "-", "provider": "unipile", "matches": "ACoAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E", "added_by": "postgres"},
		{"account": "-", "campaign": "1", "provider": "unipile", "matches": "john-smith", "added_by": "postgres"},
	})
	if _, err := r.st.PrepareTargets(r.ctx, 1000, scheduler.Normalize); err != nil {
		t.Fatal(err)
	}
	var account int64
	if err := r.conn.QueryRow(r.ctx, `SELECT id FROM accounts WHERE name = 'jane-linkedin'`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := r.st.ClaimTargets(r.ctx, account, true, 100, now.Add(time.Hour), now, func(store.Claimed) store.Prepared {
		return store.Prepared{}
	}); err != nil {
		t.Fatal(err)
	}
	r.check("after a claim, targets", `SELECT normalized_identifier AS person, status, coalesce(last_error, '') AS reason
		FROM targets WHERE normalized_identifier IN ('jane-doe', 'john-smith', 'marie-curie-1867') ORDER BY 1`, []map[string]any{
		{"person": "jane-doe", "status": "queued", "reason": ""},
		{"person": "john-smith", "status": "skipped", "reason": "do not contact: campaign 1 entry 3, added by postgres: already in talks"},
		{"person": "marie-curie-1867", "status": "skipped", "reason": "do not contact: global entry 1, added by alice: asked to be left alone"},
	})
}
