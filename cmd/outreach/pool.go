package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/outreach-dev/outreach/store"
)

// runPool lists and edits a campaign's pool of senders (docs/pools.md).
func runPool(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pool", `pool list CAMPAIGN
       outreach pool add CAMPAIGN ACCOUNT
       outreach pool remove CAMPAIGN ACCOUNT
       outreach pool share CAMPAIGN --weight N [--daily-cap N]

A campaign sends from its pool of accounts (one provider). add and remove
take effect while the system runs: a removed sender's targets that cannot
have been invited yet go to the others. share sets the campaign's weight
(its share of the accounts it shares with other campaigns, default 1) and
its own daily cap of invitations (0: none). See docs/pools.md.`)
	weight := fs.Int("weight", 1, "share: the campaign's weight on shared accounts (at least 1)")
	dailyCap := fs.Int("daily-cap", 0, "share: the campaign's invitations per 24 hours at most (0: no cap)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("want `pool list|add|remove|share CAMPAIGN ...`")
	}
	want := map[string]int{"list": 2, "add": 3, "remove": 3, "share": 2}
	if n, ok := want[pos[0]]; !ok {
		return usagef("pool what? want list, add, remove or share, not %q", pos[0])
	} else if len(pos) != n {
		return usagef("want `pool %s CAMPAIGN%s`", pos[0], strings.Repeat(" ACCOUNT", n-2))
	}
	if pos[0] == "share" && (*weight < 1 || *dailyCap < 0) {
		return usagef("--weight must be at least 1 and --daily-cap at least 0")
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := campaignByRef(ctx, st, pos[1])
	if err != nil {
		return err
	}
	switch pos[0] {
	case "list":
		senders, err := st.CampaignSenders(ctx, c.ID)
		if err != nil {
			return err
		}
		for _, s := range senders {
			fmt.Fprintf(env.Stdout, "%s\t%s\n", s.Account, s.Status)
		}
	case "add", "remove":
		a, err := accountByRef(ctx, st, pos[2])
		if err != nil {
			return err
		}
		if pos[0] == "add" {
			err = st.AddSender(ctx, c.ID, a.ID)
		} else {
			err = st.RemoveSender(ctx, c.ID, a.ID)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "campaign %q: account %q %s\n", c.Name, a.Name, map[string]string{"add": "added", "remove": "removed"}[pos[0]])
	case "share":
		if err := st.SetCampaignShare(ctx, c.ID, *weight, *dailyCap); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "campaign %q: weight %d, daily cap %s\n", c.Name, *weight, capText(*dailyCap))
	}
	return nil
}

func capText(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

// addPoolCampaign adds a campaign sending from the comma-separated
// accounts (campaign add --accounts).
func addPoolCampaign(ctx context.Context, env *Env, st *store.Store, c store.Campaign, list string) error {
	var ids []int64
	var names []string
	for _, ref := range strings.Split(list, ",") {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			continue
		}
		a, err := accountByRef(ctx, st, ref)
		if err != nil {
			return err
		}
		ids, names = append(ids, a.ID), append(names, a.Name)
	}
	if len(ids) == 0 {
		return usagef("--accounts: want account names, comma-separated")
	}
	id, err := st.CreatePoolCampaign(ctx, c, ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "campaign %q added (id %d, accounts %s, %s)\n", c.Name, id, strings.Join(names, ", "), c.Status)
	return nil
}
