package store

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// Normalized is the outcome of normalising one new target's identifier.
type Normalized struct {
	// Identifier is the normalised identifier (a slug, an email, a user id).
	Identifier string
	// ProviderID is set when the identifier needs no lookup: a LinkedIn
	// member id, a Partoo user id, an Altegio email or phone.
	ProviderID string
	// Err makes the target fail with its message.
	Err error
}

// NormalizeFunc normalises the identifier of a target of an account at
// provider.
type NormalizeFunc func(p provider.Name, identifier string) Normalized

// PrepareStats counts what PrepareTargets did.
type PrepareStats struct {
	Seen, Failed, Skipped, Resolved, CacheHits, NeedLookup int
	// Pooled counts the resolved and waiting-for-lookup targets of pools
	// (no sender yet; also counted above).
	Pooled int
}

// PrepareTargets takes up to limit new targets (whose identifier is not yet
// normalised), normalises them with fn, and resolves them from the people
// cache where it can: a target becomes failed (bad identifier), skipped
// (the account already invites this person in another target, or the
// person is already connected or invited as seen by this account), resolved
// (provider id known: waiting for an invite slot) or waiting for a lookup.
// Several schedulers can run it at once; each takes different rows.
func (s *Store) PrepareTargets(ctx context.Context, limit int, fn NormalizeFunc) (PrepareStats, error) {
	var st PrepareStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		batch, err := lockNewTargets(ctx, tx, limit)
		if err != nil {
			return err
		}
		st.Seen = len(batch)
		if len(batch) == 0 {
			return nil
		}
		provs, idents := normalizeBatch(batch, fn)
		cache, err := cachedPeople(ctx, tx, provs, idents)
		if err != nil {
			return err
		}
		st.CacheHits += applyCache(batch, cache)
		if err := skipDuplicates(ctx, tx, batch); err != nil {
			return err
		}
		countPrepared(batch, &st)
		return updatePrepared(ctx, tx, batch)
	})
	if err != nil {
		return st, translate("prepare targets", err)
	}
	return st, nil
}

// preparing is one new target on its way through PrepareTargets.
type preparing struct {
	id, account     int64
	identifier      string
	provider        provider.Name
	norm            Normalized
	status          TargetStatus
	reason, errType string
	cacheHit        bool // its provider id came from the people cache
}

// cachedPerson is what the people cache knows of one person.
type cachedPerson struct {
	providerID, distance, invitation string
	firstName, lastName, headline    string
	lookedUpBy                       int64
	relationship                     bool
}

