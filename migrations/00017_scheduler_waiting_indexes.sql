-- +goose Up
-- The scheduler's questions per (campaign, sender), answered by one index
-- probe each whatever the table's size (issue 15): does the sender have
-- due targets of the campaign (AccountsWithWork), and which are they,
-- oldest first (the claim). targets_due (00001) leads with the campaign
-- alone, so for a pool's sender those questions read every due target of
-- the campaign that other senders hold; and a bitmap scan of it read every
-- due target of a campaign, to answer an EXISTS. Only waiting rows are in
-- these indexes, as in targets_due.
CREATE INDEX targets_due_sender ON targets (campaign_id, account_id, (provider_id IS NULL), next_attempt_at)
    WHERE status = 'pending' AND normalized_identifier IS NOT NULL;
-- New targets (identifier not yet normalised) of a sender, oldest first:
-- the claim normalises them itself when the sender has a slot now
-- (store.ClaimAndPrepare), so that such a target goes from new to queued in
-- one row update instead of two.
CREATE INDEX targets_new_sender ON targets (campaign_id, account_id, next_attempt_at)
    WHERE status = 'pending' AND normalized_identifier IS NULL;

-- +goose Down
DROP INDEX targets_new_sender;
DROP INDEX targets_due_sender;
