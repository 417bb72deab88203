package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store/storetest"
)

// TestBrokenTemplateFromSQLFailsTargets: a campaign inserted with SQL is not
// checked at the door (the CLI checks), so a template that does not parse,
// or names a field the message lacks, fails each target with a clear
// reason, before any invitation is sent.
func TestBrokenTemplateFromSQLFailsTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	for _, tc := range []struct{ account, template string }{
		{"li-unparsable", "Hi {{.FirstName"},
		{"li-typo", "Hi {{.Firstname}}"},
	} {
		id := h.account(accountSpec{name: tc.account})
		storetest.AddCampaignFromSQL(t, h.db, tc.account, id, tc.template)
		storetest.AddTargetsTo(t, h.db, tc.account, pid(tc.account+"-target"))
	}
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	for _, c := range []struct{ account, want string }{
		{"li-unparsable", "message template: template: message:1: unclosed action"},
		{"li-typo", "message template:"},
	} {
		r := rows[pid(c.account+"-target")]
		if r.Status != "failed" || r.ErrType != "bad_template" || !strings.Contains(r.Err, c.want) {
			t.Errorf("%s: %+v, want failed, bad_template, %q", c.account, r, c.want)
		}
		if n := len(h.invitesTo(pid(c.account + "-target"))); n != 0 {
			t.Errorf("%s: %d invitations sent with a broken template", c.account, n)
		}
	}
	if r := rows[pid("li-typo-target")]; !strings.Contains(r.Err, "Firstname") {
		t.Errorf("typo'd field: reason %q does not name Firstname", r.Err)
	}
}