// lockNewTargets locks up to limit pending targets whose identifier is not
// yet normalised, skipping those another scheduler holds.
func lockNewTargets(ctx context.Context, tx pgx.Tx, limit int) ([]*preparing, error) {
	// A pool's target has no account yet: its campaign's gives the
	// provider, and minus its campaign id stands for the account, so that
	// the duplicate rule keeps one target per person in the pool.
	rows, err := tx.Query(ctx, `SELECT t.id, coalesce(t.account_id, -t.campaign_id), t.identifier, a.provider
			FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN accounts a ON a.id = coalesce(t.account_id, c.account_id)
			WHERE t.status = 'pending' AND t.normalized_identifier IS NULL
			ORDER BY t.id LIMIT $1 FOR UPDATE OF t SKIP LOCKED`, limit)
	if err != nil {
		return nil, err
	}
	var batch []*preparing
	for rows.Next() {
		r := &preparing{}
		if err := rows.Scan(&r.id, &r.account, &r.identifier, &r.provider); err != nil {
			rows.Close()
			return nil, err
		}
		batch = append(batch, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return batch, nil
}

// normalizeBatch normalises each target's identifier with fn, fails those
// it rejects, and returns the cache keys (provider, identifier) of those
// that still need a provider id.
func normalizeBatch(batch []*preparing, fn NormalizeFunc) (provs, idents []string) {
	for _, r := range batch {
		r.norm = fn(r.provider, r.identifier)
		r.status = TargetPending
		if r.norm.Err != nil {
			r.status, r.reason, r.errType = TargetFailed, r.norm.Err.Error(), "invalid_identifier"
			r.norm.Identifier = r.identifier
			continue
		}
		if r.norm.ProviderID == "" {
			provs = append(provs, string(r.provider))
			idents = append(idents, r.norm.Identifier)
		}
	}
	return provs, idents
}

// cachedPeople reads the people cache for the keys (provider, identifier),
// keyed the same way; it makes no query when there are none.
func cachedPeople(ctx context.Context, tx pgx.Tx, provs, idents []string) (map[[2]string]cachedPerson, error) {
	cache := map[[2]string]cachedPerson{}
	if len(idents) > 0 {
		crow, err := tx.Query(ctx, `SELECT p.provider, p.normalized_identifier, p.provider_id,
				coalesce(p.looked_up_by, 0), coalesce(p.network_distance, ''), p.is_relationship, coalesce(p.invitation_status, ''),
				coalesce(p.first_name, ''), coalesce(p.last_name, ''), coalesce(p.headline, '')
				FROM people p JOIN unnest($1::text[], $2::text[]) AS k(provider, ident)
				ON p.provider = k.provider AND p.normalized_identifier = k.ident`, provs, idents)
		if err != nil {
			return nil, err
		}
		for crow.Next() {
			var prov, ident string
			var c cachedPerson
			if err := crow.Scan(&prov, &ident, &c.providerID, &c.lookedUpBy, &c.distance, &c.relationship, &c.invitation,
				&c.firstName, &c.lastName, &c.headline); err != nil {
				crow.Close()
				return nil, err
			}
			cache[[2]string{prov, ident}] = c
		}
		if err := crow.Err(); err != nil {
			return nil, err
		}
	}
	return cache, nil
}

// applyCache gives the targets found in the cache their provider id, skips
// those the same account already saw connected or invited, and returns the
// number of cache hits.
func applyCache(batch []*preparing, cache map[[2]string]cachedPerson) (hits int) {
	for _, r := range batch {
		if r.status != TargetPending || r.norm.ProviderID != "" {
			continue
		}
		c, ok := cache[[2]string{string(r.provider), r.norm.Identifier}]
		if !ok {
			continue
		}
		hits++
		r.cacheHit = true
		r.norm.ProviderID = c.providerID
		if c.lookedUpBy == r.account && r.account > 0 {
			prof := provider.Profile{NetworkDistance: c.distance, IsRelationship: c.relationship, InvitationStatus: c.invitation}
			switch {
			case prof.Connected():
				r.status, r.reason, r.errType = TargetSkipped, "already connected", "already_connected"
			case prof.PendingInvitation():
				r.status, r.reason, r.errType = TargetSkipped, "an invitation is already pending", "invitation_pending"
			}
		}
	}
	return hits
}

// skipDuplicates keeps one live target per person and account: within the
// batch, and against targets already resolved; the others are skipped as
// duplicates.
func skipDuplicates(ctx context.Context, tx pgx.Tx, batch []*preparing) error {
	var accs []int64
	var pids []string
	for _, r := range batch {
		if r.status == TargetPending && r.norm.ProviderID != "" {
			accs = append(accs, r.account)
			pids = append(pids, r.norm.ProviderID)
		}
	}
	taken, err := livePersonTargets(ctx, tx, accs, pids, nil)
	if err != nil {
		return err
	}
	for _, r := range batch {
		if r.status == TargetPending && r.norm.ProviderID != "" {
			key := personKey(r.account, r.norm.ProviderID)
			if other, dup := taken[key]; dup && other != r.id {
				r.status, r.errType, r.reason = duplicate(other)
			} else {
				taken[key] = r.id
			}
		}
	}
	return nil
}

// countPrepared adds the batch's failed, skipped, resolved and
// waiting-for-lookup targets to st.
func countPrepared(batch []*preparing, st *PrepareStats) {
	for _, r := range batch {
		switch {
		case r.status == TargetFailed:
			st.Failed++
		case r.status == TargetSkipped:
			st.Skipped++
		case r.norm.ProviderID != "":
			st.Resolved++
		default:
			st.NeedLookup++
		}
		if r.account < 0 && r.status == TargetPending {
			st.Pooled++
		}
	}
}

// updatePrepared writes the batch's status, normalised identifier,
// provider id and reason in one statement.
func updatePrepared(ctx context.Context, tx pgx.Tx, batch []*preparing) error {
	ids := make([]int64, len(batch))
	statuses := make([]string, len(batch))
	norms := make([]string, len(batch))
	pidCol := make([]*string, len(batch))
	reasons := make([]*string, len(batch))
	types := make([]*string, len(batch))
	for i, r := range batch {
		ids[i], statuses[i], norms[i] = r.id, string(r.status), r.norm.Identifier
		if r.norm.ProviderID != "" {
			p := r.norm.ProviderID
			pidCol[i] = &p
		}
		if r.reason != "" {
			reason, typ := r.reason, r.errType
			reasons[i], types[i] = &reason, &typ
		}
	}
	// Skipped duplicates keep no provider id clash: the unique index
	// only covers live targets, and skipped is not live.
	_, err := tx.Exec(ctx, `UPDATE targets t SET status = u.status, normalized_identifier = u.norm,
				provider_id = u.pid, last_error = u.reason, error_type = u.typ, updated_at = now(),
				finished_at = CASE WHEN u.status IN ('skipped', 'failed') THEN now() END
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
				AS u(id, status, norm, pid, reason, typ)
			WHERE t.id = u.id`, ids, statuses, norms, pidCol, reasons, types)
	return err
}
