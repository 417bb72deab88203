-- +goose Up
-- Sender pools (docs/pools.md): a campaign sends from a set of accounts of
-- one provider, and one account can serve several campaigns, sharing its
-- budget between them by weight.
--
-- A campaign's senders are rows of campaign_senders. Every campaign has its
-- own account (campaigns.account_id, still required) as a sender: a
-- campaign inserted the old way is a pool of one and works as before. Rows
-- can be added and deleted at any time, also while the system runs.
--
-- A target of a campaign with one sender takes that account when inserted,
-- as before. A target of a pool (two senders or more) has no account
-- (targets.account_id NULL) until the scheduler plans it: it then goes to a
-- sender with a send slot now, in proportion to the senders' free slots, and
-- that sender looks the person up and invites them. The choice never changes
-- once an invitation may have gone out (an invite in the ledger that is in
-- flight, unknown or sent); before that, a target whose sender is paused,
-- disabled or taken out of the pool goes back to the pool for the others.

CREATE TABLE campaign_senders (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, account_id)
);
CREATE INDEX campaign_senders_account ON campaign_senders (account_id);

INSERT INTO campaign_senders (campaign_id, account_id) SELECT id, account_id FROM campaigns;

-- Campaigns sharing an account share its slots in proportion to weight;
-- daily_cap bounds the campaign's invitations over the last 24 hours,
-- counted from the ledger (NULL: no cap of its own).
ALTER TABLE campaigns ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight > 0);
ALTER TABLE campaigns ADD COLUMN daily_cap integer CHECK (daily_cap > 0);

-- A campaign's own account is one of its senders.
-- +goose StatementBegin
CREATE FUNCTION campaigns_add_sender() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_senders (campaign_id, account_id) VALUES (NEW.id, NEW.account_id)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER campaigns_add_sender AFTER INSERT OR UPDATE OF account_id ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_add_sender();

-- A pool's senders are all of one provider.
-- +goose StatementBegin
CREATE FUNCTION campaign_senders_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    want text;
    got  text;
BEGIN
    SELECT a.provider INTO want FROM campaigns c JOIN accounts a ON a.id = c.account_id WHERE c.id = NEW.campaign_id;
    SELECT provider INTO got FROM accounts WHERE id = NEW.account_id;
    IF want IS DISTINCT FROM got THEN
        RAISE EXCEPTION 'account % is a % account; campaign % sends with %', NEW.account_id, got, NEW.campaign_id, want
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER campaign_senders_check BEFORE INSERT OR UPDATE ON campaign_senders
    FOR EACH ROW EXECUTE FUNCTION campaign_senders_check();

-- A sender taken out of a pool gives back its targets that cannot have
-- been invited yet (pending, no invite in flight, unknown or sent).
-- +goose StatementBegin
CREATE FUNCTION campaign_senders_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t SET account_id = NULL, wait_reason = NULL, next_attempt_at = least(t.next_attempt_at, now()),
        updated_at = now()
    WHERE t.campaign_id = OLD.campaign_id AND t.account_id = OLD.account_id AND t.status = 'pending'
        AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.target_id = t.id AND s.action = 'invite'
            AND s.outcome IN ('in_flight', 'unknown', 'sent'));
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER campaign_senders_release AFTER DELETE ON campaign_senders
    FOR EACH ROW EXECUTE FUNCTION campaign_senders_release();

CREATE TRIGGER campaign_senders_notify AFTER INSERT OR DELETE ON campaign_senders
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER campaigns_notify_weight AFTER UPDATE OF weight, daily_cap ON campaigns
    FOR EACH ROW WHEN ((OLD.weight, OLD.daily_cap) IS DISTINCT FROM (NEW.weight, NEW.daily_cap))
    EXECUTE FUNCTION outreach_notify();

-- A pool's targets have no account until planned.
ALTER TABLE targets ALTER COLUMN account_id DROP NOT NULL;
-- Unassigned due targets of a pool, for the planner.
CREATE INDEX targets_pool_due ON targets (campaign_id, (provider_id IS NULL), next_attempt_at)
    WHERE status = 'pending' AND normalized_identifier IS NOT NULL AND account_id IS NULL;

