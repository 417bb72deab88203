package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/outreach-dev/outreach/store"
)

// loadAcceptances reads the acceptance rates for `outreach status`: all of
// them, or those of one account (its account and campaign rows) or one
// campaign (its row and its account's).
func loadAcceptances(ctx context.Context, st *store.Store, account string, campaignID int64) ([]store.AcceptanceRate, error) {
	rates, err := st.AcceptanceRates(ctx)
	if err != nil {
		return nil, err
	}
	if rates == nil {
		rates = []store.AcceptanceRate{}
	}
	if account == "" && campaignID == 0 {
		return rates, nil
	}
	return slices.DeleteFunc(rates, func(r store.AcceptanceRate) bool {
		switch r.Scope {
		case store.RateAccount:
			return r.Account != account
		case store.RateCampaign:
			return r.Account != account || campaignID != 0 && r.CampaignID != campaignID
		}
		return true
	}), nil
}

// printAcceptances prints the ACCEPTANCES section of `outreach status`.
func printAcceptances(w io.Writer, rates []store.AcceptanceRate) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ACCEPTANCES (accepted / sent)")
	if len(rates) == 0 {
		fmt.Fprintln(w, "  (no invitation sent yet)")
	}
	tmpl := 0
	for _, r := range rates {
		var what string
		switch r.Scope {
		case store.RateAccount:
			what = "account " + r.Account
		case store.RateCampaign:
			what = fmt.Sprintf("campaign #%d %s", r.CampaignID, r.Campaign)
		case store.RateTemplate:
			tmpl++
			t := strings.Join(strings.Fields(r.Template), " ")
			if t == "" {
				t = "(no note)"
			} else if len([]rune(t)) > 50 {
				t = string([]rune(t)[:49]) + "…"
			}
			what = fmt.Sprintf("template %d %q (%d campaigns)", tmpl, t, r.Campaigns)
		}
		fmt.Fprintf(w, "  %-60s %5.1f%%  %d / %d\n", what, 100*r.Rate, r.Accepted, r.Sent)
	}
}
