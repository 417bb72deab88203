package main

import (
	"context"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store/storetest"
)

func TestPoolCommands(t *testing.T) {
	st := cliEnv(t)
	ctx := context.Background()
	for _, name := range []string{"li-a", "li-b", "li-c"} {
		mustRun(t, "account", "add", name, "--provider", "unipile", "--provider-account-id", name+"-id")
	}
	mustRun(t, "account", "add", "partoo-x", "--provider", "partoo", "--provider-account-id", "px")
	out := mustRun(t, "campaign", "add", "pooled", "--accounts", "li-a,li-b", "--message", "Hi {{.FirstName}}")
	if !strings.Contains(out, "accounts li-a, li-b") {
		t.Errorf("campaign add --accounts: %s", out)
	}
	mustRun(t, "pool", "add", "pooled", "li-c")
	mustRun(t, "pool", "remove", "pooled", "li-a")
	out = mustRun(t, "pool", "list", "pooled")
	if strings.Contains(out, "li-a") || !strings.Contains(out, "li-b") || !strings.Contains(out, "li-c") {
		t.Errorf("pool list after add li-c and remove li-a:\n%s", out)
	}
	mustRun(t, "pool", "share", "pooled", "--weight", "3", "--daily-cap", "40")
	weight, dailyCap := storetest.PoolShare(t, cliDB(t), "pooled")
	if weight != 3 || dailyCap != 40 {
		t.Errorf("after pool share: weight %d, daily cap %d", weight, dailyCap)
	}
	c, err := st.CampaignByName(ctx, "pooled")
	if err != nil {
		t.Fatal(err)
	}
	senders, err := st.CampaignSenders(ctx, c.ID)
	if err != nil || len(senders) != 2 {
		t.Errorf("senders: %+v, %v; want li-b and li-c", senders, err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"pool", "add", "pooled", "partoo-x"}, exitUsage},        // another provider
		{[]string{"pool", "add", "nope", "li-a"}, exitNotFound},           // no such campaign
		{[]string{"pool", "remove", "pooled", "li-a"}, exitNotFound},      // not a sender
		{[]string{"pool", "share", "pooled", "--weight", "0"}, exitUsage}, // weight at least 1
		{[]string{"pool", "move", "pooled"}, exitUsage},                   // no such subcommand
		{[]string{"campaign", "add", "x", "--account", "li-a", "--accounts", "li-b"}, exitUsage},
		{[]string{"campaign", "add", "x", "--accounts", "li-a,nope"}, exitNotFound},
	} {
		if code, _, errs := cli(t, tc.args...); code != tc.code {
			t.Errorf("outreach %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), code, tc.code, errs)
		}
	}
	mustRun(t, "pool", "remove", "pooled", "li-b")
	if code, _, errs := cli(t, "pool", "remove", "pooled", "li-c"); code != exitUsage {
		t.Errorf("removing the last sender: exit %d, want %d (%s)", code, exitUsage, errs)
	}
}
