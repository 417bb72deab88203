package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/webhook"
)

// eventsPoll is how often `events --follow` reads the stream without a
// notification (a reconciliation: notifications can be lost while the
// connection is down). A variable for the tests.
var eventsPoll = 2 * time.Second

func runEvents(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "events", `events [--follow] [--json] [--since ID] [--kind K[,K]] [--campaign C]

Prints the event stream: targets sent, failed, skipped; accounts paused,
disabled, resumed; campaigns done (docs/events.md). With --follow, waits
for new events (LISTEN, and a poll every 2s) until interrupted.`)
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	asJSON := fs.Bool("json", false, "print one JSON object per line (the webhook's event shape)")
	since := fs.Int64("since", 0, "print the events after the event with this id (0: from the start)")
	kinds := fs.String("kind", "", "only events of these kinds, comma-separated (target.sent,account.paused,...)")
	campaign := fs.String("campaign", "", "only events of this campaign (name or id)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("events takes no arguments, got %q", pos)
	}
	var f store.EventFilter
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if !strings.Contains(k, ".") {
				return usagef("--kind %q: want a kind such as target.sent or account.paused", k)
			}
			f.Kinds = append(f.Kinds, store.EventKind(k))
		}
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if *campaign != "" {
		c, err := campaignByRef(ctx, st, *campaign)
		if err != nil {
			return err
		}
		f.CampaignID = c.ID
	}
	cur, err := st.EventCursorOf(ctx, *since)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	if *follow {
		go func() {
			for ctx.Err() == nil {
				err := st.ListenEvents(ctx, func() {
					select {
					case wake <- struct{}{}:
					default:
					}
				})
				if err != nil && ctx.Err() == nil {
					env.Logger.WarnContext(ctx, "listen for events", "error", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(eventsPoll):
				}
			}
		}()
	}
	tick := time.NewTicker(eventsPoll)
	defer tick.Stop()
	held := 0 // reads in a row that found events held back
	for {
		printed := 0
		for {
			evs, err := st.EventsAfter(ctx, cur, f, 500)
			if err != nil {
				if *follow && ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, e := range evs {
				if err := printEvent(env, e, *asJSON); err != nil {
					return err
				}
				cur = e.Cursor()
			}
			printed += len(evs)
			if len(evs) < 500 {
				break
			}
		}
		if !*follow {
			return nil
		}
		// Nothing read, yet events after cur exist: the horizon held them
		// back after their notification came (or they are not of
		// --kind/--campaign), so look again soon rather than at the next
		// poll.
		var again <-chan time.Time
		more := false
		if printed == 0 {
			var err error
			if more, err = st.EventsHeld(ctx, cur); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if more {
			again = time.After(store.HeldRetry(held, eventsPoll))
			held++
		} else {
			held = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		case <-again:
		}
	}
}

func printEvent(env *Env, e store.Event, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(webhook.Event{ID: e.ID, Kind: e.Kind, At: e.At.UTC(), AccountID: e.AccountID,
			CampaignID: e.CampaignID, TargetID: e.TargetID, Data: e.Data})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
		return err
	}
	var about []string
	for _, x := range []struct {
		name string
		id   int64
	}{{"account", e.AccountID}, {"campaign", e.CampaignID}, {"target", e.TargetID}} {
		if x.id != 0 {
			about = append(about, fmt.Sprintf("%s=%d", x.name, x.id))
		}
	}
	_, err := fmt.Fprintf(env.Stdout, "%d\t%s\t%-16s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), e.Kind,
		strings.Join(about, " "), e.Data)
	return err
}

// webhookConfig is the webhook runner the scheduler process runs (nil:
// none), with the package's defaults.
func webhookConfig(on bool) *webhook.Config {
	if !on {
		return nil
	}
	return &webhook.Config{}
}

// webhookStatus is a webhook subscriber as `status` shows it: its URL's
// scheme and host only (its path and query may hold a token).
type webhookStatus struct {
	ID            int64      `json:"id"`
	Host          string     `json:"host"`
	Enabled       bool       `json:"enabled"`
	Kinds         []string   `json:"kinds,omitempty"`
	Delivered     int64      `json:"delivered"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	LastEventID   int64      `json:"last_event_id"`
	Attempts      int        `json:"attempts"`
	FailingSince  *time.Time `json:"failing_since,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

func loadWebhookStatus(ctx context.Context, st *store.Store) ([]webhookStatus, error) {
	ws, err := st.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	var out []webhookStatus
	for _, w := range ws {
		s := webhookStatus{ID: w.ID, Host: webhook.Host(w.URL), Enabled: w.Enabled, Delivered: w.Delivered,
			DeliveredAt: opt(w.DeliveredAt), LastEventID: w.Cursor.ID, Attempts: w.Attempts,
			FailingSince: opt(w.FailingSince), LastError: w.LastError}
		for _, k := range w.Kinds {
			s.Kinds = append(s.Kinds, string(k))
		}
		if !w.FailingSince.IsZero() {
			s.NextAttemptAt = opt(w.NextAttemptAt)
		}
		out = append(out, s)
	}
	return out, nil
}

// printWebhooks prints the subscribers' delivery state, if there are any.
func printWebhooks(w io.Writer, ws []webhookStatus) {
	if len(ws) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "WEBHOOKS")
	for _, s := range ws {
		state := "ok"
		switch {
		case !s.Enabled:
			state = "disabled"
		case s.FailingSince != nil:
			state = fmt.Sprintf("FAILING since %s (%d attempts), next try %s: %s", s.FailingSince.Format(time.RFC3339),
				s.Attempts, s.NextAttemptAt.Format(time.RFC3339), s.LastError)
		}
		fmt.Fprintf(w, "  #%d %s  delivered %d (up to event %d)  %s\n", s.ID, s.Host, s.Delivered, s.LastEventID, state)
	}
}
