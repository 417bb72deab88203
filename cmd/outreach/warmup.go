package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

func runWarmup(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "warmup", `warmup show|start|stop ACCOUNT [flags]

A warm-up ramp grows an account's daily invitation budget stage by stage up
to its limits, and steps back one stage when the provider warns
(docs/warmup.md). 'show' prints where the account's ramp stands; 'start'
puts the account on a ramp from its first stage (replacing any it had;
flags left out take its provider's defaults); 'stop' ends the ramp, so its
limits apply in full at once. New Unipile accounts start on a ramp unless
added with --no-warmup.

  outreach warmup start li-alice --start 5 --step 5 --full 80 --every 1d
  outreach warmup show li-alice`)
	start := fs.Int("start", 0, "start: daily budget of the first stage (0: the provider's default)")
	step := fs.Int("step", 0, "start: what each stage adds (0: the provider's default)")
	full := fs.Int("full", 0, "start: daily budget that ends the ramp (0: the account's daily invitation limit)")
	every := fs.String("every", "", "start: how long a stage lasts (1d, 12h; empty: the provider's default)")
	hold := fs.String("hold", "", "start: how long a provider's warning holds the ramp (3d; empty: the provider's default)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != "show" && pos[0] != "start" && pos[0] != "stop") {
		return usagef("want `warmup show|start|stop ACCOUNT`")
	}
	var ws store.WarmupSettings
	ws.StartCount, ws.StepCount, ws.FullCount = *start, *step, *full
	for _, d := range []struct {
		flag, val string
		dst       *time.Duration
	}{{"--every", *every, &ws.Step}, {"--hold", *hold, &ws.HoldFor}} {
		if d.val == "" {
			continue
		}
		if *d.dst, err = parseWindow(d.val); err != nil {
			return usagef("%s: %v", d.flag, err)
		}
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
	switch pos[0] {
	case "start":
		if err := st.SetWarmup(ctx, a.ID, ws); err != nil {
			return err
		}
	case "stop":
		had, err := st.EndWarmup(ctx, a.ID)
		if err != nil {
			return err
		}
		if !had {
			fmt.Fprintf(env.Stdout, "account %q has no warm-up ramp\n", a.Name)
		} else {
			fmt.Fprintf(env.Stdout, "account %q: warm-up ended, its limits apply in full\n", a.Name)
		}
		return nil
	}
	w, err := st.Warmup(ctx, a.ID)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(env.Stdout, "account %q has no warm-up ramp (outreach warmup start %s)\n", a.Name, a.Name)
		return nil
	}
	if err != nil {
		return err
	}
	rw := &report.Warmup{Day: w.Day, Today: w.Today, FullCount: w.FullCount, Done: w.Done, StepCount: w.StepCount,
		Step: report.FormatDuration(w.Step), LastWarning: w.LastWarning}
	if !w.HeldUntil.IsZero() {
		rw.HeldUntil = &w.HeldUntil
	}
	fmt.Fprintf(env.Stdout, "account %q: %s\n", a.Name, rw.Text())
	return nil
}
