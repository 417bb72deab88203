-- +goose Up
-- Pacing per action, with safe defaults per provider (docs/pacing.md).
--
-- Every call an account makes to its provider (an invitation, a profile
-- lookup, and later a withdrawal or a relations poll) is paced per action:
-- rolling limits, a minimum gap with random jitter, working hours. What an
-- account sets for an action is used for it; an action it sets nothing for
-- runs on its provider's defaults, unless the account opts out with
-- accounts.pacing = 'unlimited'.
--
-- Upgrading: existing accounts take the default pacing mode, so an action
-- with no limits or gap of its own (often profile lookups) is paced by its
-- provider's defaults from now on. `outreach status` shows which accounts
-- run on defaults; docs/pacing.md says how to keep the old behaviour.

-- The actions that are paced. 'withdraw' and 'poll' are allowed already,
-- so the features that add them only add their code and default rows.
ALTER TABLE account_limits DROP CONSTRAINT IF EXISTS account_limits_action_check;
ALTER TABLE account_limits ADD CONSTRAINT account_limits_action_check
    CHECK (action IN ('invite', 'lookup', 'withdraw', 'poll'));
ALTER TABLE sends DROP CONSTRAINT IF EXISTS sends_action_check;
ALTER TABLE sends ADD CONSTRAINT sends_action_check
    CHECK (action IN ('invite', 'lookup', 'withdraw', 'poll')) NOT VALID;
ALTER TABLE sends VALIDATE CONSTRAINT sends_action_check;

-- 'default': the provider's defaults apply to each action the account
-- sets no limits (or no gap) of its own for, and an action with limits
-- but no gap at all is spread evenly over its tightest window.
-- 'unlimited': an explicit opt-out; only what the account sets itself
-- applies, nothing if it sets nothing.
ALTER TABLE accounts ADD COLUMN pacing text NOT NULL DEFAULT 'default'
    CONSTRAINT accounts_pacing_check CHECK (pacing IN ('default', 'unlimited'));

-- The gap of the account's actions other than invitations, whose gap stays
-- in accounts.min_gap and accounts.gap_jitter. A row with both zero says
-- "no gap" for the action (its limits are then spread evenly).
CREATE TABLE account_pacing (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    action     text NOT NULL CHECK (action IN ('invite', 'lookup', 'withdraw', 'poll')),
    min_gap    interval NOT NULL DEFAULT '0'
               CONSTRAINT account_pacing_min_gap_range CHECK (min_gap >= interval '0' AND min_gap <= interval '1 day'),
    gap_jitter interval NOT NULL DEFAULT '0'
               CONSTRAINT account_pacing_gap_jitter_range CHECK (gap_jitter >= interval '0' AND gap_jitter <= interval '1 day'),
    PRIMARY KEY (account_id, action),
    CONSTRAINT account_pacing_invite_gap_is_in_accounts CHECK (action <> 'invite')
);

-- Each provider's default pacing: limits, and the gap with its jitter.
-- Change them with SQL to change every account that runs on defaults.
-- Gaps are at most a day and windows at most a year in these tables (and
-- account_pacing), so the workers never meet a length they cannot hold.
CREATE TABLE provider_limits (
    provider  text NOT NULL CHECK (provider IN ('unipile', 'partoo', 'altegio')),
    action    text NOT NULL CHECK (action IN ('invite', 'lookup', 'withdraw', 'poll')),
    max_count integer NOT NULL CHECK (max_count > 0),
    per       interval NOT NULL CONSTRAINT provider_limits_per_range CHECK (per > interval '0' AND per <= interval '365 days'),
    PRIMARY KEY (provider, action, per)
);

CREATE TABLE provider_pacing (
    provider   text NOT NULL CHECK (provider IN ('unipile', 'partoo', 'altegio')),
    action     text NOT NULL CHECK (action IN ('invite', 'lookup', 'withdraw', 'poll')),
    min_gap    interval NOT NULL DEFAULT '0'
               CONSTRAINT provider_pacing_min_gap_range CHECK (min_gap >= interval '0' AND min_gap <= interval '1 day'),
    gap_jitter interval NOT NULL DEFAULT '0'
               CONSTRAINT provider_pacing_gap_jitter_range CHECK (gap_jitter >= interval '0' AND gap_jitter <= interval '1 day'),
    PRIMARY KEY (provider, action)
);

