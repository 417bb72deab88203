package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// RateScope is what an acceptance rate is counted over.
type RateScope string

// Scopes of acceptance rates.
const (
	RateAccount  RateScope = "account"
	RateCampaign RateScope = "campaign"
	// RateTemplate counts per message template text, across campaigns.
	RateTemplate RateScope = "template"
)

// AcceptanceRate is how many sent invitations were accepted, over one
// account, campaign or message template.
type AcceptanceRate struct {
	Scope RateScope `json:"scope"`
	// AccountID and Account name the account (account scope: the
	// account that sent; campaign scope: the campaign's account);
	// CampaignID and Campaign the campaign (campaign scope).
	AccountID  int64  `json:"account_id,omitempty"`
	Account    string `json:"account,omitempty"`
	CampaignID int64  `json:"campaign_id,omitempty"`
	Campaign   string `json:"campaign,omitempty"`
	// Template is the message template (template scope; "" is "no
	// note"), Campaigns how many campaigns use it.
	Template  string `json:"template,omitempty"`
	Campaigns int    `json:"campaigns,omitempty"`
	// Sent counts sent invitations, Accepted those accepted; Rate is
	// Accepted/Sent (0 with none sent).
	Sent     int     `json:"sent"`
	Accepted int     `json:"accepted"`
	Rate     float64 `json:"rate"`
}

// AcceptanceRates reads the acceptance rates of every account, campaign
// and message template with at least one sent invitation.
func (s *Store) AcceptanceRates(ctx context.Context) ([]AcceptanceRate, error) {
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT t.campaign_id, t.account_id, count(*) AS sent, count(t.accepted_at) AS accepted
			FROM targets t WHERE t.status = 'sent' GROUP BY t.campaign_id, t.account_id)
		SELECT 'account', a.id, a.name, 0::bigint, '', '', 0::bigint, sum(c.sent)::bigint, sum(c.accepted)::bigint
		FROM c JOIN accounts a ON a.id = c.account_id GROUP BY a.id, a.name
		UNION ALL
		SELECT 'campaign', a.id, a.name, k.id, k.name, '', 0, sum(c.sent)::bigint, sum(c.accepted)::bigint
		FROM c JOIN campaigns k ON k.id = c.campaign_id JOIN accounts a ON a.id = k.account_id GROUP BY a.id, a.name, k.id, k.name
		UNION ALL
		SELECT 'template', 0, '', 0, '', k.message_template, count(DISTINCT k.id), sum(c.sent)::bigint, sum(c.accepted)::bigint
		FROM c JOIN campaigns k ON k.id = c.campaign_id GROUP BY k.message_template
		ORDER BY 1, 2, 4, 6`)
	if err != nil {
		return nil, translate("acceptance rates", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AcceptanceRate, error) {
		var a AcceptanceRate
		err := r.Scan(&a.Scope, &a.AccountID, &a.Account, &a.CampaignID, &a.Campaign, &a.Template, &a.Campaigns, &a.Sent, &a.Accepted)
		if a.Sent > 0 {
			a.Rate = float64(a.Accepted) / float64(a.Sent)
		}
		return a, err
	})
	return out, translate("acceptance rates", err)
}
