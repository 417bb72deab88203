package store

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// topReasons is how many causes of skips (and of failures) a campaign's
// progress lists.
const topReasons = 5

// campaignCounts fills the counts, total and top reasons of each campaign
// of byID: ended targets and the total from campaign_counts (a few rows per
// campaign, whatever its size), queued and sending ones from the targets
// (the near-term horizon), pending ones as the rest.
func (s *Store) campaignCounts(ctx context.Context, ids []int64, byID map[int64]*ConsoleCampaign) error {
	var cid int64
	var status, reason string
	var n int
	total := map[int64]int{}
	rows, err := s.pool.Query(ctx, `SELECT campaign_id, status, reason, sum(n)::bigint FROM campaign_counts
		WHERE campaign_id = ANY($1) GROUP BY 1, 2, 3 HAVING sum(n) <> 0`, ids)
	if err != nil {
		return err
	}
	if _, err := pgx.ForEachRow(rows, []any{&cid, &status, &reason, &n}, func() error {
		c := byID[cid]
		switch TargetStatus(status) {
		case TargetSent, TargetSkipped, TargetFailed:
			c.Counts[status] += n
			if reason != "" {
				c.Reasons = append(c.Reasons, ReasonCount{Status: status, Reason: reason, Count: n})
			}
		case "accepted":
			c.Accepted += n
		default: // "total"
			total[cid] += n
		}
		return nil
	}); err != nil {
		return err
	}
	rows, err = s.pool.Query(ctx, `SELECT campaign_id, status, count(*) FROM targets
		WHERE campaign_id = ANY($1) AND status IN ('queued', 'sending') GROUP BY 1, 2`, ids)
	if err != nil {
		return err
	}
	if _, err := pgx.ForEachRow(rows, []any{&cid, &status, &n}, func() error {
		byID[cid].Counts[status] = n
		return nil
	}); err != nil {
		return err
	}
	for id, c := range byID {
		ended := c.Counts[string(TargetSent)] + c.Counts[string(TargetSkipped)] + c.Counts[string(TargetFailed)]
		inFlight := c.Counts[string(TargetQueued)] + c.Counts[string(TargetSending)]
		c.Counts[string(TargetPending)] = max(total[id]-ended-inFlight, 0)
		c.Total = max(total[id], ended+inFlight)
		c.Reasons = topReasonsOf(c.Reasons)
	}
	return nil
}

// topReasonsOf keeps the topReasons most frequent reasons of each status,
// most frequent first.
func topReasonsOf(rs []ReasonCount) []ReasonCount {
	slices.SortFunc(rs, func(a, b ReasonCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Status != b.Status {
			return cmp.Compare(a.Status, b.Status)
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
	kept := map[string]int{}
	out := rs[:0]
	for _, r := range rs {
		if r.Count <= 0 || kept[r.Status] >= topReasons {
			continue
		}
		kept[r.Status]++
		out = append(out, r)
	}
	return out
}

// FoldCampaignCounts folds campaign_counts' rows into one per campaign,
// status and reason (see migration 00014) and returns how many rows it
// removed. The scheduler calls it now and then; any process may.
func (s *Store) FoldCampaignCounts(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT outreach_fold_campaign_counts()`).Scan(&n)
	return n, translate("fold campaign counts", err)
}

// RecountCampaigns rebuilds campaign_counts from the targets, after a load
// that bypassed the triggers.
func (s *Store) RecountCampaigns(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT outreach_recount_campaigns()`)
	return translate("recount campaigns", err)
}
