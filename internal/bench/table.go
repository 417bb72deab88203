package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteTable prints the results as one Markdown table.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| # | measure | result | target |\n|---|---|---|---|\n")
	row := func(n, what, got, want string) { fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", n, what, got, want) }
	if t := r.Throughput; t != nil {
		row("1", fmt.Sprintf("pipeline throughput, %d targets over %d accounts, limits off, %d handlers", t.Targets, t.Accounts, t.Concurrency),
			fmt.Sprintf("%.0f targets/s (%s; CPU busy %.0f%%)", t.PipelineRate(), round(t.Pipeline), 100*t.CPU), "")
		row("1", fmt.Sprintf("bare asynq, %d no-op tasks, %d handlers, same Redis", t.Targets, t.Concurrency),
			fmt.Sprintf("%.0f tasks/s (%s)", t.AsynqRate(), round(t.Asynq)), "")
		row("1", "pipeline / bare asynq", fmt.Sprintf("**%.0f%%**", 100*t.Ratio()), "≥ 60%")
		if t.Cost != nil {
			row("1", "Postgres cost per target (pipeline run)", t.Cost.String(), "")
		}
	}
	if a := r.Accuracy; a != nil {
		var ws []string
		for _, w := range a.Windows {
			ws = append(ws, w.String())
		}
		setup := fmt.Sprintf("%d accounts, limits %s, %d worker servers × %d handlers, %s", a.Accounts, strings.Join(ws, " + "),
			a.Workers, a.Concurrency, round(a.Duration))
		row("2", "limit violations ("+setup+")", fmt.Sprintf("**%d** (provider refusals: %d)", a.Violations, a.Refused), "0")
		row("2", "utilisation (sends made / sends allowed while work waited)",
			fmt.Sprintf("**%.1f%%** (%d of %d over %s; %d scheduler ticks, mean %s, max %s)", 100*a.Utilisation(), a.Used, a.Allowed,
				round(a.Span), a.Ticks, ms(a.TickMean), ms(a.TickMax)), "≥ 95%")
		if a.Cost != nil {
			row("2", "Postgres cost per invitation sent (accuracy run)", a.Cost.String(), "")
		}
	}
	for _, s := range r.Scale {
		size := count(s.Targets)
		row("3", fmt.Sprintf("scheduler tick at %s targets (%d waiting, %d accounts): first (enqueues %d) / steady", size, s.Pending, s.Accounts, s.Enqueued),
			fmt.Sprintf("%s / **%s**", ms(s.FirstTick), ms(s.Tick)), "10M within 1.5× of 100k")
		row("3", fmt.Sprintf("due-target query / AccountsWithWork at %s targets", size), fmt.Sprintf("%s / %s", ms(s.DueQuery), ms(s.AccountsQuery)), "")
		row("3", fmt.Sprintf("Redis used_memory at %s targets (empty → after first tick)", size),
			fmt.Sprintf("%s → %s", mib(s.RedisEmpty), mib(s.RedisBytes)), "horizon only")
	}
	if len(r.Scale) >= 2 {
		a, z := r.Scale[0], r.Scale[len(r.Scale)-1]
		row("3", fmt.Sprintf("steady tick %s / %s", count(z.Targets), count(a.Targets)),
			fmt.Sprintf("**%.2f×**", float64(z.Tick)/float64(a.Tick)), "≤ 1.5×")
	}
	if wk := r.Wakeup; wk != nil {
		row("4", fmt.Sprintf("wake-up, insert → invitation recorded, %d samples (poll %s, task check %s)", wk.Samples, wk.PollInterval, wk.TaskCheckInterval),
			fmt.Sprintf("p50 %s, **p99 %s** (max %s)", ms(wk.P50), ms(wk.P99), ms(wk.Max)), "p99 < 1 s")
	}
	if m := r.Memory; m != nil {
		row("5", fmt.Sprintf("resident memory (VmRSS) at %d accounts, processes of the binary, %s (%d of %d targets sent)", m.Accounts, round(m.Duration), m.Sent, m.Targets),
			fmt.Sprintf("scheduler %s (peak %s), worker %s (peak %s)", mib(m.SchedulerEnd), mib(m.SchedulerPeak), mib(m.WorkerEnd), mib(m.WorkerPeak)), "")
	}
	if rc := r.Recovery; rc != nil {
		row("6", fmt.Sprintf("recovery, worker SIGKILLed with invitations in flight → first settling lookup, %d kills, %d orphans (lease %s)",
			rc.Samples, rc.Orphans, rc.Lease),
			fmt.Sprintf("p50 %s, **max %s**; people invited twice: %d", round(rc.P50), round(rc.Max), rc.Repeats), "< 10 s, 0")
	}
	if p := r.Pool; p != nil {
		var ws []string
		for _, w := range p.Windows {
			ws = append(ws, w.String())
		}
		row("7", fmt.Sprintf("sender pool: one campaign over %d accounts, limits %s, %d worker servers × %d handlers, %s: utilisation (sends made / pooled budget while work waited)",
			p.Accounts, strings.Join(ws, " + "), p.Workers, p.Concurrency, round(p.Duration)),
			fmt.Sprintf("**%.1f%%** (%d of %d over %s; limit violations %d; idle senders %d)", 100*p.Utilisation(), p.Used, p.Allowed,
				round(p.Span), p.Violations, p.Idle), "≥ 95%")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func round(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
