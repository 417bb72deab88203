package main

import (
	"context"
	"fmt"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// stringList is a repeatable flag.
type stringList []string

func runAccount(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "account", `account add NAME --provider unipile|partoo|altegio --provider-account-id ID [flags]

Adds a sending account. --provider-account-id is the Unipile account_id, the
Altegio location_id, or any label for Partoo. What the account does not set
(limits, gaps) runs on its provider's defaults unless --pacing unlimited
(docs/pacing.md). Credentials are never stored:
--credentials REF picks UNIPILE_API_KEY_REF (PARTOO_API_KEY_REF, ...) from
the workers' environment; "default" picks UNIPILE_API_KEY. Values that
cannot work (an unknown time zone, a gap over a day, a window over 366
days) are refused with exit 2; docs/accounts.md lists the rules. It sends
only inside --hours on --days, in --timezone (default: all day, every
day, UTC). A new
Unipile account starts on a warm-up ramp (docs/warmup.md) unless
--no-warmup.`)
	prov := fs.String("provider", "", "unipile, partoo or altegio (required)")
	pid := fs.String("provider-account-id", "", "the provider's account reference (required)")
	creds := fs.String("credentials", "default", "credentials reference ([a-z0-9_]+)")
	tz := fs.String("timezone", "UTC", "the account's time zone (IANA name)")
	hours := fs.String("hours", "", "working hours in its time zone, START-END such as 09:00-18:00 (default: all day)")
	days := fs.String("days", "", "working days, such as mon-fri, 1-5 or mon,wed,fri (ISO: 1 = Monday; default: every day)")
	gap := fs.Duration("min-gap", 0, "minimum time between two invitations (0: the provider's default)")
	jitter := fs.Duration("jitter", 0, "random extra gap, up to this")
	pacing := fs.String("pacing", store.PacingDefault, "default (the provider's defaults for what the account does not set) or unlimited (opt out)")
	noWarmup := fs.Bool("no-warmup", false, "do not start the account on its provider's warm-up ramp (docs/warmup.md)")
	var limitFlags stringList
	fs.Var(&limitFlags, "limit", "a limit ACTION:MAX/WINDOW, such as invite:25/1d (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "add" {
		return usagef("want `account add NAME --provider P --provider-account-id ID`")
	}
	if *prov == "" || *pid == "" {
		return usagef("--provider and --provider-account-id are required")
	}
	limits, err := parseLimits(limitFlags)
	if err != nil {
		return usagef("%v", err)
	}
	if *pacing != store.PacingDefault && *pacing != store.PacingUnlimited {
		return usagef("--pacing %q: want default or unlimited", *pacing)
	}
	na := store.NewAccount{Name: pos[1], Provider: provider.Name(*prov), ProviderAccountID: *pid,
		CredentialsRef: *creds, Timezone: *tz, MinGap: *gap, GapJitter: *jitter, Limits: limits, Pacing: *pacing, NoWarmup: *noWarmup}
	if *hours != "" {
		if na.WorkStart, na.WorkEnd, err = parseHours(*hours); err != nil {
			return usagef("--hours %q: %v", *hours, err)
		}
	}
	if *days != "" {
		if na.WorkDays, err = parseDays(*days); err != nil {
			return usagef("--days %q: %v", *days, err)
		}
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := st.CreateAccount(ctx, na)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "account %q added (id %d, pacing %s; outreach limits show %s)\n", pos[1], id, *pacing, pos[1])
	return nil
}
