package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// demoPolicy is the outcome policy compressed to demo time: pauses and
// deferrals of seconds instead of hours.
func demoPolicy() worker.Policy {
	return worker.Policy{
		RateLimitBackoff: 2 * time.Second, RateLimitMax: 20 * time.Second,
		LimitExceededPause: 8 * time.Second, LimitExceededMax: 30 * time.Second,
		ResendDefer: 2 * time.Second, ResendDeferMax: 10 * time.Second,
		ResendEscalateCount: 3, ResendEscalateWindow: 30 * time.Second, ResendEscalatePause: 10 * time.Second,
		AlreadyInvitedDefer: time.Second, AlreadyInvitedMax: 2,
		TransientAttempts: 3, TransientBackoff: 500 * time.Millisecond, TransientBackoffMax: 3 * time.Second,
		UsageSlowdown: 10 * time.Second, UsagePause: 8 * time.Second,
	}
}

// startDemoSimulator serves the provider simulator on a free loopback
// port until ctx ends.
func startDemoSimulator(ctx context.Context) (*simulator.Simulator, string, <-chan struct{}, error) {
	sim := simulator.New(simulator.Config{Latency: 80 * time.Millisecond, Jitter: 150 * time.Millisecond, Seed: 7})
	sim.SetAcceptance(demoAcceptance)
	ready := make(chan string, 1)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		err := sim.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { ready <- "http://" + a.String() })
		if err != nil && err != http.ErrServerClosed && ctx.Err() == nil {
			errc <- err
		}
	}()
	select {
	case u := <-ready:
		return sim, u, done, nil
	case err := <-errc:
		return nil, "", nil, fmt.Errorf("start the simulator: %w", err)
	case <-time.After(10 * time.Second):
		return nil, "", nil, fmt.Errorf("start the simulator: not listening after 10s")
	}
}

var demoFirst = []string{"jane", "lucas", "sofia", "noah", "chloe", "liam", "emma", "mateo", "ines", "hugo", "maya", "leo", "zoe", "omar", "nina", "ravi"}
var demoLast = []string{"doe", "martin", "bernard", "dubois", "smith", "garcia", "muller", "rossi", "nguyen", "kowalski", "silva", "petit"}

// demoLinkedInGaps pace the demo's LinkedIn calls other than invitations
// as the invitations are, compressed from minutes to a second or less:
// profile lookups, relation polls (which see acceptances) and withdrawals.
var demoLinkedInGaps = []store.Gap{
	{Action: store.ActionLookup, Min: 200 * time.Millisecond, Jitter: 200 * time.Millisecond},
	{Action: store.ActionPoll, Min: time.Second, Jitter: time.Second},
	{Action: store.ActionWithdraw, Min: 300 * time.Millisecond, Jitter: 300 * time.Millisecond},
}

// demoLinkedInLimits are the demo's LinkedIn limits, compressed: 5
// invitations per 10 seconds, and room for a poll every second or two and
// for every withdrawal the run makes (Unipile's defaults, 48 polls and 50
// withdrawals a day, would show none).
var demoLinkedInLimits = []store.Limit{
	{Action: store.ActionInvite, Max: 5, Per: 10 * time.Second},
	{Action: store.ActionLookup, Max: 20, Per: 10 * time.Second},
	{Action: store.ActionPoll, Max: 60, Per: time.Minute},
	{Action: store.ActionWithdraw, Max: 60, Per: time.Minute},
}

// demoAcceptance makes about half of the people accept the demo's
// LinkedIn invitations, 3 to 7 seconds after they are sent.
var demoAcceptance = simulator.Acceptance{Probability: 0.5, Delay: 3 * time.Second, Jitter: 4 * time.Second, Seed: 7}

// demoWithdrawAfter is how long a LinkedIn invitation of the demo stays
// unanswered before it is withdrawn (campaigns.withdraw_after): well
// after the acceptances come, within the run.
const demoWithdrawAfter = 20 * time.Second

