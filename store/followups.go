package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// FollowUp counts what became of a campaign's sent invitations after they
// were sent (docs/acceptances.md, docs/withdrawals.md).
type FollowUp struct {
	// Sent counts the targets sent.
	Sent int
	// Accepted counts those accepted (targets.accepted_at).
	Accepted int
	// Withdrawn counts those withdrawn as stale (targets.withdrawn_at).
	Withdrawn int
	// Gone counts those the sent list no longer held when their
	// withdrawal was due, and not recorded accepted (declined, or accepted
	// before a poll saw it).
	Gone int
	// Open counts the invitations still awaiting an answer: sent with an
	// invitation id, neither accepted, withdrawn nor gone.
	Open int
}

// FollowUps counts the follow-up of the sent invitations of each campaign
// of ids; a campaign without any is absent.
func (s *Store) FollowUps(ctx context.Context, ids []int64) (map[int64]FollowUp, error) {
	rows, err := s.pool.Query(ctx, `SELECT campaign_id, count(*), count(accepted_at),
			count(*) FILTER (WHERE withdrawn_at IS NOT NULL),
			count(*) FILTER (WHERE invitation_gone_at IS NOT NULL AND accepted_at IS NULL AND withdrawn_at IS NULL),
			count(*) FILTER (WHERE invitation_id IS NOT NULL AND accepted_at IS NULL AND withdrawn_at IS NULL AND invitation_gone_at IS NULL)
		FROM targets WHERE campaign_id = ANY($1) AND status = 'sent' GROUP BY campaign_id`, ids)
	if err != nil {
		return nil, translate("follow-ups", err)
	}
	out := map[int64]FollowUp{}
	var id int64
	var f FollowUp
	_, err = pgx.ForEachRow(rows, []any{&id, &f.Sent, &f.Accepted, &f.Withdrawn, &f.Gone, &f.Open}, func() error {
		out[id] = f
		return nil
	})
	return out, translate("follow-ups", err)
}
