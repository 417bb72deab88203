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
	register(&command{name: "limits", summary: "show or set an account's pacing: rolling limits, gaps, defaults or unlimited", run: runLimits})
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
       outreach limits set ACCOUNT ACTION MAX/WINDOW|gap MIN[+JITTER] ...
       outreach limits set ACCOUNT default|unlimited

ACTION is invite or lookup; WINDOW a duration (10s, 24h) or days and weeks
(1d, 7d, 2w), at most 366 days; MAX at most 1,000,000. 'set' replaces the
windows of each action it names, and sets the gap of each action given one
(at least MIN, plus a random share of JITTER, between two calls), e.g.

  outreach limits set li-alice invite 25/1d invite 100/7d lookup 100/1d
  outreach limits set li-alice invite gap 2m+3m lookup gap 30s+1m

An action with no limits or gap of its own runs on its provider's defaults
(docs/pacing.md). 'default' removes the account's own limits and gaps, so
it runs on the defaults; 'unlimited' removes them and opts the account out
of the defaults: nothing paces it until you set limits again.

Workers use new limits from their next reservation.`)
	asJSON := fs.Bool("json", false, "show: print JSON (the windows)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || (pos[0] != "show" && pos[0] != "set") {
		return usagef("want `limits show ACCOUNT` or `limits set ACCOUNT ACTION MAX/WINDOW ...`")
	}
	var limits []store.Limit
	var gaps []store.Gap
	mode := ""
	if pos[0] == "set" {
		switch {
		case len(pos) == 3 && (pos[2] == store.PacingDefault || pos[2] == store.PacingUnlimited):
			mode = pos[2]
		case len(pos) < 4:
			return usagef("limits set ACCOUNT wants ACTION MAX/WINDOW (invite 25/24h), ACTION gap MIN[+JITTER] (lookup gap 30s+1m), default or unlimited")
		default:
			if limits, gaps, err = parsePacing(pos[2:]); err != nil {
				return usagef("%v", err)
			}
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
	if mode != "" {
		if err := st.SetPacing(ctx, a.ID, mode); err != nil {
			return err
		}
	}
	if len(gaps) > 0 {
		if err := st.SetGaps(ctx, a.ID, gaps); err != nil {
			return err
		}
	}
	if len(limits) > 0 {
		if err := st.SetLimits(ctx, a.ID, limits); err != nil {
			return err
		}
	}
	accounts, err := report.Accounts(ctx, st, a.Name)
	if err != nil {
		return err
	}
	if len(accounts) != 1 {
		return fmt.Errorf("account %q: %w", a.Name, store.ErrNotFound)
	}
	r := accounts[0]
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r.Windows)
	}
	fmt.Fprintf(env.Stdout, "%s (%s): pacing %s\n", a.Name, a.Provider, pacingLabel(r))
	for _, p := range r.Paces {
		if p.GapSource != "" {
			fmt.Fprintf(env.Stdout, "  %-6s min gap %s (%s)\n", p.Action, p.GapText, p.GapSource)
		}
		for _, w := range r.Windows {
			if w.Action == p.Action {
				fmt.Fprintf(env.Stdout, "  %-6s %d/%-6s %d used, %d left (%s)\n", w.Action, w.Max, w.PerText, w.Used, w.Left, w.Source)
			}
		}
	}
	if len(r.Windows) == 0 {
		fmt.Fprintln(env.Stdout, "  no limits")
	}
	return nil
}

// pacingLabel says how an account is paced, for people.
func pacingLabel(a *report.Account) string {
	switch a.PacingSummary {
	case "default":
		return "default (its provider's defaults; docs/pacing.md)"
	case "custom+default":
		return "custom+default (its own settings, the provider's defaults for the rest)"
	case "custom":
		return "custom (its own settings)"
	case "unlimited":
		return "UNLIMITED (opted out: nothing paces it)"
	}
	return a.PacingSummary
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runAccount(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "account", `account add NAME --provider unipile|partoo|altegio --provider-account-id ID [flags]

Adds a sending account. --provider-account-id is the Unipile account_id, the
Altegio location_id, or any label for Partoo. What the account does not set
(limits, gaps) runs on its provider's defaults unless --pacing unlimited
(docs/pacing.md). Credentials are never stored:
--credentials REF picks UNIPILE_API_KEY_REF (PARTOO_API_KEY_REF, ...) from
the workers' environment; "default" picks UNIPILE_API_KEY. Values that
cannot work (an unknown time zone, a gap over a day, a window over 366
days) are refused with exit 2; docs/accounts.md lists the rules.`)
	prov := fs.String("provider", "", "unipile, partoo or altegio (required)")
	pid := fs.String("provider-account-id", "", "the provider's account reference (required)")
	creds := fs.String("credentials", "default", "credentials reference ([a-z0-9_]+)")
	tz := fs.String("timezone", "UTC", "the account's time zone (IANA name)")
	gap := fs.Duration("min-gap", 0, "minimum time between two invitations (0: the provider's default)")
	jitter := fs.Duration("jitter", 0, "random extra gap, up to this")
	pacing := fs.String("pacing", store.PacingDefault, "default (the provider's defaults for what the account does not set) or unlimited (opt out)")
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
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := st.CreateAccount(ctx, store.NewAccount{Name: pos[1], Provider: *prov, ProviderAccountID: *pid,
		CredentialsRef: *creds, Timezone: *tz, MinGap: *gap, GapJitter: *jitter, Limits: limits, Pacing: *pacing})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "account %q added (id %d, pacing %s; outreach limits show %s)\n", pos[1], id, *pacing, pos[1])
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