-- Redefined from 00001: a target of a campaign with one sender takes it; a
-- target of a pool waits for the planner, unless given a sender of the
-- campaign.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION targets_set_account() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    campaign_account bigint;
    senders          integer;
BEGIN
    SELECT account_id INTO campaign_account FROM campaigns WHERE id = NEW.campaign_id;
    SELECT count(*) INTO senders FROM campaign_senders WHERE campaign_id = NEW.campaign_id;
    IF NEW.account_id IS NULL THEN
        IF senders <= 1 THEN
            NEW.account_id := coalesce((SELECT account_id FROM campaign_senders WHERE campaign_id = NEW.campaign_id),
                campaign_account);
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM campaign_senders WHERE campaign_id = NEW.campaign_id AND account_id = NEW.account_id)
        AND NEW.account_id IS DISTINCT FROM campaign_account THEN
        RAISE EXCEPTION 'target account % is not a sender of campaign %', NEW.account_id, NEW.campaign_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- target_waits, redefined from 00006: a pool's target not yet given to a
-- sender says why it waits:
--   pool         every sender that could take it has no slot now: "pool
--                out of budget", until the earliest sender's next slot
--   pool_paused  every sender is paused or disabled, until the first pause
--                ends (NULL if all are disabled)
--   pool_due     a sender has slots; it waits for the next planning pass
-- The other keywords are those of 00006.
CREATE OR REPLACE VIEW target_waits AS
SELECT k.target_id, k.campaign_id, k.account_id, k.status, k.wait,
    CASE k.wait
        WHEN 'sending' THEN 'sending: a worker is calling the provider'
        WHEN 'queued' THEN 'queued: its task is in Redis' || coalesce(' (retry after ' || k.error_type || ')', '')
        WHEN 'campaign_paused' THEN 'campaign ' || k.campaign_status || '; run `outreach resume campaign ' || k.campaign_name || '`'
        WHEN 'new' THEN 'new: the scheduler has not read its identifier yet'
        WHEN 'account_disabled' THEN 'account disabled (' || coalesce(nullif(k.pause_reason, ''), 'no reason given')
            || '); run `outreach resume account ' || k.account_name || '`'
        WHEN 'account_paused' THEN 'account paused (' || coalesce(nullif(k.pause_reason, ''), 'no reason given') || ')'
        WHEN 'deferred' THEN coalesce('deferred after ' || k.error_type, 'not due yet (its next_attempt_at is later)')
        WHEN 'handed_back' THEN coalesce(k.target_wait_reason, substr(k.last_error, length('waiting: ') + 1))
        WHEN 'due' THEN 'due: waiting for its turn in the account''s next send slots'
        WHEN 'pool' THEN 'pool out of budget'
        WHEN 'pool_paused' THEN 'every sender of the pool is paused or disabled'
        WHEN 'pool_due' THEN 'due: waiting for a sender of the pool to take it'
        ELSE k.account_wait_reason
    END AS reason,
    k.until,
    outreach_local_time(k.until, coalesce(k.timezone, 'UTC')) AS until_local
