package scheduler

import (
	"testing"
	"time"
)

// A tick's stages add up what ran more than once, in the order they first
// ran, and the log names the slowest five, slowest first.
func TestTickStages(t *testing.T) {
	now := time.Unix(0, 0)
	var st TickStats
	clk := &stageClock{st: &st, now: func() time.Time { return now }, last: now}
	for _, s := range []struct {
		name string
		took time.Duration
	}{
		{"pauses", time.Millisecond}, {"accounts", 2 * time.Second}, {"invite claim", 300 * time.Millisecond},
		{"invite enqueue", 10 * time.Millisecond}, {"accounts", time.Second}, {"prepare", 40 * time.Millisecond},
		{"polls", 20 * time.Millisecond},
	} {
		now = now.Add(s.took)
		clk.mark(s.name)
	}
	if len(st.Stages) != 6 || st.Stages[1] != (Stage{"accounts", 3 * time.Second}) {
		t.Fatalf("stages %+v", st.Stages)
	}
	if got, want := stagesAttr(st.Stages).String(), "accounts=3s invite claim=300ms prepare=40ms polls=20ms invite enqueue=10ms"; got != want {
		t.Errorf("stagesAttr = %q, want %q", got, want)
	}
}
