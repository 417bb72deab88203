package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// parseArgs parses flags that may come before, between or after the
// positional arguments (`pause account NAME --until 2h`), and returns the
// positional ones. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseWindow parses a window length: a Go duration (90s, 24h, 168h) or a
// number of days or weeks (1d, 7d, 2w).
func parseWindow(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil || f <= 0 {
				return 0, fmt.Errorf("window %q: want a positive number of days or weeks (7d, 2w)", s)
			}
			if f*float64(unit) >= float64(math.MaxInt64) {
				return 0, fmt.Errorf("window %q is too long (limits take at most 366 days)", s)
			}
			return time.Duration(f * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("window %q: want a positive duration such as 10s, 24h, 7d or 2w", s)
	}
	return d, nil
}

// parseLimit parses MAX/WINDOW ("25/24h", "100/7d") for action.
func parseLimit(action, s string) (store.Limit, error) {
	if a := store.Action(action); a != store.ActionInvite && a != store.ActionLookup {
		return store.Limit{}, fmt.Errorf("action %q: want invite or lookup", action)
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return store.Limit{}, fmt.Errorf("limit %q: want MAX/WINDOW, such as 25/24h or 100/7d", s)
	}
	max, err := strconv.Atoi(n)
	if err != nil || max <= 0 {
		return store.Limit{}, fmt.Errorf("limit %q: the maximum must be a positive whole number", s)
	}
	per, err := parseWindow(w)
	if err != nil {
		return store.Limit{}, err
	}
	return store.Limit{Action: store.Action(action), Max: max, Per: per}, nil
}

// parseLimits parses pairs of ACTION MAX/WINDOW ("invite 25/24h invite
// 100/7d") or single ACTION:MAX/WINDOW words.
func parseLimits(args []string) ([]store.Limit, error) {
	var out []store.Limit
	for i := 0; i < len(args); i++ {
		action, spec, ok := strings.Cut(args[i], ":")
		if !ok {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%q wants a limit after it, such as %s 25/24h", args[i], args[i])
			}
			action, spec = args[i], args[i+1]
			i++
		}
		l, err := parseLimit(action, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// parseGap parses a gap MIN[+JITTER] ("30s+1m", "2m", "0").
func parseGap(action, s string) (store.Gap, error) {
	minText, jitterText, _ := strings.Cut(s, "+")
	g := store.Gap{Action: store.Action(action)}
	for _, part := range []struct {
		text string
		d    *time.Duration
	}{{minText, &g.Min}, {jitterText, &g.Jitter}} {
		if part.text == "" || part.text == "0" {
			continue
		}
		d, err := parseWindow(part.text)
		if err != nil {
			return g, fmt.Errorf("gap %q: want MIN[+JITTER], such as 30s+1m or 2m", s)
		}
		*part.d = d
	}
	return g, nil
}

// parsePacing parses what `limits set` takes: pairs of ACTION MAX/WINDOW
// or single ACTION:MAX/WINDOW words (as parseLimits), and ACTION gap
// MIN[+JITTER] triples.
func parsePacing(args []string) ([]store.Limit, []store.Gap, error) {
	var limits []store.Limit
	var gaps []store.Gap
	for i := 0; i < len(args); i++ {
		if i+2 < len(args) && args[i+1] == "gap" {
			if a := store.Action(args[i]); a != store.ActionInvite && a != store.ActionLookup {
				return nil, nil, fmt.Errorf("action %q: want invite or lookup", args[i])
			}
			g, err := parseGap(args[i], args[i+2])
			if err != nil {
				return nil, nil, err
			}
			gaps = append(gaps, g)
			i += 2
			continue
		}
		n := 1
		if !strings.Contains(args[i], ":") {
			n = 2
		}
		l, err := parseLimits(args[i:min(i+n, len(args))])
		if err != nil {
			return nil, nil, err
		}
		limits = append(limits, l...)
		i += n - 1
	}
	return limits, gaps, nil
}

// parseUntil parses --until: a duration from now (2h, 1d) or a time
// (RFC 3339, or 2006-01-02 15:04 in UTC).
func parseUntil(s string, now time.Time) (time.Time, error) {
	if d, err := parseWindow(s); err == nil {
		return now.Add(d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if !t.After(now) {
				return time.Time{}, fmt.Errorf("--until %s is in the past", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--until %q: want a duration (2h, 1d) or a time (2026-01-02T15:04:05Z)", s)
}

// campaignByRef finds a campaign by id or name.
func campaignByRef(ctx context.Context, st *store.Store, ref string) (*store.Campaign, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if c, err := st.Campaign(ctx, id); err == nil {
			return c, nil
		}
	}
	return st.CampaignByName(ctx, ref)
}

// accountByRef finds an account by name or id.
func accountByRef(ctx context.Context, st *store.Store, ref string) (*store.Account, error) {
	a, err := st.AccountByName(ctx, ref)
	if err == nil {
		return a, nil
	}
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		return st.Account(ctx, id)
	}
	return nil, err
}

// parseHours reads working hours START-END, such as 09:00-18:00 (the end
// may be 24:00); the end must come after the start on the same day.
func parseHours(v string) (start, end time.Duration, err error) {
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want START-END, such as 09:00-18:00")
	}
	if start, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	if end <= start {
		return 0, 0, fmt.Errorf("the end must come after the start (hours across midnight are not supported)")
	}
	return start, end, nil
}

// parseClock reads a time of day HH:MM, 00:00 to 24:00.
func parseClock(v string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(v), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (00:00 to 24:00)", v)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

var weekdayNumbers = map[string]int{"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}

// parseDays reads working days: ISO weekday numbers (1 = Monday) or
// three-letter names, separated by commas, with ranges such as mon-fri or
// 1-5; it returns them in order, each once.
func parseDays(v string) ([]int, error) {
	day := func(s string) (int, error) {
		s = strings.ToLower(strings.TrimSpace(s))
		if n, ok := weekdayNumbers[s]; ok {
			return n, nil
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= 7 {
			return n, nil
		}
		return 0, fmt.Errorf("%q is not a weekday (mon ... sun, or 1 = Monday ... 7 = Sunday)", s)
	}
	set := map[int]bool{}
	for _, part := range strings.Split(v, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := day(a)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = day(b); err != nil {
				return nil, err
			}
			if to < from {
				return nil, fmt.Errorf("range %q runs backwards (weeks start on Monday)", part)
			}
		}
		for d := from; d <= to; d++ {
			set[d] = true
		}
	}
	var out []int
	for d := 1; d <= 7; d++ {
		if set[d] {
			out = append(out, d)
		}
	}
	return out, nil
}
