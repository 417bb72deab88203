package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// consoleExplain runs, on the database explainLoad filled (a million
// targets and a million ledger rows; a subtest of TestExplainAtScale,
// which loads it once for both), every query of the operator console
// while recording the statements, and EXPLAINs each (custom and generic
// plans): none may read targets or sends sequentially, and a campaign's
// target list must come from the (campaign_id, identifier) index in its
// order, without a sort (or, for a rare status, from the (campaign_id,
// status) index), whatever the filter and the page.
func consoleExplain(t *testing.T, dsn string, admin *pgx.Conn) {
	ctx := context.Background()
	// Give the failed targets reasons, as the workers would.
	if _, err := admin.Exec(ctx, `UPDATE targets SET error_type = CASE WHEN id % 3 = 0 THEN 'invalid_recipient' ELSE 'too_many_characters' END
		WHERE status = 'failed'`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE targets`); err != nil {
		t.Fatal(err)
	}

	pool, rec := recordingPool(t, dsn)
	st := store.New(pool)
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	rec.op("ConsoleAccounts")
	accts, err := st.ConsoleAccounts(ctx, now, store.AccountFilter{Limit: 1000})
	must(err)
	if len(accts) != 200 {
		t.Fatalf("ConsoleAccounts = %d accounts; want 200", len(accts))
	}
	rec.op("ConsoleAccount")
	_, err = st.ConsoleAccount(ctx, 1, now)
	must(err)
	rec.op("RecentLedger")
	_, err = st.RecentLedger(ctx, 1, 25)
	must(err)
	rec.op("SendsPerHour")
	_, err = st.SendsPerHour(ctx, 1, store.ActionInvite, now.Add(-72*time.Hour), now)
	must(err)
	rec.op("WaitingTargets")
	_, err = st.WaitingTargets(ctx, 1, 50)
	must(err)
	rec.op("ConsoleCampaigns")
	_, err = st.ConsoleCampaigns(ctx, 0, now)
	must(err)
	rec.op("ConsoleCampaign")
	_, err = st.ConsoleCampaigns(ctx, 3, now)
	must(err)
	rec.op("AccountCampaigns")
	_, err = st.AccountCampaigns(ctx, 2, now)
	must(err)
	rec.op("ErrorTypes")
	_, err = st.ErrorTypes(ctx, 3)
	must(err)
	// A campaign's targets: first pages and a page deep into the campaign,
	// with each filter.
	deep := "https://www.linkedin.com/in/person-0140000/"
	for _, f := range []store.TargetFilter{{}, {After: deep}, {Status: "failed"}, {Status: "sent", After: deep},
		{ErrorType: "invalid_recipient"}, {Status: "failed", ErrorType: "too_many_characters", After: deep}} {
		f.CampaignID = 3
		rec.op("CampaignTargets")
		rows, err := st.CampaignTargets(ctx, f)
		must(err)
		if len(rows) == 0 {
			t.Errorf("CampaignTargets(%+v) found nothing", f)
		}
	}
	rec.op("ConsoleTarget")
	_, err = st.ConsoleTargetByID(ctx, 100001)
	must(err)
	rec.op("TargetLedger")
	_, err = st.TargetLedger(ctx, 100001)
	must(err)

	var targetPages int
	for _, s := range rec.statements() {
		if !touchesHotTables.MatchString(s.sql) {
			continue
		}
		for _, generic := range []bool{false, true} {
			plan := explainPlan(t, admin, s, generic)
			kind := map[bool]string{false: "custom", true: "generic"}[generic]
			t.Logf("%s (%s plan):\n%s\n%s", s.op, kind, oneLine(s.sql), plan.render())
			for _, seq := range plan.seqScans("targets", "sends", "people") {
				t.Errorf("%s (%s plan): sequential scan on %s in\n%s\n%s", s.op, kind, seq, oneLine(s.sql), plan.render())
			}
			if s.op == "CampaignTargets" {
				targetPages++
				// In identifier order from the (campaign_id, identifier)
				// index, or, for a status the campaign has few targets
				// in, those targets from (campaign_id, status), sorted.
				byIdent := plan.usesIndex("targets_campaign_id_identifier_key") && !plan.hasNode("Sort")
				byStatus := plan.usesIndex("targets_campaign_status") && strings.Contains(s.sql, "t.status = $3")
				if !byIdent && !byStatus {
					t.Errorf("%s (%s plan): want the page from targets_campaign_id_identifier_key without a sort, or from targets_campaign_status:\n%s",
						s.op, kind, plan.render())
				}
			}
			if s.op == "RecentLedger" || s.op == "SendsPerHour" {
				if !plan.usesIndex("sends_window") {
					t.Errorf("%s (%s plan): want sends_window:\n%s", s.op, kind, plan.render())
				}
			}
			if s.op == "TargetLedger" && !plan.usesIndex("sends_target") {
				t.Errorf("%s (%s plan): want sends_target:\n%s", s.op, kind, plan.render())
			}
		}
	}
	if targetPages != 12 {
		t.Errorf("explained %d plans of CampaignTargets; want 12 (6 pages, 2 plans each)", targetPages)
	}
}

func (n planNode) hasNode(nodeType string) bool {
	var ok bool
	n.walk(func(p planNode) { ok = ok || strings.HasPrefix(p.NodeType, nodeType) })
	return ok
}
