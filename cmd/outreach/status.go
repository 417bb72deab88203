package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

// statusReport is what `status --json` prints.
type statusReport struct {
	Time      time.Time          `json:"time"`
	Campaigns []*report.Campaign `json:"campaigns"`
	Accounts  []*report.Account  `json:"accounts"`
	// Acceptances are the acceptance rates per account, campaign and
	// message template (acceptances.go).
	Acceptances []store.AcceptanceRate `json:"acceptances"`
	Webhooks    []webhookStatus        `json:"webhooks,omitempty"`
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "status", `status [flags]

Per campaign: a progress bar, targets by status, the main reasons for
skips and failures, and why the targets that are not done wait and until
when. Per account: status, pause reason and end, why it sends nothing now
(working hours, a full window, the gap) and until when, how it is paced
(its own settings, its provider's defaults, or unlimited) and the budget
used and left in each limit window. docs/waiting.md explains each reason.`)
	asJSON := fs.Bool("json", false, "print JSON (for scripts)")
	campaign := fs.String("campaign", "", "only this campaign (name or id) and its account")
	account := fs.String("account", "", "only this account and its campaigns")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := loadStatus(ctx, st, *campaign, *account)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printStatus(env.Stdout, r)
	return nil
}

func loadStatus(ctx context.Context, st *store.Store, campaign, account string) (*statusReport, error) {
	r := &statusReport{Time: time.Now().UTC()}
	name, campaignID := "", int64(0)
	if campaign != "" {
		c, err := campaignByRef(ctx, st, campaign)
		if err != nil {
			return nil, err
		}
		name, campaignID = c.Name, c.ID
		a, err := st.Account(ctx, c.AccountID)
		if err != nil {
			return nil, err
		}
		account = a.Name
	}
	if account != "" {
		if _, err := accountByRef(ctx, st, account); err != nil {
			return nil, err
		}
	}
	var err error
	if r.Campaigns, err = report.Campaigns(ctx, st, name); err != nil {
		return nil, err
	}
	if campaign != "" {
		r.Campaigns = slices.DeleteFunc(r.Campaigns, func(c *report.Campaign) bool {
			return c.ID != campaignID
		})
	}
	if r.Accounts, err = report.Accounts(ctx, st, account); err != nil {
		return nil, err
	}
	if account != "" && campaign == "" {
		r.Campaigns = slices.DeleteFunc(r.Campaigns, func(c *report.Campaign) bool { return c.Account != account })
	}
	if r.Acceptances, err = loadAcceptances(ctx, st, account, campaignID); err != nil {
		return nil, err
	}
	if r.Webhooks, err = loadWebhookStatus(ctx, st); err != nil {
		return nil, err
	}
	return r, nil
}

func printStatus(w io.Writer, r *statusReport) {
	fmt.Fprintln(w, "CAMPAIGNS")
	if len(r.Campaigns) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, c := range r.Campaigns {
		printCampaign(w, c)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ACCOUNTS")
	if len(r.Accounts) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, a := range r.Accounts {
		printAccount(w, a, r.Time)
	}
	printAcceptances(w, r.Acceptances)
	printWebhooks(w, r.Webhooks)
}

func printCampaign(w io.Writer, c *report.Campaign) {
	fmt.Fprintf(w, "  #%d %s  (account %s, %s)\n", c.ID, c.Name, c.Account, c.Status)
	frac := 0.0
	if c.Total > 0 {
		frac = float64(c.Done()) / float64(c.Total)
	}
	fmt.Fprintf(w, "     %s  %d/%d done\n", bar(frac, 30), c.Done(), c.Total)
	var counts []string
	for _, s := range report.Statuses {
		counts = append(counts, fmt.Sprintf("%s %d", s, c.Counts[s]))
	}
	fmt.Fprintf(w, "     %s\n", strings.Join(counts, "  "))
	for _, status := range []string{"skipped", "failed"} {
		var rs []string
		for _, r := range c.Reasons {
			if r.Status == status {
				rs = append(rs, fmt.Sprintf("%s %d", r.Reason, r.Count))
			}
		}
		if len(rs) > 0 {
			fmt.Fprintf(w, "     %s: %s\n", status, strings.Join(rs, ", "))
		}
	}
	for _, g := range c.Waiting {
		line := fmt.Sprintf("%d %s", g.Count, g.Reason)
		if g.UntilLocal != "" {
			until := " until "
			if g.Wait == "queued" {
				until = ", due at "
			}
			if g.Count > 1 {
				until = ", the first" + strings.TrimPrefix(until, ",")
			}
			line += until + g.UntilLocal
		}
		fmt.Fprintf(w, "     waiting: %s\n", line)
	}
}

// waitText renders an account wait: "outside working hours until
// 2026-12-01 09:00 Europe/Paris".
func waitText(aw report.AccountWait) string {
	s := aw.Reason
	if aw.UntilLocal != "" && aw.Wait != "account_paused" {
		s += " until " + aw.UntilLocal
	}
	if aw.Action != "" {
		s = aw.Action + "s: " + s
	}
	return s
}

func printAccount(w io.Writer, a *report.Account, now time.Time) {
	state := a.Status
	switch {
	case a.Status == "paused" && a.PausedUntil != nil:
		state = fmt.Sprintf("paused until %s (in %s)", a.PausedUntil.UTC().Format("2006-01-02 15:04:05 UTC"),
			a.PausedUntil.Sub(now).Round(time.Second))
	}
	if a.PauseReason != "" && a.Status != "active" {
		state += ": " + a.PauseReason
	}
	fmt.Fprintf(w, "  %s  (%s, #%d)  %s  %d sent\n", a.Name, a.Provider, a.ID, state, a.Sent)
	for _, aw := range a.Waits {
		if aw.Wait == "account_paused" || aw.Wait == "account_disabled" {
			if aw.Wait == "account_disabled" {
				fmt.Fprintf(w, "     sends nothing: %s\n", aw.Reason)
			}
			continue // the state above says it
		}
		fmt.Fprintf(w, "     sends nothing now: %s\n", waitText(aw))
	}
	var gaps []string
	for _, p := range a.Paces {
		if p.GapSource != "" {
			gaps = append(gaps, fmt.Sprintf("%s gap %s (%s)", p.Action, p.GapText, p.GapSource))
		}
	}
	if len(gaps) == 0 {
		gaps = append(gaps, "no gaps")
	}
	fmt.Fprintf(w, "     pacing %s: %s\n", pacingLabel(a), strings.Join(gaps, ", "))
	if a.Warmup != nil {
		fmt.Fprintf(w, "     warm-up: %s\n", a.Warmup.Text())
	}
	if len(a.Windows) == 0 {
		fmt.Fprintln(w, "     no limits")
	}
	for _, win := range a.Windows {
		frac := 0.0
		if win.Max > 0 {
			frac = float64(win.Used) / float64(win.Max)
		}
		fmt.Fprintf(w, "     %-6s per %-6s %s  %d used, %d left of %d (%s)\n", win.Action, win.PerText, bar(frac, 20), win.Used, win.Left, win.Max, win.Source)
	}
}
