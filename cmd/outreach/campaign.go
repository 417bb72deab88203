package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

func runCampaign(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "campaign", `campaign add NAME --account ACCOUNT [--message TEMPLATE] [--options JSON]
       outreach campaign add NAME --accounts A,B,C [...]   (a pool: docs/pools.md)

Adds a campaign. The message is a Go template with .FirstName, .LastName,
.Headline, .Identifier and .Vars (the CSV's extra columns), e.g.
'Hi {{.FirstName}}, …'; a template that does not parse, or names another
field, is refused (exit 2). --options are provider options as a JSON object
(Altegio: {"user_role":"worker","position":"Stylist"}).`)
	account := fs.String("account", "", "the sending account's name or id (required, or --accounts)")
	accounts := fs.String("accounts", "", "a pool of sending accounts, comma-separated (docs/pools.md)")
	message := fs.String("message", "", "the message template")
	options := fs.String("options", "{}", "provider options (JSON object)")
	paused := fs.Bool("paused", false, "create it paused")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "add" {
		return usagef("want `campaign add NAME --account ACCOUNT`")
	}
	if (*account == "") == (*accounts == "") {
		return usagef("want one of --account or --accounts")
	}
	var opts map[string]any
	if err := json.Unmarshal([]byte(*options), &opts); err != nil || opts == nil {
		return usagef("--options: want a JSON object")
	}
	// The scheduler's own parser: a broken template is refused here, not
	// found first when a target fails.
	if err := scheduler.CheckMessage(*message); err != nil {
		return usagef("--message: the template does not parse: %v", err)
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	status := store.CampaignActive
	if *paused {
		status = store.CampaignPaused
	}
	if *accounts != "" {
		return addPoolCampaign(ctx, env, st, store.Campaign{Name: pos[1], MessageTemplate: *message,
			Status: status, ProviderOptions: opts}, *accounts)
	}
	a, err := accountByRef(ctx, st, *account)
	if err != nil {
		return err
	}
	id, err := st.CreateCampaign(ctx, store.Campaign{Name: pos[1], AccountID: a.ID, MessageTemplate: *message,
		Status: status, ProviderOptions: opts})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "campaign %q added (id %d, account %s, %s)\n", pos[1], id, a.Name, status)
	return nil
}
