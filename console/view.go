package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// accountView is an account with what its pages show computed once.
type accountView struct {
	*store.ConsoleAccount
	Local   time.Time // now in the account's zone
	Open    bool      // inside its working hours now
	OpensAt time.Time // next opening when closed (zero: never)
	Hours   string    // "09:00–18:00 Mon–Fri"
	Windows []windowView
	Paused  bool // paused or disabled
	Next    nextInvite
}

// nextInvite is when an account's next invitation may go at the earliest,
// and what holds it until then.
type nextInvite struct {
	At  time.Time // zero: now, or not known (Held)
	Why string    // what holds it; empty when nothing does
	// Held: no time is known: the account is disabled or paused until
	// resumed, calls still out fill a window, a limit allows none, or the
	// account has no working hours.
	Held bool
}

type windowView struct {
	store.WindowUse
	Label   string // "invite · 25 per 1d"
	Percent int    // used, 0..100
	Level   string // ok, warn, full
}

func newAccountView(a *store.ConsoleAccount, now time.Time) accountView {
	v := accountView{ConsoleAccount: a, Local: now.In(a.Location())}
	open := a.NextOpen(now)
	v.Open = open.Equal(now)
	if !v.Open {
		v.OpensAt = open
	}
	v.Hours = workHours(&a.Account)
	v.Paused = a.Status != store.AccountActive
	for _, w := range a.Windows {
		wv := windowView{WindowUse: w, Label: fmt.Sprintf("%s · %d per %s", w.Action, w.Max, shortDuration(w.Per))}
		if w.Max > 0 {
			wv.Percent = min(100, int(math.Round(100*float64(w.Used)/float64(w.Max))))
		}
		switch {
		case w.Left() == 0:
			wv.Level = "full"
		case wv.Percent >= 80:
			wv.Level = "warn"
		default:
			wv.Level = "ok"
		}
		v.Windows = append(v.Windows, wv)
	}
	v.Next = nextInviteOf(a, v.Windows, now)
	return v
}

// nextInviteOf says when the account's next invitation may go: the latest
// of the end of its pause, the moment each full invitation window has room
// again and the end of its gap, moved to its next working hour if that
// falls outside its hours. It is what the workers check before a call; a
// lookup window does not hold invitations.
func nextInviteOf(a *store.ConsoleAccount, windows []windowView, now time.Time) nextInvite {
	switch {
	case a.Status == store.AccountDisabled:
		return nextInvite{Why: "disabled until resumed", Held: true}
	case a.Status == store.AccountPaused && a.PausedUntil.IsZero():
		return nextInvite{Why: "paused until resumed", Held: true}
	}
	var n nextInvite
	hold := func(at time.Time, why string) {
		if at.After(now) && at.After(n.At) {
			n.At, n.Why = at, why
		}
	}
	if a.Status == store.AccountPaused {
		hold(a.PausedUntil, "paused")
	}
	for _, w := range windows {
		if w.Action != store.ActionInvite || w.Left() > 0 {
			continue
		}
		switch {
		case w.Max <= 0:
			return nextInvite{Why: "limit " + w.Label + " allows none", Held: true}
		case w.Held:
			return nextInvite{Why: "window " + w.Label + " full of calls still out", Held: true}
		}
		hold(w.FreesAt, "window "+w.Label+" full")
	}
	hold(a.NextSendAt, "gap between invitations")
	from := now
	if n.At.After(now) {
		from = n.At
	}
	open := a.NextOpen(from)
	switch {
	case open.IsZero():
		return nextInvite{Why: "no working days", Held: true}
	case open.After(from):
		n.At, n.Why = open, "outside working hours"
	}
	return n
}

