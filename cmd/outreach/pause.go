package main

import (
	"context"
	"fmt"
	"time"

	"github.com/outreach-dev/outreach/store"
)

func runPause(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pause", `pause campaign NAME|ID
       outreach pause account NAME [--until 2h|TIME] [--reason TEXT]

A paused campaign sends nothing until resumed; tasks already queued are
handed back when they come up. A paused account waits until --until (then
it is active again by itself); without --until it is disabled until
'outreach resume account'.`)
	until := fs.String("until", "", "account only: pause for a duration (2h, 1d) or until a time (RFC 3339)")
	reason := fs.String("reason", "paused by an operator", "account only: why (shown by status)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want `pause campaign NAME` or `pause account NAME`")
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch pos[0] {
	case "campaign":
		if *until != "" {
			return usagef("--until applies to accounts; a campaign stays paused until resumed")
		}
		c, err := campaignByRef(ctx, st, pos[1])
		if err != nil {
			return err
		}
		if err := st.SetCampaignStatus(ctx, c.ID, store.CampaignPaused); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "campaign %q paused\n", c.Name)
	case "account":
		a, err := accountByRef(ctx, st, pos[1])
		if err != nil {
			return err
		}
		if *until == "" {
			if err := st.DisableAccount(ctx, a.ID, *reason); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "account %q paused until resumed (outreach resume account %s)\n", a.Name, a.Name)
			return nil
		}
		t, err := parseUntil(*until, time.Now())
		if err != nil {
			return usagef("%v", err)
		}
		if a.Status == store.AccountDisabled {
			return fmt.Errorf("account %q is disabled (%s); resume it first", a.Name, a.PauseReason)
		}
		if err := st.PauseAccount(ctx, a.ID, t, *reason); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "account %q paused until %s\n", a.Name, t.UTC().Format(time.RFC3339))
	default:
		return usagef("pause what? want campaign or account, not %q", pos[0])
	}
	return nil
}
