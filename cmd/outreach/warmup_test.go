package main

import (
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store/storetest"
)

// TestWarmupCommands: a new Unipile account starts on its provider's ramp
// (turned on here: the test template turns it off), --no-warmup opts out,
// status shows the ramp, and warmup start/show/stop change it.
func TestWarmupCommands(t *testing.T) {
	cliEnv(t)
	storetest.SetProviderWarmup(t, cliDB(t), "unipile", true)
	mustRun(t, "account", "add", "li-new", "--provider", "unipile", "--provider-account-id", "n1", "--limit", "invite:80/1d")
	mustRun(t, "account", "add", "li-warm", "--provider", "unipile", "--provider-account-id", "w1", "--no-warmup")

	if out := mustRun(t, "status"); !strings.Contains(out, "warm-up: day 1 of ramp, 5 today (+5 every 24h, up to 80)") {
		t.Errorf("status does not show li-new's ramp:\n%s", out)
	}
	if out := mustRun(t, "warmup", "show", "li-warm"); !strings.Contains(out, "has no warm-up ramp") {
		t.Errorf("li-warm, added with --no-warmup: %s", out)
	}
	if out := mustRun(t, "warmup", "start", "li-warm", "--start", "10", "--step", "10", "--full", "50", "--every", "12h"); !strings.Contains(out, "day 1 of ramp, 10 today (+10 every 12h, up to 50)") {
		t.Errorf("warmup start: %s", out)
	}
	if out := mustRun(t, "warmup", "stop", "li-warm"); !strings.Contains(out, "warm-up ended") {
		t.Errorf("warmup stop: %s", out)
	}
	if code, _, errs := cli(t, "warmup", "start", "li-new", "--every", "0s"); code == 0 || !strings.Contains(errs, "account_warmups.step") && !strings.Contains(errs, "--every") {
		t.Errorf("warmup start --every 0s: exit %d, stderr %q; want a refusal naming the step", code, errs)
	}
}
