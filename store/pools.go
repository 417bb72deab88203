package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sender pools (migration 00008, docs/pools.md). A campaign sends from the
// accounts in campaign_senders. A target of a pool has no account until the
// planner gives it one (AssignPoolTargets); that sender looks the person up
// and invites them. Before an invitation may have gone out, a target whose
// sender is paused, disabled or taken out of the pool goes back to the pool
// (ReleaseStoppedSenders, and a trigger on campaign_senders).

// mayHaveInvitedSQL is true for a target with an invitation that may have
// reached the provider: such a target keeps its sender for good.
const mayHaveInvitedSQL = `EXISTS (SELECT 1 FROM sends s WHERE s.target_id = t.id AND s.action = 'invite'
	AND s.outcome IN ('in_flight', 'unknown', 'sent'))`

// Sender is one account of a campaign's pool.
type Sender struct {
	CampaignID int64
	AccountID  int64
	Account    string
	Status     AccountStatus
	AddedAt    time.Time
}

// CampaignSenders returns the senders of a campaign, by account id.
func (s *Store) CampaignSenders(ctx context.Context, campaignID int64) ([]Sender, error) {
	op := fmt.Sprintf("senders of campaign %d", campaignID)
	rows, err := s.pool.Query(ctx, `SELECT cs.campaign_id, cs.account_id, a.name, a.status, cs.added_at
		FROM campaign_senders cs JOIN accounts a ON a.id = cs.account_id
		WHERE cs.campaign_id = $1 ORDER BY cs.account_id`, campaignID)
	if err != nil {
		return nil, translate(op, err)
	}
	var out []Sender
	var x Sender
	_, err = pgx.ForEachRow(rows, []any{&x.CampaignID, &x.AccountID, &x.Account, &x.Status, &x.AddedAt}, func() error {
		out = append(out, x)
		return nil
	})
	return out, translate(op, err)
}

// AddSender adds an account to a campaign's pool (nothing if it is in it
// already). The account must be of the campaign's provider.
func (s *Store) AddSender(ctx context.Context, campaignID, accountID int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO campaign_senders (campaign_id, account_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, campaignID, accountID)
	return translate(fmt.Sprintf("add account %d to campaign %d", accountID, campaignID), err)
}

// RemoveSender takes an account out of a campaign's pool: its targets that
// cannot have been invited yet go back to the pool (a trigger does it).
// The campaign's last sender cannot be removed (ErrInvalid).
func (s *Store) RemoveSender(ctx context.Context, campaignID, accountID int64) error {
	op := fmt.Sprintf("remove account %d from campaign %d", accountID, campaignID)
	return translate(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM campaign_senders WHERE campaign_id = $1`, campaignID).Scan(&n); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM campaign_senders WHERE campaign_id = $1 AND account_id = $2`, campaignID, accountID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if n <= 1 {
			return fmt.Errorf("%w: it is the campaign's last sender", ErrInvalid)
		}
		return nil
	}))
}

// CreatePoolCampaign inserts a campaign sending from the accounts (the
// first is its own account, campaigns.account_id) and returns its id.
func (s *Store) CreatePoolCampaign(ctx context.Context, c Campaign, accounts []int64) (int64, error) {
	if len(accounts) == 0 {
		return 0, fmt.Errorf("create campaign %q: %w: no account", c.Name, ErrInvalid)
	}
	c.AccountID = accounts[0]
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		id, err = createCampaign(ctx, tx, c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO campaign_senders (campaign_id, account_id) SELECT $1, unnest($2::bigint[])
			ON CONFLICT DO NOTHING`, id, accounts[1:])
		return err
	})
	return id, translate(fmt.Sprintf("create campaign %q", c.Name), err)
}

func createCampaign(ctx context.Context, tx pgx.Tx, c Campaign) (int64, error) {
	if c.ProviderOptions == nil {
		c.ProviderOptions = map[string]any{}
	}
	if c.Status == "" {
		c.Status = CampaignActive
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO campaigns (name, account_id, message_template, status, provider_options)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, c.Name, c.AccountID, c.MessageTemplate, c.Status, c.ProviderOptions).Scan(&id)
	return id, err
}

// SetCampaignShare sets a campaign's weight (its share of the slots of the
// accounts it shares with other campaigns) and its daily cap (0: none).
func (s *Store) SetCampaignShare(ctx context.Context, campaignID int64, weight, dailyCap int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE campaigns SET weight = $2, daily_cap = nullif($3, 0), updated_at = now() WHERE id = $1`,
		campaignID, weight, dailyCap)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return translate(fmt.Sprintf("set share of campaign %d", campaignID), err)
}

