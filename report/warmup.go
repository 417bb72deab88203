package report

import (
	"context"
	"fmt"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// Warmup is an account's warm-up ramp as of now (store.Warmup).
type Warmup struct {
	Day       int        `json:"day"`
	Today     int        `json:"today"`
	FullCount int        `json:"full_count"`
	Done      bool       `json:"done"`
	StepCount int        `json:"step_count"`
	Step      string     `json:"step"`
	HeldUntil *time.Time `json:"held_until,omitempty"`
	// LastWarning is the provider's warning that last stepped it back.
	LastWarning string `json:"last_warning,omitempty"`
}

// Text says it as status shows it: "day 4 of ramp, 20 today (+5 every 24h,
// up to 80)".
func (w *Warmup) Text() string {
	if w.Done {
		return fmt.Sprintf("warm-up done: %d a day (day %d)", w.FullCount, w.Day)
	}
	s := fmt.Sprintf("day %d of ramp, %d today (+%d every %s, up to %d)", w.Day, w.Today, w.StepCount, w.Step, w.FullCount)
	if w.HeldUntil != nil {
		s += fmt.Sprintf("; held until %s after: %s", w.HeldUntil.UTC().Format("2006-01-02 15:04 UTC"), w.LastWarning)
	}
	return s
}

// addWarmups sets the Warmup of the accounts that have one.
func addWarmups(ctx context.Context, st *store.Store, accounts []*Account) error {
	if len(accounts) == 0 {
		return nil
	}
	ws, err := st.Warmups(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		w := ws[a.ID]
		if w == nil {
			continue
		}
		a.Warmup = &Warmup{Day: w.Day, Today: w.Today, FullCount: w.FullCount, Done: w.Done, StepCount: w.StepCount,
			Step: FormatDuration(w.Step), LastWarning: w.LastWarning}
		if !w.HeldUntil.IsZero() {
			h := w.HeldUntil
			a.Warmup.HeldUntil = &h
		}
	}
	return nil
}