FROM (
    SELECT t.id AS target_id, t.campaign_id, t.account_id, t.status, t.error_type, t.last_error,
        t.wait_reason AS target_wait_reason, c.status AS campaign_status, c.name AS campaign_name,
        a.name AS account_name, a.pause_reason, a.timezone, aw.reason AS account_wait_reason,
        CASE
            WHEN t.status = 'sending' THEN 'sending'
            WHEN t.status = 'queued' THEN 'queued'
            WHEN c.status <> 'active' THEN 'campaign_paused'
            WHEN t.normalized_identifier IS NULL THEN 'new'
            WHEN t.account_id IS NULL AND t.next_attempt_at > now() THEN 'deferred'
            WHEN t.account_id IS NULL AND pw.active = 0 THEN 'pool_paused'
            WHEN t.account_id IS NULL AND pw.free = 0 THEN 'pool'
            WHEN t.account_id IS NULL THEN 'pool_due'
            WHEN a.status = 'disabled' THEN 'account_disabled'
            WHEN a.status = 'paused' AND a.paused_until > now() THEN 'account_paused'
            WHEN t.next_attempt_at > now() AND (t.wait_reason IS NOT NULL OR t.last_error LIKE 'waiting: %') THEN 'handed_back'
            WHEN t.next_attempt_at > now() THEN 'deferred'
            WHEN aw.kind IS NOT NULL THEN aw.kind
            ELSE 'due'
        END AS wait,
        CASE
            WHEN t.status = 'sending' THEN t.locked_until
            WHEN t.status = 'queued' THEN greatest(t.slot_at, t.next_attempt_at)
            WHEN c.status <> 'active' THEN NULL
            WHEN t.normalized_identifier IS NULL THEN NULL
            WHEN t.account_id IS NULL AND t.next_attempt_at > now() THEN t.next_attempt_at
            WHEN t.account_id IS NULL AND pw.active = 0 THEN pw.paused_until
            WHEN t.account_id IS NULL AND pw.free = 0 THEN pw.until
            WHEN t.account_id IS NULL THEN NULL
            WHEN a.status = 'disabled' THEN NULL
            WHEN a.status = 'paused' AND a.paused_until > now() THEN a.paused_until
            WHEN t.next_attempt_at > now() THEN t.next_attempt_at
            WHEN aw.kind IS NOT NULL THEN aw.until
            ELSE NULL
        END AS until
    FROM targets t
    JOIN campaigns c ON c.id = t.campaign_id
    LEFT JOIN accounts a ON a.id = t.account_id
    LEFT JOIN account_waits aw ON aw.account_id = t.account_id
        AND aw.action = CASE WHEN t.provider_id IS NULL THEN 'lookup' ELSE 'invite' END
        AND (aw.until IS NULL OR aw.until > now())
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.active) AS active,
            count(*) FILTER (WHERE x.active AND x.kind IS NULL) AS free,
            min(x.until) FILTER (WHERE x.active) AS until,
            min(x.paused_until) FILTER (WHERE NOT x.active) AS paused_until
        FROM (SELECT sa.status = 'active' OR (sa.status = 'paused' AND sa.paused_until <= now()) AS active,
                sa.paused_until, paw.kind, paw.until
            FROM campaign_senders cs JOIN accounts sa ON sa.id = cs.account_id
            LEFT JOIN account_waits paw ON paw.account_id = sa.id
                AND paw.action = CASE WHEN t.provider_id IS NULL THEN 'lookup' ELSE 'invite' END
                AND (paw.until IS NULL OR paw.until > now())
            WHERE cs.campaign_id = t.campaign_id) x
        WHERE t.account_id IS NULL
    ) pw ON true
    WHERE t.status IN ('pending', 'queued', 'sending')
) k;

-- +goose Down
DROP TRIGGER campaigns_notify_weight ON campaigns;
DROP TRIGGER campaign_senders_notify ON campaign_senders;
DROP TRIGGER campaign_senders_release ON campaign_senders;
DROP FUNCTION campaign_senders_release();
DROP TRIGGER campaign_senders_check ON campaign_senders;
DROP FUNCTION campaign_senders_check();
DROP TRIGGER campaigns_add_sender ON campaigns;
DROP FUNCTION campaigns_add_sender();
-- target_waits as in 00006 (it reads campaign_senders now).
CREATE OR REPLACE VIEW target_waits AS
SELECT k.target_id, k.campaign_id, k.account_id, k.status, k.wait,
    CASE k.wait
        WHEN 'sending' THEN 'sending: a worker is calling the provider'
        WHEN 'queued' THEN 'queued: its task is in Redis' || coalesce(' (retry after ' || k.error_type || ')', '')
        WHEN 'campaign_paused' THEN 'campaign ' || k.campaign_status || '; run `outreach resume campaign ' || k.campaign_name || '`'
        WHEN 'new' THEN 'new: the scheduler has not read its identifier yet'
        WHEN 'account_disabled' THEN 'account disabled (' || coalesce(nullif(k.pause_reason, ''), 'no reason given')
            || '); run `outreach resume account ' || k.account_name || '`'
        WHEN 'account_paused' THEN 'account paused (' || coalesce(nullif(k.pause_reason, ''), 'no reason given') || ')'
        WHEN 'deferred' THEN coalesce('deferred after ' || k.error_type, 'not due yet (its next_attempt_at is later)')
        WHEN 'handed_back' THEN coalesce(k.target_wait_reason, substr(k.last_error, length('waiting: ') + 1))
        WHEN 'due' THEN 'due: waiting for its turn in the account''s next send slots'
        ELSE k.account_wait_reason
    END AS reason,
    k.until,
    outreach_local_time(k.until, k.timezone) AS until_local
