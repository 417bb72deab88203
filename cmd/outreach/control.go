package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

func init() {
	register(&command{name: "pause", summary: "pause a campaign, or an account (until a time, or until resumed)", run: runPause})
	register(&command{name: "resume", summary: "resume a paused campaign or a paused or disabled account", run: runResume})
	register(&command{name: "limits", summary: "show or set an account's rolling limits", run: runLimits})
	register(&command{name: "account", summary: "add an account", run: runAccount})
	register(&command{name: "campaign", summary: "add a campaign", run: runCampaign})
}

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
		if err := st.SetCampaignStatus(ctx, c.ID, "paused"); err != nil {
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
		if err := st.SetCampaignStatus(ctx, c.ID, "active"); err != nil {
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

func runLimits(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "limits", `limits show ACCOUNT [--json]
       outreach limits set ACCOUNT ACTION MAX/WINDOW [ACTION MAX/WINDOW ...]

ACTION is invite or lookup; WINDOW a duration (10s, 24h) or days and weeks
(1d, 7d, 2w), at most 366 days; MAX at most 1,000,000. 'set' replaces the windows of each action it names, e.g.

  outreach limits set li-alice invite 25/1d invite 100/7d lookup 100/1d

Workers use new limits from their next reservation.`)
	asJSON := fs.Bool("json", false, "show: print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || (pos[0] != "show" && pos[0] != "set") {
		return usagef("want `limits show ACCOUNT` or `limits set ACCOUNT ACTION MAX/WINDOW ...`")
	}
	var limits []store.Limit
	if pos[0] == "set" {
		if len(pos) < 4 {
			return usagef("limits set ACCOUNT wants at least one ACTION MAX/WINDOW, such as invite 25/24h")
		}
		if limits, err = parseLimits(pos[2:]); err != nil {
			return usagef("%v", err)
		}
	} else if len(pos) > 2 {
		return usagef("unexpected argument %q", pos[2])
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := accountByRef(ctx, st, pos[1])
	if err != nil {
		return err
	}
	if pos[0] == "set" {
		if err := st.SetLimits(ctx, a.ID, limits); err != nil {
			return err
		}
	}
	accounts, err := report.Accounts(ctx, st.Pool(), a.Name)
	if err != nil {
		return err
	}
	if len(accounts) != 1 {
		return fmt.Errorf("account %q: %w", a.Name, store.ErrNotFound)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(accounts[0].Windows)
	}
	fmt.Fprintf(env.Stdout, "%s (%s): min gap %s + jitter up to %s\n", a.Name, a.Provider, a.MinGap, a.GapJitter)
	if len(accounts[0].Windows) == 0 {
		fmt.Fprintln(env.Stdout, "  no limits")
	}
	for _, w := range accounts[0].Windows {
		fmt.Fprintf(env.Stdout, "  %-6s %d/%-6s %d used, %d left\n", w.Action, w.Max, w.PerText, w.Used, w.Left)
	}
	return nil
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runAccount(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "account", `account add NAME --provider unipile|partoo|altegio --provider-account-id ID [flags]

Adds a sending account. --provider-account-id is the Unipile account_id, the
Altegio location_id, or any label for Partoo. Credentials are never stored:
--credentials REF picks UNIPILE_API_KEY_REF (PARTOO_API_KEY_REF, ...) from
the workers' environment; "default" picks UNIPILE_API_KEY. Values that
cannot work (an unknown time zone, a gap over a day, a window over 366
days) are refused with exit 2; docs/accounts.md lists the rules.`)
	prov := fs.String("provider", "", "unipile, partoo or altegio (required)")
	pid := fs.String("provider-account-id", "", "the provider's account reference (required)")
	creds := fs.String("credentials", "default", "credentials reference ([a-z0-9_]+)")
	tz := fs.String("timezone", "UTC", "the account's time zone (IANA name)")
	gap := fs.Duration("min-gap", 0, "minimum time between two invitations")
	jitter := fs.Duration("jitter", 0, "random extra gap, up to this")
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
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := st.CreateAccount(ctx, store.NewAccount{Name: pos[1], Provider: *prov, ProviderAccountID: *pid,
		CredentialsRef: *creds, Timezone: *tz, MinGap: *gap, GapJitter: *jitter, Limits: limits})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "account %q added (id %d)\n", pos[1], id)
	return nil
}

func runCampaign(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "campaign", `campaign add NAME --account ACCOUNT [--message TEMPLATE] [--options JSON]

Adds a campaign. The message is a Go template with .FirstName, .LastName,
.Headline, .Identifier and .Vars (the CSV's extra columns), e.g.
'Hi {{.FirstName}}, …'; a template that does not parse, or names another
field, is refused (exit 2). --options are provider options as a JSON object
(Altegio: {"user_role":"worker","position":"Stylist"}).`)
	account := fs.String("account", "", "the sending account's name or id (required)")
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
	if *account == "" {
		return usagef("--account is required")
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
	a, err := accountByRef(ctx, st, *account)
	if err != nil {
		return err
	}
	status := "active"
	if *paused {
		status = "paused"
	}
	id, err := st.CreateCampaign(ctx, store.Campaign{Name: pos[1], AccountID: a.ID, MessageTemplate: *message,
		Status: status, ProviderOptions: opts})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "campaign %q added (id %d, account %s, %s)\n", pos[1], id, a.Name, status)
	return nil
}
