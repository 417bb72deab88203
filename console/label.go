package console

import (
	"context"
	"sync"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TargetLabeler returns a function naming a task's target by its account
// and campaign, for the asynq dashboard's task view (dashboard.Options'
// TargetLabel). Names are read from st with a short timeout and kept in a
// bounded cache (a target's account and campaign never change); a target
// it cannot read gets "".
func TargetLabeler(st *store.Store, timeout time.Duration) func(targetID int64) string {
	const maxCached = 10_000
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var mu sync.Mutex
	cache := map[int64]string{}
	return func(id int64) string {
		mu.Lock()
		l, ok := cache[id]
		mu.Unlock()
		if ok {
			return l
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		l, err := st.TargetLabel(ctx, id)
		if err != nil {
			return ""
		}
		mu.Lock()
		if len(cache) >= maxCached {
			clear(cache)
		}
		cache[id] = l
		mu.Unlock()
		return l
	}
}