// demoPollConfig polls a demo account's relations every 2 seconds while it
// has invitations awaiting an answer (instead of every 30 minutes), within
// its poll pacing (demoLinkedInGaps, demoLinkedInLimits).
var demoPollConfig = worker.PollConfig{Pending: 2 * time.Second, Idle: 10 * time.Second, Unhealthy: 5 * time.Second, HealthPause: 10 * time.Second}

// demoSeed is what seedDemo created: the campaigns, and among them those
// whose invitations left unanswered are withdrawn during the run.
type demoSeed struct {
	campaigns   []int64
	withdrawing map[int64]bool
}

const demoNote = "I enjoyed your post about outbound at {{.Vars.company}}; would love to connect."

// seedDemo creates the demo's accounts, campaigns and targets, and
// registers the provider-side limits and refusals with the simulator. The
// LinkedIn campaigns withdraw their invitations left unanswered after
// demoWithdrawAfter.
func seedDemo(ctx context.Context, st *store.Store, sim *simulator.Simulator, n int, now time.Time) (*demoSeed, error) {
	stamp := now.UTC().Format("150405")
	companies := []string{"Acme", "Globex", "Initech", "Hooli", "Northwind", "Umbrella"}
	name := func(i int) (string, string) {
		return demoFirst[i%len(demoFirst)], demoLast[(i/len(demoFirst)+i)%len(demoLast)]
	}
	linkedIn := func(n int, seed int, special []store.NewTarget) []store.NewTarget {
		out := special
		for i := 0; len(out) < n; i++ {
			f, l := name(seed + i)
			out = append(out, store.NewTarget{
				Identifier: fmt.Sprintf("https://www.linkedin.com/in/%s-%s-%d%d/?utm_source=demo", f, l, seed, i),
				Vars:       map[string]any{"company": companies[i%len(companies)]},
			})
		}
		return out
	}
	long := strings.Repeat("I would love to tell you all about what we do. ", 8)
	type demoAccount struct {
		name, provider string
		limits         []store.Limit
		gap, jitter    time.Duration
		gaps           []store.Gap // of other actions than invitations
		message        string
		options        map[string]any
		targets        []store.NewTarget
		targetsExtra   []store.NewTarget
		scenarios      []simulator.Scenario
		withdrawAfter  time.Duration // of its campaign; 0: the account's
	}
	accounts := []demoAccount{
		{
			name: "demo-li-alice", provider: "unipile", gap: time.Second, jitter: time.Second, gaps: demoLinkedInGaps,
			limits: demoLinkedInLimits, withdrawAfter: demoWithdrawAfter,
			message: "Hi {{.FirstName}}, " + demoNote,
			targets: linkedIn(n, 0, []store.NewTarget{
				{Identifier: "https://www.linkedin.com/in/connected-paul-durand/", Vars: map[string]any{"company": "Acme"}},
				{Identifier: "connected-lea-roux", Vars: map[string]any{"company": "Acme"}},
				{Identifier: "https://www.linkedin.com/in/pending-marc-blanc/", Vars: map[string]any{"company": "Acme"}},
				{Identifier: "https://www.linkedin.com/company/acme/", Vars: map[string]any{"company": "Acme"}},    // not a person: malformed
				{Identifier: "https://www.linkedin.com/in/anna-long-note/", Vars: map[string]any{"company": long}}, // message over 300 characters
				{Identifier: "https://www.linkedin.com/in/rita-slow-down/", Vars: map[string]any{"company": "Acme"}},
			}),
			// Unipile answers 429 with Retry-After once: the account pauses
			// for those seconds.
			scenarios: []simulator.Scenario{{Recipient: simulator.ProviderID("rita-slow-down"), Error: "too_many_requests", RetryAfter: 3 * time.Second, Times: 1}},
		},
		{
			name: "demo-li-bob", provider: "unipile", gap: time.Second, jitter: time.Second, gaps: demoLinkedInGaps,
			limits: demoLinkedInLimits, withdrawAfter: demoWithdrawAfter,
			message: "Hi {{.FirstName}}, " + demoNote,
			targets: linkedIn(n, 100, []store.NewTarget{
				{Identifier: "https://www.linkedin.com/in/unknown-ghost-profile/", Vars: map[string]any{"company": "Globex"}},
				{Identifier: "connected-ines-faure", Vars: map[string]any{"company": "Globex"}},
				{Identifier: "https://www.linkedin.com/in/fail-blocked_recipient-tom-lee/", Vars: map[string]any{"company": "Globex"}},
			}),
			// The provider says its daily limit is reached when Sam is
			// invited: the account pauses, Sam's invitation waits and goes
			// out after the pause.
			targetsExtra: []store.NewTarget{{Identifier: "https://www.linkedin.com/in/sam-limit-hit/", Vars: map[string]any{"company": "Globex"}}},
			scenarios:    []simulator.Scenario{{Recipient: simulator.ProviderID("sam-limit-hit"), Error: "limit_exceeded", Times: 1}},
		},
		{
			name: "demo-altegio-salon", provider: "altegio", gap: 500 * time.Millisecond,
			limits:  []store.Limit{{Action: "invite", Max: 5, Per: 10 * time.Second}},
			options: map[string]any{"user_role": "worker", "position": "Stylist"},
		},
	}
	var altegio []store.NewTarget
	altegio = append(altegio, store.NewTarget{Identifier: "not-an-email@", Vars: map[string]any{}},
		store.NewTarget{Identifier: "+33 6 12 34 56 78", Vars: map[string]any{}})
	for i := 0; len(altegio) < n; i++ {
		f, l := name(200 + i)
		altegio = append(altegio, store.NewTarget{Identifier: fmt.Sprintf("%s.%s%d@example.com", f, l, i), Vars: map[string]any{}})
	}
	accounts[2].targets = altegio

	seed := &demoSeed{withdrawing: map[int64]bool{}}
	for _, a := range accounts {
		ref := a.name + "-" + stamp
		if a.provider == "altegio" {
			ref = fmt.Sprint(100000 + now.Unix()%900000) // a numeric location_id
		}
		id, err := st.CreateAccount(ctx, store.NewAccount{Name: a.name + "-" + stamp, Provider: provider.Name(a.provider), ProviderAccountID: ref,
			MinGap: a.gap, GapJitter: a.jitter, Gaps: a.gaps, Limits: a.limits, NoWarmup: true})
		if err != nil {
			return nil, err
		}
		for _, sc := range a.scenarios {
			sc.Provider, sc.Account = provider.Name(a.provider), ref
			sim.AddScenario(sc)
		}
		if len(a.targetsExtra) > 0 {
			a.targets = append(a.targets[:len(a.targets)-len(a.targetsExtra)], a.targetsExtra...)
		}
		cid, err := st.CreateCampaign(ctx, store.Campaign{Name: strings.TrimPrefix(a.name, "demo-") + "-campaign-" + stamp,
			AccountID: id, MessageTemplate: a.message, ProviderOptions: a.options, WithdrawAfter: a.withdrawAfter})
		if err != nil {
			return nil, err
		}
		if _, err := st.AddTargets(ctx, cid, a.targets); err != nil {
			return nil, err
		}
		seed.campaigns = append(seed.campaigns, cid)
		if a.withdrawAfter > 0 {
			seed.withdrawing[cid] = true
		}
	}
	return seed, nil
}