var weekdays = []string{"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// workHours renders working hours as "09:00–18:00 Mon–Fri", or "always".
func workHours(a *store.Account) string {
	all := a.WorkStart <= 0 && a.WorkEnd >= 24*time.Hour
	days := daysText(a.WorkDays)
	if all && days == "every day" {
		return "always"
	}
	clock := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return fmt.Sprintf("%s–%s %s", clock(a.WorkStart), clock(a.WorkEnd), days)
}

func daysText(days []int) string {
	set := map[int]bool{}
	for _, d := range days {
		set[d] = true
	}
	if len(set) == 7 {
		return "every day"
	}
	if len(set) == 5 && !set[6] && !set[7] {
		return "Mon–Fri"
	}
	var names []string
	for d := 1; d <= 7; d++ {
		if set[d] {
			names = append(names, weekdays[d])
		}
	}
	if len(names) == 0 {
		return "never"
	}
	return strings.Join(names, " ")
}

// shortDuration renders a window as people say it: 1d, 7d, 12h, 30m, 2s.
func shortDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// campaignView is a campaign with its progress bar's segments.
type campaignView struct {
	*store.ConsoleCampaign
	Segments []segment
	Bars     []bar  // the non-empty segments placed on a 0..1000 axis
	Finish   string // estimated finish at the last day's pace
	DonePct  int
}

type bar struct {
	Class, Label string
	Count        int
	X, W         float64
}

type segment struct {
	Class, Label string
	Count        int
	Percent      float64
}

func newCampaignView(c *store.ConsoleCampaign, now time.Time) campaignView {
	v := campaignView{ConsoleCampaign: c}
	parts := []struct {
		class, label string
		n            int
	}{
		{"sent", "sent", c.Counts[string(store.TargetSent)]},
		{"skipped", "skipped", c.Counts[string(store.TargetSkipped)]},
		{"failed", "failed", c.Counts[string(store.TargetFailed)]},
		{"inflight", "in flight", c.Counts[string(store.TargetQueued)] + c.Counts[string(store.TargetSending)]},
		{"pending", "pending", c.Counts[string(store.TargetPending)]},
	}
	for _, p := range parts {
		s := segment{Class: p.class, Label: p.label, Count: p.n}
		if c.Total > 0 {
			s.Percent = math.Round(1000*float64(p.n)/float64(c.Total)) / 10
		}
		v.Segments = append(v.Segments, s)
	}
	x := 0.0
	for _, s := range v.Segments {
		if s.Count == 0 || c.Total == 0 {
			continue
		}
		w := 1000 * float64(s.Count) / float64(c.Total)
		v.Bars = append(v.Bars, bar{Class: s.Class, Label: s.Label, Count: s.Count, X: math.Round(x*10) / 10, W: math.Round(w*10) / 10})
		x += w
	}
	if c.Total > 0 {
		v.DonePct = int(100 * float64(c.Total-c.Waiting()) / float64(c.Total))
	}
	switch {
	case c.Total == 0:
		v.Finish = "no targets yet"
	case c.Waiting() == 0:
		v.Finish = "done"
	case c.Status != store.CampaignActive:
		v.Finish = "campaign " + string(c.Status)
	case c.SentDay == 0:
		v.Finish = "no sends in the last day"
	default:
		days := float64(c.Waiting()) / float64(c.SentDay)
		v.Finish = "≈ " + relative(now, now.Add(time.Duration(days*24*float64(time.Hour)))) + " at the last day's pace"
	}
	return v
}

func (c *Console) funcs() template.FuncMap {
	now := func() time.Time { return c.o.Now() }
	return template.FuncMap{
		// utc renders a time in the viewer's zone (replaced per request;
		// UTC here), "—" for the zero time.
		"utc": viewerTime(time.UTC),
		// local renders a time in a zone, short.
		"local": func(t time.Time, loc *time.Location) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("Mon 15:04 MST")
		},
		"rel": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return relative(now(), t)
		},
		"dur":  shortDuration,
		"pct":  func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"plus": func(a, b int) int { return a + b },
		"sub":  func(a, b int) int { return a - b },
		"statusClass": func(v any) string {
			// v is any status: a store.AccountStatus, TargetStatus,
			// CampaignStatus or Outcome, or its text.
			switch s := fmt.Sprint(v); s {
			case string(store.AccountActive), string(store.TargetSent), string(store.OutcomeResolved):
				return "good"
			case string(store.AccountPaused), string(store.TargetSkipped), string(store.TargetPending), string(store.TargetQueued),
				string(store.TargetSending), string(store.OutcomeRefused), string(store.OutcomeCached):
				return "warn"
			case string(store.AccountDisabled), string(store.TargetFailed), string(store.OutcomeError), string(store.OutcomeUnknown),
				string(store.CampaignDone):
				return "bad"
			}
			return "neutral"
		},
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}
}

// viewerTime renders a time in loc with the zone's abbreviation, "—" for
// the zero time.
func viewerTime(loc *time.Location) func(time.Time) string {
	return func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(loc).Format("Jan 2 15:04 MST")
	}
}

