package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

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

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
