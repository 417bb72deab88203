package main

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store/storetest"
)

// TestAccountRulesAtTheDoor checks that values the schema refuses come
// back as a usage error (exit 2) whose message names the column.
func TestAccountRulesAtTheDoor(t *testing.T) {
	cliEnv(t)
	mustRun(t, "account", "add", "li-ok", "--provider", "unipile", "--provider-account-id", "acc-ok")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"account", "add", "mars", "--provider", "unipile", "--provider-account-id", "m", "--timezone", "Mars/Phobos"},
			`accounts.timezone: unknown time zone "Mars/Phobos"`},
		{[]string{"account", "add", "blank", "--provider", "unipile", "--provider-account-id", "  "},
			"accounts.provider_account_id: must not be empty"},
		{[]string{"account", "add", "slow", "--provider", "unipile", "--provider-account-id", "s", "--min-gap", "48h"},
			"accounts.min_gap: 2 days is longer than the maximum, 1 day"},
		{[]string{"account", "add", "eon", "--provider", "unipile", "--provider-account-id", "e", "--limit", "invite:1/1000d"},
			"account_limits.per: 1000 days is longer than the maximum, 366 days"},
		{[]string{"limits", "set", "li-ok", "invite", "1/1000d"},
			"account_limits.per: 1000 days is longer than the maximum, 366 days"},
		{[]string{"limits", "set", "li-ok", "invite", "2000000/1d"},
			"account_limits.max_count: 2000000 is outside 1..1000000"},
		{[]string{"limits", "set", "li-ok", "invite", "1/100000000w"}, "too long"},
	} {
		code, out, errs := cli(t, tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("outreach %s: exit %d, stderr %q; want exit %d naming %q (stdout %q)",
				strings.Join(tc.args, " "), code, errs, exitUsage, tc.want, out)
		}
	}
	// Nothing of the refused commands was kept.
	out := mustRun(t, "limits", "show", "li-ok")
	if !strings.Contains(out, "pacing default") || strings.Contains(out, "custom") {
		t.Errorf("limits after refused changes:\n%s", out)
	}
	code, _, _ := cli(t, "limits", "show", "eon")
	if code != exitNotFound {
		t.Errorf("account eon with a refused limit: exit %d, want %d (not created)", code, exitNotFound)
	}
}

// TestImportOverlongIdentifier imports a file with one identifier too long
// for Postgres' index (random, so it does not compress): it is a bad row
// reported by its line, and the rest is imported.
func TestImportOverlongIdentifier(t *testing.T) {
	cliEnv(t)
	db := cliDB(t)
	mustRun(t, "account", "add", "li-long", "--provider", "unipile", "--provider-account-id", "acc-long")
	mustRun(t, "campaign", "add", "long", "--account", "li-long")
	huge := "https://www.linkedin.com/in/" + rand.Text() // 26 random characters, then more
	for len(huge) < 5000 {
		huge += rand.Text()
	}
	edge := strings.Repeat("e", 2048)
	path := writeFile(t, "long.csv", "identifier,first_name\njane-doe,Jane\n"+huge+",Huge\n"+edge+",Edge\njohn-smith,John\n")
	code, out, errs := cli(t, "import", path, "--campaign", "long")
	if code != exitPartial {
		t.Errorf("import with an overlong identifier: exit %d, want %d\n%s%s", code, exitPartial, out, errs)
	}
	if want := "long.csv:3: identifier is 5"; !strings.Contains(errs, want) || !strings.Contains(errs, "longer than the maximum of 2048") {
		t.Errorf("stderr lacks %q…maximum of 2048:\n%s", want, errs)
	}
	if strings.Contains(errs, "index row size") {
		t.Errorf("stderr shows the raw btree error:\n%s", errs)
	}
	if !strings.Contains(out, "3 targets added") {
		t.Errorf("stdout: %s", out)
	}
	if n := storetest.WithIdentifiers(t, db, "jane-doe", "john-smith", edge); n != 3 {
		t.Errorf("good rows imported: %d; want 3", n)
	}
}

// TestCampaignTemplateChecked refuses a campaign whose message template
// does not parse, or names a field the message does not have.
func TestCampaignTemplateChecked(t *testing.T) {
	st := cliEnv(t)
	mustRun(t, "account", "add", "li-tmpl", "--provider", "unipile", "--provider-account-id", "acc-tmpl")
	for _, tc := range []struct{ message, want string }{
		{"{{.FirstName", "--message: the template does not parse"},
		{"Hi {{.Firstname}}", "no field Firstname"},
	} {
		code, _, errs := cli(t, "campaign", "add", "broken", "--account", "li-tmpl", "--message", tc.message)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("campaign add --message %q: exit %d, stderr %q; want exit %d mentioning %q", tc.message, code, errs, exitUsage, tc.want)
		}
	}
	if _, err := st.CampaignByName(context.Background(), "broken"); err == nil {
		t.Errorf("a campaign with a broken template was stored")
	}
	mustRun(t, "campaign", "add", "fine", "--account", "li-tmpl", "--message", "Hi {{.FirstName}}, {{.Vars.company}}")
}