// ReleaseStoppedSenders gives the targets of paused or disabled senders
// back to their pools, so the other senders take them: pending targets of
// campaigns with another sender, with no invitation that may have gone
// out. A target handed back while waiting for its sender is due again at
// once. It returns how many moved.
//
// It runs at every tick. A stopped sender's pending targets are read by
// index, its normalised ones on targets_due_sender and its new ones on
// targets_new_sender: a join on campaign and account alone matched no
// index, and Postgres read every pending target once per stopped sender.
func (s *Store) ReleaseStoppedSenders(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `WITH stopped AS (
			SELECT cs.campaign_id, cs.account_id FROM campaign_senders cs JOIN accounts a ON a.id = cs.account_id
			WHERE (a.status = 'disabled' OR (a.status = 'paused' AND a.paused_until > $1))
			AND EXISTS (SELECT 1 FROM campaign_senders o WHERE o.campaign_id = cs.campaign_id AND o.account_id <> cs.account_id)
		), held AS (
			SELECT h.id, st.account_id FROM stopped st CROSS JOIN LATERAL (
				SELECT x.id FROM targets x WHERE x.campaign_id = st.campaign_id AND x.account_id = st.account_id
					AND x.status = 'pending' AND x.normalized_identifier IS NOT NULL
				UNION ALL
				SELECT x.id FROM targets x WHERE x.campaign_id = st.campaign_id AND x.account_id = st.account_id
					AND x.status = 'pending' AND x.normalized_identifier IS NULL) h)
		UPDATE targets t SET account_id = NULL, wait_reason = NULL, updated_at = $1,
			next_attempt_at = CASE WHEN t.wait_reason IS NOT NULL OR t.last_error LIKE 'waiting: %'
				THEN least(t.next_attempt_at, $1) ELSE t.next_attempt_at END
		FROM held
		WHERE t.id = held.id AND t.account_id = held.account_id AND t.status = 'pending'
		AND NOT `+mayHaveInvitedSQL, now)
	if err != nil {
		return 0, translate("release targets of stopped senders", err)
	}
	return tag.RowsAffected(), nil
}

// SenderRoom is how many targets of one action a sender can take now: its
// send slots in the planning horizon.
type SenderRoom struct {
	AccountID int64
	N         int
}

