-- +goose Up
-- Withdrawing stale invitations (docs/withdrawals.md).
--
-- An invitation still pending some time after it was sent (by default 21
-- days) is withdrawn through Unipile's DELETE /api/v1/users/invite/sent/{id},
-- paced and counted as the action 'withdraw' (allowed since 00004). After a
-- withdrawal LinkedIn refuses a new invitation to that person from that
-- account for about three weeks (cannot_resend_yet): a target of any
-- campaign for the person waits until the block is over instead of
-- spending an invitation on a sure refusal.
--
-- Upgrading: accounts take withdraw_after '21 days', so invitations sent
-- by outreach more than three weeks ago and still pending are withdrawn
-- from the next scheduler tick on (paced). Set accounts.withdraw_after to
-- NULL (or campaigns.withdraw_stale to false) to keep them.

-- How long an invitation of the account may stay pending before it is
-- withdrawn; NULL: never. A campaign may set its own (withdraw_after) or
-- opt out (withdraw_stale false).
ALTER TABLE accounts ADD COLUMN withdraw_after interval DEFAULT '21 days'
    CONSTRAINT accounts_withdraw_after_positive CHECK (withdraw_after > interval '0');
-- How long LinkedIn refuses a new invitation to a person after a
-- withdrawal by this account; targets of the person wait that long.
ALTER TABLE accounts ADD COLUMN withdraw_block interval NOT NULL DEFAULT '21 days'
    CONSTRAINT accounts_withdraw_block_range CHECK (withdraw_block >= interval '0' AND withdraw_block <= interval '366 days');
-- Count invitations sent outside outreach (by hand, another tool), as read
-- from the sent list, against the account's invitation limits: they are
-- written to the ledger as sends rows (action 'invite', outcome 'outside',
-- window_at when LinkedIn says they were sent).
ALTER TABLE accounts ADD COLUMN count_outside_invites boolean NOT NULL DEFAULT false;
-- When the account's sent list was last read (by a withdrawal or a read of
-- its own for count_outside_invites); an account that counts outside
-- invitations has it read at least every sent_list_every (a 'poll' call,
-- paced as such); sent_list_next_at marks a read planned.
ALTER TABLE accounts ADD COLUMN sent_list_read_at timestamptz;
ALTER TABLE accounts ADD COLUMN sent_list_every interval NOT NULL DEFAULT '6 hours'
    CONSTRAINT accounts_sent_list_every_positive CHECK (sent_list_every > interval '0');
ALTER TABLE accounts ADD COLUMN sent_list_next_at timestamptz;

-- The campaign's own age (NULL: its account's), and an opt-out.
ALTER TABLE campaigns ADD COLUMN withdraw_after interval
    CONSTRAINT campaigns_withdraw_after_positive CHECK (withdraw_after > interval '0');
ALTER TABLE campaigns ADD COLUMN withdraw_stale boolean NOT NULL DEFAULT true;

-- A sent target whose invitation was withdrawn keeps status 'sent' and
-- records when (withdrawn_at). invitation_gone_at: the sent list no longer
-- showed the invitation when a withdrawal was due (the person accepted or
-- declined), so it is not withdrawn. withdraw_next_at: not before then
-- (a withdrawal queued, deferred or waiting for the account's pacing).
ALTER TABLE targets ADD COLUMN withdrawn_at timestamptz;
ALTER TABLE targets ADD COLUMN invitation_gone_at timestamptz;
ALTER TABLE targets ADD COLUMN withdraw_next_at timestamptz;

-- Invitations that may become stale, oldest first: the planner's query
-- reads only these.
CREATE INDEX targets_withdrawable ON targets (finished_at)
    WHERE status = 'sent' AND invitation_id IS NOT NULL AND withdrawn_at IS NULL AND invitation_gone_at IS NULL;
-- Withdrawals per person, for the block at reservation, and recent
-- withdrawals, for the block at planning.
CREATE INDEX targets_withdrawn ON targets (account_id, provider_id, withdrawn_at) WHERE withdrawn_at IS NOT NULL;
CREATE INDEX targets_withdrawn_recent ON targets (withdrawn_at) WHERE withdrawn_at IS NOT NULL;

-- A withdrawn target no longer holds its person: another campaign's target
-- of the person may invite them again once the block is over.
DROP INDEX targets_one_per_person;
CREATE UNIQUE INDEX targets_one_per_person ON targets (account_id, provider_id)
    WHERE provider_id IS NOT NULL AND status NOT IN ('skipped', 'failed') AND withdrawn_at IS NULL;

-- Outside invitations are written once each.
CREATE UNIQUE INDEX sends_outside ON sends (account_id, invitation_id) WHERE outcome = 'outside';
CREATE INDEX sends_invitation ON sends (account_id, invitation_id) WHERE invitation_id IS NOT NULL;

-- Unipile publishes no limit for withdrawals; these are gentle: at most 50
-- a day and a minute or two between two of them.
INSERT INTO provider_limits (provider, action, max_count, per) VALUES
    ('unipile', 'withdraw', 50, '1 day');
INSERT INTO provider_pacing (provider, action, min_gap, gap_jitter) VALUES
    ('unipile', 'withdraw', '60 seconds', '90 seconds');

-- +goose Down
DELETE FROM provider_pacing WHERE provider = 'unipile' AND action = 'withdraw';
DELETE FROM provider_limits WHERE provider = 'unipile' AND action = 'withdraw';
DELETE FROM sends WHERE outcome = 'outside';
DROP INDEX sends_invitation;
DROP INDEX sends_outside;
DROP INDEX targets_one_per_person;
CREATE UNIQUE INDEX targets_one_per_person ON targets (account_id, provider_id)
    WHERE provider_id IS NOT NULL AND status NOT IN ('skipped', 'failed');
DROP INDEX targets_withdrawn_recent;
DROP INDEX targets_withdrawn;
DROP INDEX targets_withdrawable;
ALTER TABLE targets DROP COLUMN withdraw_next_at;
ALTER TABLE targets DROP COLUMN invitation_gone_at;
ALTER TABLE targets DROP COLUMN withdrawn_at;
ALTER TABLE campaigns DROP COLUMN withdraw_stale;
ALTER TABLE campaigns DROP COLUMN withdraw_after;
ALTER TABLE accounts DROP COLUMN sent_list_next_at;
ALTER TABLE accounts DROP COLUMN sent_list_every;
ALTER TABLE accounts DROP COLUMN sent_list_read_at;
ALTER TABLE accounts DROP COLUMN count_outside_invites;
ALTER TABLE accounts DROP COLUMN withdraw_block;
ALTER TABLE accounts DROP COLUMN withdraw_after;