// demoMetrics counts account pauses for the summary, and passes
// everything on to the process's metrics.
type demoMetrics struct {
	*metrics.Metrics
	mu     sync.Mutex
	pauses map[string]map[string]int // account → kind → count
}

func (d *demoMetrics) AccountPaused(p, account, kind string) {
	if kind == "" {
		kind = "other"
	}
	d.Metrics.AccountPaused(p, account, kind)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pauses[account] == nil {
		d.pauses[account] = map[string]int{}
	}
	d.pauses[account][kind]++
}

func (d *demoMetrics) snapshot() map[string]map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]map[string]int{}
	for a, kinds := range d.pauses {
		out[a] = map[string]int{}
		for k, n := range kinds {
			out[a][k] = n
		}
	}
	return out
}

// demoFollowUp sums the follow-ups of the demo's campaigns that withdraw
// their unanswered invitations (the LinkedIn ones: Altegio's invitations
// are neither accepted nor withdrawn through the provider).
func demoFollowUp(seed *demoSeed, follow map[int64]store.FollowUp) store.FollowUp {
	var sum store.FollowUp
	for id, f := range follow {
		if seed.withdrawing[id] {
			sum.Sent += f.Sent
			sum.Accepted += f.Accepted
			sum.Withdrawn += f.Withdrawn
			sum.Gone += f.Gone
			sum.Open += f.Open
		}
	}
	return sum
}