// AssignPoolTargets gives due targets of pools that have no sender yet
// (resolved ones waiting for an invite, or unresolved ones waiting for a
// lookup) to the senders in rooms. Each sender gets at most its room less
// the pool targets it holds already (due invites; for lookups, also every
// resolved one); each target goes to the sender of its
// campaign with the most room left, so the pool's slots are used in
// proportion to what each sender has. A sender that already has a live
// target for the same person (another campaign) is passed over; a target
// whose person the campaign already has in another live target (another
// identifier of theirs) is skipped as a duplicate. It returns how many
// targets each account was given.
func (s *Store) AssignPoolTargets(ctx context.Context, lookup bool, rooms []SenderRoom, dueBy time.Time) (map[int64]int, error) {
	given := map[int64]int{}
	if len(rooms) == 0 {
		return given, nil
	}
	accounts := make([]int64, len(rooms))
	ns := make([]int64, len(rooms))
	for i, r := range rooms {
		accounts[i], ns[i] = r.AccountID, int64(r.N)
	}
	// What a sender holds already: its due invites; for lookups, also
	// every invite it will owe (a sender looks up only whom it can invite).
	resolved := "IS FALSE"
	backlog := "t.provider_id IS NOT NULL AND t.next_attempt_at <= $3"
	if lookup {
		resolved = "IS TRUE"
		backlog = "(t.provider_id IS NOT NULL OR t.next_attempt_at <= $3)"
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		clear(given)
		// Nothing to do unless a pool has a target without a sender (one
		// probe of the index targets_pool_due).
		var waiting bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM targets t WHERE t.status = 'pending'
			AND t.normalized_identifier IS NOT NULL AND t.account_id IS NULL AND (t.provider_id IS NULL) `+resolved+`
			AND t.next_attempt_at <= $1)`, dueBy).Scan(&waiting); err != nil || !waiting {
			return err
		}
		// Each sender's room less the due targets its pools gave it
		// already (bounded by the room: a count never reads more).
		free := map[int64]int{}
		rows, err := tx.Query(ctx, `SELECT k.account_id, k.n - (SELECT count(*) FROM (
				SELECT 1 FROM campaign_senders cs JOIN campaigns c ON c.id = cs.campaign_id AND c.status = 'active'
				CROSS JOIN LATERAL (SELECT 1 FROM targets t WHERE t.campaign_id = c.id AND t.status = 'pending'
					AND t.normalized_identifier IS NOT NULL AND `+backlog+` AND t.account_id = k.account_id LIMIT k.n) x
				WHERE cs.account_id = k.account_id
				AND EXISTS (SELECT 1 FROM campaign_senders o WHERE o.campaign_id = c.id AND o.account_id <> k.account_id)
				LIMIT k.n) y)
			FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, n)`, accounts, ns, dueBy)
		if err != nil {
			return err
		}
		var acc, n int64
		if _, err := pgx.ForEachRow(rows, []any{&acc, &n}, func() error {
			if n > 0 {
				free[acc] = int(n)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(free) == 0 {
			return nil
		}
		var freeIDs, freeNs []int64
		for id, n := range free {
			freeIDs, freeNs = append(freeIDs, id), append(freeNs, int64(n))
		}
		// The campaigns these senders serve that have unassigned due
		// targets, with up to the sum of their senders' room of them.
		rows, err = tx.Query(ctx, `WITH pc AS (
				SELECT cs.campaign_id, sum(k.n) AS n, array_agg(cs.account_id ORDER BY cs.account_id) AS senders
				FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, n)
				JOIN campaign_senders cs ON cs.account_id = k.account_id
				JOIN campaigns c ON c.id = cs.campaign_id AND c.status = 'active'
				GROUP BY cs.campaign_id)
			SELECT pc.campaign_id, pc.senders, t.id, coalesce(t.provider_id, ''),
				(SELECT array_agg(a.account_id) FROM campaign_senders a WHERE a.campaign_id = pc.campaign_id)
			FROM pc CROSS JOIN LATERAL (SELECT t0.id, t0.provider_id, t0.next_attempt_at FROM targets t0
				WHERE t0.campaign_id = pc.campaign_id AND t0.status = 'pending' AND t0.normalized_identifier IS NOT NULL
				AND t0.account_id IS NULL AND (t0.provider_id IS NULL) `+resolved+` AND t0.next_attempt_at <= $3
				ORDER BY t0.next_attempt_at LIMIT pc.n FOR UPDATE SKIP LOCKED) t
			ORDER BY t.next_attempt_at, t.id`, freeIDs, freeNs, dueBy)
		if err != nil {
			return err
		}
		type cand struct {
			id, campaign int64
			pid          string
			senders      []int64
		}
		var cands []cand
		var pids []string
		var c cand
		var all []int64
		everySender := map[int64]bool{}
		if _, err := pgx.ForEachRow(rows, []any{&c.campaign, &c.senders, &c.id, &c.pid, &all}, func() error {
			cands = append(cands, cand{c.id, c.campaign, c.pid, append([]int64(nil), c.senders...)})
			if c.pid != "" {
				pids = append(pids, c.pid)
			}
			for _, a := range all {
				everySender[a] = true
			}
			return nil
		}); err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		// People a sender already has a live target for (the unique
		// index targets_one_per_person would refuse a second), and people
		// a campaign already has a live target for under another
		// identifier (one sender of a pool per person).
		busy := map[string]bool{}
		campaignHas := map[string]int64{}
		if len(pids) > 0 {
			var senders []int64
			for a := range everySender {
				senders = append(senders, a)
			}
			rows, err := tx.Query(ctx, `SELECT t.account_id, t.provider_id, t.campaign_id, t.id FROM targets t
				WHERE t.account_id = ANY($1) AND t.provider_id = ANY($2) AND t.status NOT IN ('skipped', 'failed')`, senders, pids)
			if err != nil {
				return err
			}
			var pid string
			var camp, id int64
			if _, err := pgx.ForEachRow(rows, []any{&acc, &pid, &camp, &id}, func() error {
				busy[personKey(acc, pid)] = true
				campaignHas[personKey(camp, pid)] = id
				return nil
			}); err != nil {
				return err
			}
		}
		var ids, accs, dups, others []int64
		for _, c := range cands {
			if other, ok := campaignHas[personKey(c.campaign, c.pid)]; ok && c.pid != "" && other != c.id {
				dups, others = append(dups, c.id), append(others, other)
				continue
			}
			best := pickSender(c.senders, free, func(a int64) bool { return c.pid != "" && busy[personKey(a, c.pid)] })
			if best == 0 {
				continue
			}
			free[best]--
			given[best]++
			if c.pid != "" {
				busy[personKey(best, c.pid)] = true
				campaignHas[personKey(c.campaign, c.pid)] = c.id
			}
			ids, accs = append(ids, c.id), append(accs, best)
		}
		if len(dups) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE targets t SET status = 'skipped', error_type = $3,
					last_error = 'duplicate: another target of this campaign invites this person (target ' || u.other || ')',
					updated_at = now(), finished_at = now()
				FROM unnest($1::bigint[], $2::bigint[]) AS u(id, other) WHERE t.id = u.id`, dups, others, errTypeDuplicate); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE targets t SET account_id = u.account_id, updated_at = now()
			FROM unnest($1::bigint[], $2::bigint[]) AS u(id, account_id) WHERE t.id = u.id`, ids, accs)
		return err
	})
	if err != nil {
		return nil, translate(fmt.Sprintf("assign pool targets to %d senders", len(rooms)), err)
	}
	return given, nil
}

// pickSender returns the sender with the most room left (the lowest id on
// a tie) that skip does not rule out, or 0 if none has room.
func pickSender(senders []int64, free map[int64]int, skip func(int64) bool) int64 {
	var best int64
	for _, a := range senders {
		if free[a] <= 0 || skip(a) {
			continue
		}
		if best == 0 || free[a] > free[best] {
			best = a
		}
	}
	return best
}

// shareCandidate is a target a claim could take for an account, with what
// sharing the account between campaigns needs.
type shareCandidate struct {
	claimed Claimed
	n       int // the account's slots in this claim
	weight  int // the campaign's weight
	cap     int // the campaign's daily cap; 0 for none
}

// shareSlots keeps, per account, the candidates its slots take: with one
// campaign, its n oldest; with several, the campaigns take turns by weight,
// each taking the next slot while its use of the account (recent calls and
// targets in flight, plus what it takes now) is the lowest for its weight;
// a campaign with a daily cap stops at its cap. used holds the counts for
// the accounts and campaigns that need them (campaignUse).
func shareSlots(cands []shareCandidate, used campaignUse) []Claimed {
	type key struct{ account, campaign int64 }
	byAccount := map[int64][]int64{} // campaigns per account, in first-seen order
	queues := map[key][]shareCandidate{}
	var order []int64
	for _, c := range cands {
		k := key{c.claimed.Target.AccountID, c.claimed.Target.CampaignID}
		if _, ok := byAccount[k.account]; !ok {
			order = append(order, k.account)
		}
		if _, ok := queues[k]; !ok {
			byAccount[k.account] = append(byAccount[k.account], k.campaign)
		}
		queues[k] = append(queues[k], c)
	}
	var out []Claimed
	capUsed := map[int64]int{}
	for _, acc := range order {
		campaigns := byAccount[acc]
		n := queues[key{acc, campaigns[0]}][0].n
		for taken := 0; taken < n; taken++ {
			var best int64
			var bestQ []shareCandidate
			for _, c := range campaigns {
				q := queues[key{acc, c}]
				if len(q) == 0 {
					continue
				}
				if q[0].cap > 0 && used.total[c]+capUsed[c] >= q[0].cap {
					continue
				}
				if bestQ == nil {
					best, bestQ = c, q
					continue
				}
				u, bu := used.byAccount[[2]int64{acc, c}], used.byAccount[[2]int64{acc, best}]
				switch {
				case lessUse(u, q[0].weight, bu, bestQ[0].weight):
					best, bestQ = c, q
				case !lessUse(bu, bestQ[0].weight, u, q[0].weight) &&
					q[0].claimed.Target.NextAttemptAt.Before(bestQ[0].claimed.Target.NextAttemptAt):
					best, bestQ = c, q // equal use: the oldest target first
				}
			}
			if bestQ == nil {
				break
			}
			out = append(out, bestQ[0].claimed)
			queues[key{acc, best}] = bestQ[1:]
			used.byAccount[[2]int64{acc, best}]++
			capUsed[best]++
		}
	}
	return out
}

// lessUse reports whether use a for weight wa is lower than use b for
// weight wb (a/wa < b/wb, in integers).
func lessUse(a, wa, b, wb int) bool { return a*wb < b*wa }

// campaignUse is what sharing needs from the database: per (account,
// campaign), its calls of the action over the last day and its targets in
// queued (a target being sent is in the ledger already); per campaign, its invitations that may have gone out over the
// last day and its queued invite targets (for the daily cap).
type campaignUse struct {
	byAccount map[[2]int64]int
	total     map[int64]int
}

// loadCampaignUse reads campaignUse for the candidates' accounts shared by
// several campaigns and for their capped campaigns, in one query; it makes
// none when no account is shared and no campaign capped.
func loadCampaignUse(ctx context.Context, tx pgx.Tx, lookup bool, cands []shareCandidate, now time.Time) (campaignUse, error) {
	use := campaignUse{byAccount: map[[2]int64]int{}, total: map[int64]int{}}
	campaignsOf := map[int64]map[int64]bool{}
	capped := map[int64]bool{}
	for _, c := range cands {
		t := c.claimed.Target
		if campaignsOf[t.AccountID] == nil {
			campaignsOf[t.AccountID] = map[int64]bool{}
		}
		campaignsOf[t.AccountID][t.CampaignID] = true
		if c.cap > 0 && !lookup {
			capped[t.CampaignID] = true
		}
	}
	var accs, camps []int64
	for a, cs := range campaignsOf {
		if len(cs) < 2 {
			continue
		}
		for c := range cs {
			accs, camps = append(accs, a), append(camps, c)
		}
	}
	var capIDs []int64
	for c := range capped {
		capIDs = append(capIDs, c)
	}
	if len(accs) == 0 && len(capIDs) == 0 {
		return use, nil
	}
	sort.Slice(capIDs, func(i, j int) bool { return capIDs[i] < capIDs[j] })
	action := ActionInvite
	if lookup {
		action = ActionLookup
	}
	rows, err := tx.Query(ctx, `SELECT false, k.account_id, k.campaign_id,
			(SELECT count(*) FROM sends s JOIN targets t ON t.id = s.target_id
				WHERE s.account_id = k.account_id AND s.action = $3 AND s.window_at > $4::timestamptz - interval '1 day'
				AND t.campaign_id = k.campaign_id)
			+ (SELECT count(*) FROM targets t WHERE t.account_id = k.account_id AND t.status = 'queued'
				AND t.campaign_id = k.campaign_id AND (t.provider_id IS NULL) = $6)
		FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, campaign_id)
		UNION ALL
		SELECT true, 0, c.id,
			(SELECT count(*) FROM campaign_senders cs JOIN sends s ON s.account_id = cs.account_id AND s.action = 'invite'
				AND s.window_at > $4::timestamptz - interval '1 day' AND s.outcome IN ('in_flight', 'unknown', 'sent')
				JOIN targets t ON t.id = s.target_id AND t.campaign_id = cs.campaign_id
				WHERE cs.campaign_id = c.id)
			+ (SELECT count(*) FROM targets t WHERE t.campaign_id = c.id AND t.status = 'queued'
				AND t.provider_id IS NOT NULL)
		FROM unnest($5::bigint[]) AS c(id)`, accs, camps, action, now, capIDs, lookup)
	if err != nil {
		return use, err
	}
	var total bool
	var acc, camp int64
	var n int
	_, err = pgx.ForEachRow(rows, []any{&total, &acc, &camp, &n}, func() error {
		if total {
			use.total[camp] = n
		} else {
			use.byAccount[[2]int64{acc, camp}] = n
		}
		return nil
	})
	return use, err
}

// checkDailyCap is the reservation's check of the campaign's daily cap
// (Target.DailyCap; nothing for a campaign without one, or for a lookup):
// the campaign row is locked, so that its senders' reservations count one
// after another, and its invitations over the last day that may have gone
// out are counted from the ledger. At the cap it is a NotNowError until
// the oldest of them is a day old.
func checkDailyCap(ctx context.Context, tx pgx.Tx, t *Target, req BeginRequest) error {
	if t.DailyCap == 0 || req.Action != ActionInvite {
		return nil
	}
	now := req.Now
	var n int
	var oldest *time.Time
	err := tx.QueryRow(ctx, `WITH c AS (SELECT id FROM campaigns WHERE id = $1 FOR UPDATE)
		SELECT count(*), min(CASE WHEN s.window_at = 'infinity' THEN NULL ELSE s.window_at END)
		FROM c JOIN campaign_senders cs ON cs.campaign_id = c.id
		JOIN sends s ON s.account_id = cs.account_id AND s.action = 'invite'
			AND s.window_at > $2::timestamptz - interval '1 day' AND s.outcome IN ('in_flight', 'unknown', 'sent')
		JOIN targets t ON t.id = s.target_id AND t.campaign_id = c.id`, t.CampaignID, now).Scan(&n, &oldest)
	if err != nil {
		return err
	}
	if n < t.DailyCap {
		return nil
	}
	until := now.Add(time.Minute) // only calls still out: look again soon
	if oldest != nil {
		until = oldest.Add(24 * time.Hour)
	}
	return &NotNowError{Until: until, Reason: fmt.Sprintf("campaign daily cap of %d invitations reached", t.DailyCap),
		Released: until.Sub(now) > req.HoldFor}
}
