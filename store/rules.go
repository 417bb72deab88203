package store

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// accountRules are what the views account_limits_effective and
// account_pacing_effective say of one account: the limits and gaps that
// apply (Account.Limits, LimitSources and Gaps).
type accountRules struct {
	limits  []Limit
	sources map[Action]string
	gaps    []Gap
}

// cachedRules are an account's rules as a RulesCache keeps them, with the
// accounts columns the views read them with (a change of these is seen in
// the row AccountsWithWork reads each time, notification or not).
type cachedRules struct {
	rules             accountRules
	provider          provider.Name
	pacing            string
	minGap, gapJitter time.Duration
	gen               uint64
	loaded            time.Time
}

// RulesCache keeps the accounts' effective limits and gaps between calls of
// AccountsWithWork, which otherwise reads both views for every account
// with work on every call (60% of its cost at 1,000 accounts). It is used
// only while its owner listens for the wake notifications (Listen): the
// triggers that announce a change of limits, pacing, warm-ups, providers'
// defaults or accounts must empty it (Invalidate). An entry also expires
// after its TTL, for what changes without a notification: a warm-up
// ramp's next stage (the views compute it from the time), provider_warmup.
// The accounts row itself (status, hours, gap, next_send_at) is read
// fresh each time.
//
// How stale the rules it gives can be: a change with a notification is
// seen from the first call that starts after the notification arrived (a
// call under way finishes with what it read); one without, within the
// TTL. Planning on stale rules cannot break a limit: the worker's
// reservation checks every limit again against the ledger.
type RulesCache struct {
	ttl  time.Duration
	mu   sync.Mutex
	on   bool
	gen  uint64
	byID map[int64]*cachedRules
}

// NewRulesCache returns a cache whose entries live at most ttl; it is
// unused until Listening(true).
func NewRulesCache(ttl time.Duration) *RulesCache {
	return &RulesCache{ttl: ttl, byID: map[int64]*cachedRules{}}
}

// Listening says whether the owner listens for the wake notifications now:
// the cache is used only while it does. Either way it is emptied, since
// notifications may have been missed before the connection listened.
func (c *RulesCache) Listening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = on
	c.gen++
	clear(c.byID)
}

// Invalidate empties the cache: a notification said something its rules
// depend on may have changed. A read under way when it is called does not
// fill the cache.
func (c *RulesCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byID)
}

// Len returns how many accounts' rules the cache holds.
func (c *RulesCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// lookup returns the cached rules of the accounts whose entry still holds
// for their row (a), and the generation to store fresh reads under; ok is
// false when the cache is not in use.
func (c *RulesCache) lookup(accounts []*Account, now time.Time) (found map[int64]accountRules, gen uint64, ok bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil, 0, false
	}
	found = make(map[int64]accountRules, len(accounts))
	for _, a := range accounts {
		e := c.byID[a.ID]
		if e == nil || e.gen != c.gen || now.Sub(e.loaded) >= c.ttl || now.Before(e.loaded) ||
			e.provider != a.Provider || e.pacing != a.Pacing || e.minGap != a.MinGap || e.gapJitter != a.GapJitter {
			continue
		}
		found[a.ID] = e.rules
	}
	return found, c.gen, true
}

// store keeps rules read at now under generation gen, unless the cache was
// emptied since gen.
func (c *RulesCache) store(gen uint64, byID map[int64]*Account, read map[int64]accountRules, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on || c.gen != gen {
		return
	}
	for id, e := range c.byID {
		if now.Sub(e.loaded) >= c.ttl {
			delete(c.byID, id)
		}
	}
	for id, r := range read {
		a := byID[id]
		c.byID[id] = &cachedRules{rules: r, provider: a.Provider, pacing: a.Pacing, minGap: a.MinGap, gapJitter: a.GapJitter,
			gen: gen, loaded: now}
	}
}

// readRules reads the effective limits and gaps of the accounts in one pass
// over each view (not a subquery per account).
func (s *Store) readRules(ctx context.Context, ids []int64) (map[int64]accountRules, error) {
	out := make(map[int64]accountRules, len(ids))
	for _, id := range ids {
		out[id] = accountRules{}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT l.account_id, true, l.action, l.max_count::float8, extract(epoch from l.per)::float8, l.source
		FROM account_limits_effective l WHERE l.account_id = ANY($1)
		UNION ALL
		SELECT g.account_id, false, g.action, extract(epoch from g.min_gap)::float8, extract(epoch from g.gap_jitter)::float8, g.source
		FROM account_pacing_effective g WHERE g.account_id = ANY($1)
		ORDER BY 1, 2, 3, 5`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var limit bool
		var action Action
		var x, y float64
		var source string
		if err := rows.Scan(&id, &limit, &action, &x, &y, &source); err != nil {
			return nil, err
		}
		r := out[id]
		if limit {
			r.limits = append(r.limits, Limit{Action: action, Max: int(x), Per: seconds(y)})
			if r.sources == nil {
				r.sources = map[Action]string{}
			}
			r.sources[action] = source
		} else {
			r.gaps = append(r.gaps, Gap{Action: action, Min: seconds(x), Jitter: seconds(y), Source: source})
		}
		out[id] = r
	}
	return out, rows.Err()
}

// rulesOf fills the accounts' limits and gaps: from the cache where it
// holds them, the others read in one query (and cached).
func (s *Store) rulesOf(ctx context.Context, accounts []*Account, cache *RulesCache, now time.Time) error {
	found, gen, cached := cache.lookup(accounts, now)
	byID := make(map[int64]*Account, len(accounts))
	var missing []int64
	for _, a := range accounts {
		byID[a.ID] = a
		if _, ok := found[a.ID]; !ok {
			missing = append(missing, a.ID)
		}
	}
	read, err := s.readRules(ctx, missing)
	if err != nil {
		return err
	}
	if cached {
		cache.store(gen, byID, read, now)
	}
	for _, a := range accounts {
		r, ok := found[a.ID]
		if !ok {
			r = read[a.ID]
		}
		a.Limits, a.LimitSources, a.Gaps = slices.Clone(r.limits), maps.Clone(r.sources), slices.Clone(r.gaps)
	}
	return nil
}