// demoProgressLine renders one line of live progress, and whether the run
// is over: every target done, and every invitation of a campaign that
// withdraws them accepted, withdrawn or gone.
func demoProgressLine(camps []*report.Campaign, accounts []*report.Account, fu store.FollowUp, elapsed time.Duration) (string, bool) {
	total, done := 0, 0
	counts := map[string]int{}
	for _, c := range camps {
		total += c.Total
		done += c.Done()
		for s, n := range c.Counts {
			counts[s] += n
		}
	}
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	line := fmt.Sprintf("[%3ds] %s  sent %d  skipped %d  failed %d  waiting %d",
		int(elapsed.Seconds()), bar(frac, 20), counts["sent"], counts["skipped"], counts["failed"],
		counts["pending"]+counts["queued"]+counts["sending"])
	line += fmt.Sprintf("  | accepted %d  withdrawn %d  unanswered %d", fu.Accepted, fu.Withdrawn, fu.Open)
	var paused []string
	for _, a := range accounts {
		if a.Status != "active" {
			paused = append(paused, fmt.Sprintf("%s %s (%s)", a.Name, a.Status, a.PauseReason))
		}
	}
	if len(paused) > 0 {
		line += "  | " + strings.Join(paused, "; ")
	}
	return line, total > 0 && done == total && fu.Open == 0
}

// printDemoSummary prints the campaigns (with their invitations accepted
// and withdrawn), what became of the invitations, and the accounts.
func printDemoSummary(w io.Writer, camps []*report.Campaign, accounts []*report.Account, follow map[int64]store.FollowUp,
	fu store.FollowUp, pauses map[string]map[string]int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMPAIGN\tACCOUNT\tTARGETS\tSENT\tSKIPPED\tFAILED\tWAITING\tACCEPTED\tWITHDRAWN\tTOP REASONS")
	for _, c := range camps {
		var rs []string
		for _, r := range c.Reasons {
			rs = append(rs, fmt.Sprintf("%s %s ×%d", r.Status, r.Reason, r.Count))
		}
		f := follow[c.ID]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", c.Name, c.Account, c.Total, c.Counts["sent"], c.Counts["skipped"],
			c.Counts["failed"], c.Total-c.Done(), f.Accepted, f.Withdrawn, strings.Join(rs, "; "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nLinkedIn invitations sent %d: accepted %d (seen by polling the relations), withdrawn %d (unanswered after %s), "+
		"gone from the sent list before their withdrawal %d, still unanswered %d\n\n", fu.Sent, fu.Accepted, fu.Withdrawn, demoWithdrawAfter, fu.Gone, fu.Open)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tPROVIDER\tINVITES SENT\tSTATUS\tPAUSES\tLIMITS NOW")
	for _, a := range accounts {
		var ps []string
		kinds := make([]string, 0, len(pauses[a.Name]))
		for k := range pauses[a.Name] {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			ps = append(ps, fmt.Sprintf("%s ×%d", k, pauses[a.Name][k]))
		}
		if len(ps) == 0 {
			ps = []string{"none"}
		}
		var ws []string
		for _, win := range a.Windows {
			ws = append(ws, fmt.Sprintf("%s %d/%d per %s", win.Action, win.Used, win.Max, win.PerText))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", a.Name, a.Provider, a.Sent, a.Status, strings.Join(ps, ", "), strings.Join(ws, ", "))
	}
	tw.Flush()
}