FROM (
    SELECT t.id AS target_id, t.campaign_id, t.account_id, t.status, t.error_type, t.last_error,
        t.wait_reason AS target_wait_reason, c.status AS campaign_status, c.name AS campaign_name,
        a.name AS account_name, a.pause_reason, a.timezone, aw.reason AS account_wait_reason,
        CASE
            WHEN t.status = 'sending' THEN 'sending'
            WHEN t.status = 'queued' THEN 'queued'
            WHEN c.status <> 'active' THEN 'campaign_paused'
            WHEN t.normalized_identifier IS NULL THEN 'new'
            WHEN a.status = 'disabled' THEN 'account_disabled'
            WHEN a.status = 'paused' AND a.paused_until > now() THEN 'account_paused'
            WHEN t.next_attempt_at > now() AND (t.wait_reason IS NOT NULL OR t.last_error LIKE 'waiting: %') THEN 'handed_back'
            WHEN t.next_attempt_at > now() THEN 'deferred'
            WHEN aw.kind IS NOT NULL THEN aw.kind
            ELSE 'due'
        END AS wait,
        CASE
            WHEN t.status = 'sending' THEN t.locked_until
            WHEN t.status = 'queued' THEN greatest(t.slot_at, t.next_attempt_at)
            WHEN c.status <> 'active' THEN NULL
            WHEN t.normalized_identifier IS NULL THEN NULL
            WHEN a.status = 'disabled' THEN NULL
            WHEN a.status = 'paused' AND a.paused_until > now() THEN a.paused_until
            WHEN t.next_attempt_at > now() THEN t.next_attempt_at
            WHEN aw.kind IS NOT NULL THEN aw.until
            ELSE NULL
        END AS until
    FROM targets t
    JOIN campaigns c ON c.id = t.campaign_id
    JOIN accounts a ON a.id = t.account_id
    LEFT JOIN account_waits aw ON aw.account_id = t.account_id
        AND aw.action = CASE WHEN t.provider_id IS NULL THEN 'lookup' ELSE 'invite' END
        AND (aw.until IS NULL OR aw.until > now())
    WHERE t.status IN ('pending', 'queued', 'sending')
) k;
DROP INDEX targets_pool_due;
UPDATE targets t SET account_id = c.account_id FROM campaigns c WHERE c.id = t.campaign_id AND t.account_id IS NULL;
ALTER TABLE targets ALTER COLUMN account_id SET NOT NULL;
ALTER TABLE campaigns DROP COLUMN daily_cap;
ALTER TABLE campaigns DROP COLUMN weight;
DROP TABLE campaign_senders;
-- targets_set_account goes back to its 00001 definition.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION targets_set_account() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    campaign_account bigint;
BEGIN
    SELECT account_id INTO campaign_account FROM campaigns WHERE id = NEW.campaign_id;
    IF NEW.account_id IS NULL THEN
        NEW.account_id := campaign_account;
    ELSIF campaign_account IS NOT NULL AND NEW.account_id <> campaign_account THEN
        RAISE EXCEPTION 'target account % is not the account % of campaign %', NEW.account_id, campaign_account, NEW.campaign_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