// relative renders t against now as "in 5m", "3h ago", "now".
func relative(now, t time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
	}
	var s string
	switch {
	case d < 30*time.Second:
		return "now"
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	case d < 48*time.Hour:
		h := int(d / time.Hour)
		m := int(d%time.Hour) / int(time.Minute)
		if m == 0 || h >= 10 {
			s = fmt.Sprintf("%dh", h)
		} else {
			s = fmt.Sprintf("%dh %dm", h, m)
		}
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// hourChart draws an account's invitations per hour as SVG bars (sent in
// green, refusals and errors in amber), over hours hours from since, and
// the rolling count of its shortest day-or-longer window as a line against
// that window's limit.
func hourChart(counts []store.HourCount, since time.Time, hours int, a *store.ConsoleAccount) template.HTML {
	const w, h, padL, padR, padT, padB = 900.0, 220.0, 36.0, 84.0, 14.0, 26.0
	sent := make([]int, hours)
	other := make([]int, hours)
	for _, c := range counts {
		i := int(c.Hour.Sub(since) / time.Hour)
		if i >= 0 && i < hours {
			sent[i], other[i] = c.Sent, c.Other
		}
	}
	peak := 1
	for i := range sent {
		peak = max(peak, sent[i]+other[i])
	}
	// The window drawn as a line: the invite limit with the shortest
	// window of at least an hour.
	var lim *store.WindowUse
	for i, wu := range a.Windows {
		if wu.Action == store.ActionInvite && wu.Per >= time.Hour && (lim == nil || wu.Per < lim.Per) {
			lim = &a.Windows[i]
		}
	}
	var rolling []int
	lineMax := 1
	if lim != nil {
		span := int(lim.Per / time.Hour)
		rolling = make([]int, hours)
		sum := 0
		for i := range hours {
			sum += sent[i] + other[i]
			if i >= span {
				sum -= sent[i-span] + other[i-span]
			}
			rolling[i] = sum
			lineMax = max(lineMax, sum)
		}
		lineMax = max(lineMax, lim.Max)
	}
	plotW, plotH := w-padL-padR, h-padT-padB
	bw := plotW / float64(hours)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="invitations per hour over the last %d hours">`, w, h, hours)
	// Grid and left axis (per hour).
	for _, f := range []float64{0, 0.5, 1} {
		y := padT + plotH*(1-f)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, padL, w-padR, y, y)
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="end">%d</text>`, padL-6, y+4, int(math.Round(f*float64(peak))))
	}
	for i := range hours {
		x := padL + float64(i)*bw
		t := since.Add(time.Duration(i) * time.Hour)
		if t.In(a.Location()).Hour() == 0 {
			fmt.Fprintf(&b, `<line class="day" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x, x, padT, padT+plotH)
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f">%s</text>`, x+3, h-8, t.In(a.Location()).Format("Mon Jan 2"))
		}
		if n := sent[i]; n > 0 {
			bh := plotH * float64(n) / float64(peak)
			fmt.Fprintf(&b, `<rect class="bar-sent" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d sent</title></rect>`,
				x+1, padT+plotH-bh, math.Max(bw-2, 1), bh, t.UTC().Format("Jan 2 15:00 UTC"), n)
		}
		if n := other[i]; n > 0 {
			base := plotH * float64(sent[i]) / float64(peak)
			bh := plotH * float64(n) / float64(peak)
			fmt.Fprintf(&b, `<rect class="bar-other" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d refused or failed</title></rect>`,
				x+1, padT+plotH-base-bh, math.Max(bw-2, 1), bh, t.UTC().Format("Jan 2 15:00 UTC"), n)
		}
	}
	if lim != nil {
		y := padT + plotH*(1-float64(lim.Max)/float64(lineMax))
		for _, f := range []float64{0, 0.5, 1} {
			fmt.Fprintf(&b, `<text class="axis rolling-axis" x="%.1f" y="%.1f">%d</text>`, w-padR+4, padT+plotH*(1-f)+4, int(math.Round(f*float64(lineMax))))
		}
		fmt.Fprintf(&b, `<line class="limit" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, padL, w-padR, y, y)
		fmt.Fprintf(&b, `<text class="axis limit-label" x="%.1f" y="%.1f">limit %d/%s</text>`, w-padR+26, y+4, lim.Max, shortDuration(lim.Per))
		var pts []string
		for i, v := range rolling {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", padL+(float64(i)+0.5)*bw, padT+plotH*(1-float64(v)/float64(lineMax))))
		}
		fmt.Fprintf(&b, `<polyline class="rolling" points="%s"><title>used in the rolling %s window</title></polyline>`, strings.Join(pts, " "), shortDuration(lim.Per))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