-- Unipile's published guidance for LinkedIn: 80-100 invitations a day and
-- about 200 a week for a paid account, about 100 profile lookups a day,
-- random gaps of minutes. Partoo and Altegio publish no limits: these are
-- this project's choice, gentle on a shared API key (Partoo's rule of one
-- invitation per user every 5 minutes is the outcome policy's).
INSERT INTO provider_limits (provider, action, max_count, per) VALUES
    ('unipile', 'invite', 80,  '1 day'),
    ('unipile', 'invite', 200, '7 days'),
    ('unipile', 'lookup', 100, '1 day'),
    ('partoo',  'invite', 300, '1 hour'),
    ('altegio', 'invite', 100, '1 hour');
INSERT INTO provider_pacing (provider, action, min_gap, gap_jitter) VALUES
    ('unipile', 'invite', '90 seconds', '150 seconds'),
    ('unipile', 'lookup', '30 seconds', '60 seconds'),
    ('partoo',  'invite', '2 seconds',  '3 seconds'),
    ('altegio', 'invite', '2 seconds',  '3 seconds');

-- The ledger keeps, per call, the gap drawn for it (min_gap plus a random
-- share of gap_jitter): the account's next call of the same action waits
-- until window_at + gap. NULL for calls made before this migration or
-- without a gap.
ALTER TABLE sends ADD COLUMN gap interval;

-- The limits that apply: an account's own for each action it has any for,
-- else (pacing 'default') its provider's. source is 'custom' or 'default'.
CREATE VIEW account_limits_effective AS
SELECT l.account_id, l.action, l.max_count, l.per, 'custom'::text AS source
FROM account_limits l
UNION ALL
SELECT a.id, d.action, d.max_count, d.per, 'default'::text
FROM accounts a JOIN provider_limits d ON d.provider = a.provider
WHERE a.pacing = 'default'
  AND NOT EXISTS (SELECT 1 FROM account_limits l WHERE l.account_id = a.id AND l.action = d.action);

-- The gaps that apply: an account's own for each action it sets one for
-- (accounts.min_gap/gap_jitter for invitations, account_pacing for the
-- rest), else (pacing 'default') its provider's. An action with limits but
-- no gap here is spread evenly by the workers (docs/pacing.md).
CREATE VIEW account_pacing_effective AS
SELECT a.id AS account_id, 'invite'::text AS action, a.min_gap, a.gap_jitter, 'custom'::text AS source
FROM accounts a
WHERE a.min_gap > interval '0' OR a.gap_jitter > interval '0'
UNION ALL
SELECT p.account_id, p.action, p.min_gap, p.gap_jitter, 'custom'::text
FROM account_pacing p
UNION ALL
SELECT a.id, d.action, d.min_gap, d.gap_jitter, 'default'::text
FROM accounts a JOIN provider_pacing d ON d.provider = a.provider
WHERE a.pacing = 'default'
  AND NOT (d.action = 'invite' AND (a.min_gap > interval '0' OR a.gap_jitter > interval '0'))
  AND NOT EXISTS (SELECT 1 FROM account_pacing p WHERE p.account_id = a.id AND p.action = d.action);

-- Wake the scheduler when pacing changes, as limits do.
CREATE TRIGGER accounts_notify_pacing AFTER UPDATE OF pacing ON accounts
    FOR EACH ROW WHEN (OLD.pacing IS DISTINCT FROM NEW.pacing)
    EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER account_pacing_notify AFTER INSERT OR UPDATE OR DELETE ON account_pacing
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER provider_limits_notify AFTER INSERT OR UPDATE OR DELETE ON provider_limits
    FOR EACH STATEMENT EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER provider_pacing_notify AFTER INSERT OR UPDATE OR DELETE ON provider_pacing
    FOR EACH STATEMENT EXECUTE FUNCTION outreach_notify();

-- +goose Down
DROP VIEW account_pacing_effective;
DROP VIEW account_limits_effective;
ALTER TABLE sends DROP COLUMN gap;
DROP TABLE provider_pacing;
DROP TABLE provider_limits;
DROP TABLE account_pacing;
DROP TRIGGER accounts_notify_pacing ON accounts;
ALTER TABLE accounts DROP COLUMN pacing;
DELETE FROM sends WHERE action NOT IN ('invite', 'lookup');
DELETE FROM account_limits WHERE action NOT IN ('invite', 'lookup');
ALTER TABLE sends DROP CONSTRAINT sends_action_check;
ALTER TABLE sends ADD CONSTRAINT sends_action_check CHECK (action IN ('invite', 'lookup'));
ALTER TABLE account_limits DROP CONSTRAINT account_limits_action_check;
ALTER TABLE account_limits ADD CONSTRAINT account_limits_action_check CHECK (action IN ('invite', 'lookup'));
