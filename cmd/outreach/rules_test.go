package main

import (
	"strings"
	"testing"
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
	if !strings.Contains(out, "no limits") {
		t.Errorf("limits after refused changes:\n%s", out)
	}
	code, _, _ := cli(t, "limits", "show", "eon")
	if code != exitNotFound {
		t.Errorf("account eon with a refused limit: exit %d, want %d (not created)", code, exitNotFound)
	}
}
