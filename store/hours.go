package store

import (
	"time"
)

// Location returns the account's time zone, UTC if it does not load.
func (a *Account) Location() *time.Location {
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// NextOpen returns the first moment at or after now inside the account's
// working hours (now itself when it is inside them).
func (a *Account) NextOpen(now time.Time) time.Time {
	if a.WorkStart <= 0 && a.WorkEnd >= 24*time.Hour && len(a.WorkDays) >= 7 {
		return now
	}
	days := map[int]bool{}
	for _, d := range a.WorkDays {
		days[d] = true
	}
	if len(days) == 0 {
		return time.Time{} // never open
	}
	local := now.In(a.Location())
	for i := 0; i < 8; i++ {
		day := local.AddDate(0, 0, i)
		midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, day.Location())
		wd := int(midnight.Weekday())
		if wd == 0 {
			wd = 7
		}
		if !days[wd] {
			continue
		}
		open := midnight.Add(a.WorkStart)
		closing := midnight.Add(a.WorkEnd)
		if local.Before(open) {
			return open.In(now.Location())
		}
		if local.Before(closing) {
			return now
		}
	}
	return time.Time{}
}
