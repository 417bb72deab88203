-- +goose Up
-- Nothing waits in silence: every target that is not terminal says why it
-- waits and until when. docs/waiting.md explains each reason.
--
-- Reasons are stored where they are decided, never rewritten per target on
-- each tick:
--   - a target's own wait (a provider's deferral, a retry, a worker handing
--     it back) is on the target: next_attempt_at, error_type, wait_reason;
--   - an account's or a campaign's state (paused, disabled) is read from
--     accounts and campaigns as it is;
--   - what the scheduler's planner finds when an active account with due
--     work gets no send slot (working hours closed, a window full, the
--     minimum gap) is in account_waits, one row per account and action,
--     written only when it changes.
-- The view target_waits combines them.

-- account_waits: why an active account's due targets get no send slot now,
-- as the scheduler's planner last found it, and until when. A row whose
-- until has passed is stale and ignored; the planner deletes a row when the
-- account has slots again, and `outreach resume account` deletes them all.
CREATE TABLE account_waits (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    action     text NOT NULL CHECK (action IN ('invite', 'lookup')),
    -- hours (outside working hours), window (a rolling limit is full),
    -- gap (the minimum gap between invitations), pacing (anything else
    -- that puts the next slot later).
    kind       text NOT NULL CHECK (kind IN ('hours', 'window', 'gap', 'pacing')),
    reason     text NOT NULL,
    -- When the account's next slot for action comes, as planned; NULL when
    -- never (no working days).
    until      timestamptz,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, action)
);

-- Why a worker handed a queued target back (outside working hours, a limit
-- reached, the account paused, ...), until its next_attempt_at. Set when
-- it is handed back, cleared when the target is claimed again. (Its
-- last_error says the same as "waiting: ..."; target_waits reads that too,
-- for code that hands targets back without setting wait_reason.)
ALTER TABLE targets ADD COLUMN wait_reason text;
-- The send slot the scheduler planned for a queued target's task.
ALTER TABLE targets ADD COLUMN slot_at timestamptz;
-- Targets handed back, so that `outreach resume account` finds them
-- without reading the account's other targets.
CREATE INDEX targets_handed_back ON targets (account_id) WHERE wait_reason IS NOT NULL AND status = 'pending';

-- A time as a user of the account reads it: '2026-12-01 09:00 Europe/Paris'.
-- A time zone Postgres does not know shows as UTC.
-- +goose StatementBegin
CREATE FUNCTION outreach_local_time(at timestamptz, tz text) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF at IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN to_char(at AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI') || ' ' || tz;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
END
$$;
-- +goose StatementEnd

-- target_waits: one row per target that is not terminal, with why it waits
-- and until when:
--   wait         a keyword: sending, queued, campaign_paused, new,
--                account_disabled, account_paused, deferred, handed_back,
--                hours, window, gap, pacing, due
--   reason       what a person reads ("outside working hours",
--                "account paused (holiday)", ...)
--   until        when it can go on; NULL when only an operator can make it
--                (a paused campaign, a disabled account) or when it is due
--                now and only waits for its turn
--   until_local  until in the account's time zone
-- Filter it by campaign: WHERE campaign_id = 7, or for an account
-- WHERE campaign_id IN (SELECT id FROM campaigns WHERE account_id = 3); the
-- targets are then read through their campaign's index, not the whole
-- table (a filter on account_id alone reads the whole table).
CREATE VIEW target_waits AS
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

-- +goose Down
DROP VIEW target_waits;
DROP FUNCTION outreach_local_time(timestamptz, text);
DROP INDEX targets_handed_back;
ALTER TABLE targets DROP COLUMN slot_at;
ALTER TABLE targets DROP COLUMN wait_reason;
DROP TABLE account_waits;
