package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// eventsOut runs `outreach events args` until it prints want lines: the
// horizon can be held back a moment by a transaction of another database
// that ended between the command's snapshot and its look at
// pg_stat_activity (docs/events.md: a delay, never a loss).
func eventsOut(t *testing.T, want int, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := mustRun(t, append([]string{"events"}, args...)...)
		if strings.Count(out, "\n") == want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsCommand(t *testing.T) {
	st := cliEnv(t)
	ctx := context.Background()
	db := cliDB(t)
	mustRun(t, "account", "add", "li-alice", "--provider", "unipile", "--provider-account-id", "acc1")
	mustRun(t, "campaign", "add", "spring", "--account", "li-alice")
	mustRun(t, "campaign", "add", "autumn", "--account", "li-alice")
	storetest.AddTargetPerCampaign(t, db, "-x")
	storetest.EndTargets(t, db, storetest.End{Identifier: "spring-x", Status: store.TargetSent},
		storetest.End{Identifier: "autumn-x", Status: store.TargetFailed, LastError: "invalid_recipient"})
	mustRun(t, "pause", "account", "li-alice", "--until", "2h", "--reason", "holiday")

	out := eventsOut(t, 3)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "target.sent") || !strings.Contains(lines[1], "target.failed") ||
		!strings.Contains(lines[2], "account.paused") || !strings.Contains(lines[2], "holiday") {
		t.Fatalf("events:\n%s", out)
	}

	out = eventsOut(t, 1, "--json", "--kind", "target.sent,target.failed", "--campaign", "autumn")
	var e struct {
		ID         int64
		Kind       string
		CampaignID int64 `json:"campaign_id"`
		Data       map[string]any
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &e); err != nil || e.Kind != "target.failed" || e.Data["reason"] != "invalid_recipient" {
		t.Fatalf("--json --kind --campaign: %q (%v)", out, err)
	}

	first := strings.Fields(lines[0])[0]
	out = eventsOut(t, 2, "--since", first)
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
		t.Fatalf("--since %s: %d lines:\n%s", first, n, out)
	}

	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"events", "--kind", "sent"}, exitUsage},
		{[]string{"events", "extra"}, exitUsage},
		{[]string{"events", "--since", "999999"}, exitNotFound},
		{[]string{"events", "--campaign", "nope"}, exitNotFound},
	} {
		if code, out, errs := cli(t, c.args...); code != c.code {
			t.Errorf("outreach %v: exit %d, want %d\n%s%s", c.args, code, c.code, out, errs)
		}
	}

	// A failing webhook shows in status without its URL's path or token.
	id, err := st.AddWebhook(ctx, "https://hooks.example.com/T0/secret-path?token=tok-1", "whsec_0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	storetest.MarkWebhookFailing(t, db, id, storetest.WebhookFailure{Attempts: 3, LastError: "HTTP 503: busy"})
	out = mustRun(t, "status")
	if !strings.Contains(out, fmt.Sprintf("#%d https://hooks.example.com", id)) || !strings.Contains(out, "FAILING since") ||
		!strings.Contains(out, "HTTP 503: busy") || strings.Contains(out, "secret-path") || strings.Contains(out, "tok-1") {
		t.Fatalf("status:\n%s", out)
	}
	out = mustRun(t, "status", "--json")
	if !strings.Contains(out, `"failing_since"`) || strings.Contains(out, "tok-1") {
		t.Fatalf("status --json:\n%s", out)
	}
}

// syncWriter is a buffer written by one goroutine and read by another.
type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// followEvents runs `events --follow --json` until stop, which fails the
// test unless it ended cleanly; out is what it printed.
func followEvents(t *testing.T) (out *syncWriter, stop func()) {
	t.Helper()
	out = &syncWriter{}
	env, err := LoadEnv(os.Environ(), out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEvents(ctx, env, []string{"--follow", "--json"}) }()
	t.Cleanup(cancel)
	return out, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("--follow ended with %v", err)
		}
	}
}

// --follow prints events committed after it started, and ends cleanly
// when interrupted.
func TestEventsFollow(t *testing.T) {
	cliEnv(t)
	mustRun(t, "account", "add", "li-bob", "--provider", "unipile", "--provider-account-id", "acc2")
	out, stop := followEvents(t)
	for i := 0; ; i++ {
		mustRun(t, "pause", "account", "li-bob", "--until", "1h")
		mustRun(t, "resume", "account", "li-bob")
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(out.String(), "account.resumed") {
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Contains(out.String(), "account.resumed") {
			break
		}
		if i == 3 {
			t.Fatalf("--follow printed nothing: %q", out.String())
		}
	}
	stop()
}

// --follow prints an event whose notification came while the stream's
// horizon held it back (an older transaction was running): it looks
// again soon instead of at its next poll, which the test puts an hour
// away.
func TestEventsFollowLooksAgainWhenTheHorizonHoldsEvents(t *testing.T) {
	cliEnv(t)
	mustRun(t, "account", "add", "li-held", "--provider", "unipile", "--provider-account-id", "acc-held")
	poll := eventsPoll
	eventsPoll = time.Hour
	t.Cleanup(func() { eventsPoll = poll })
	out, stop := followEvents(t)
	// Listening before the older transaction starts (the notification
	// must come, or only the poll an hour away would read the event).
	db := cliDB(t)
	storetest.WaitListeners(t, db, store.EventsChannel, 1)
	older := storetest.OpenTransaction(t, db)
	mustRun(t, "pause", "account", "li-held", "--until", "1h")
	// The notification comes while the event is held back; the read it
	// wakes finds nothing (on a busy machine that read can come after the
	// commit below and find the event: the test then passes without the
	// retry, it never fails for it).
	time.Sleep(500 * time.Millisecond)
	older()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "account.paused") {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "account.paused") {
		t.Fatalf("--follow did not print the event held back when it was notified: %q", out.String())
	}
	stop()
}
