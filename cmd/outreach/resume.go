package main

import (
	"context"
	"fmt"

	"github.com/outreach-dev/outreach/store"
)

func runResume(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "resume", `resume campaign NAME|ID
       outreach resume account NAME

Makes a paused campaign active, or a paused or disabled account active
(after a disable, check why first: status shows the reason).`)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want `resume campaign NAME` or `resume account NAME`")
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch pos[0] {
	case "campaign":
		c, err := campaignByRef(ctx, st, pos[1])
		if err != nil {
			return err
		}
		if err := st.SetCampaignStatus(ctx, c.ID, store.CampaignActive); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "campaign %q active\n", c.Name)
	case "account":
		a, err := accountByRef(ctx, st, pos[1])
		if err != nil {
			return err
		}
		if err := st.ResumeAccount(ctx, a.ID); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "account %q active\n", a.Name)
	default:
		return usagef("resume what? want campaign or account, not %q", pos[0])
	}
	return nil
}
