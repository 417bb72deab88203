-- +goose Up
-- Warm-up ramps (docs/warmup.md) and one owner per person across the
-- organisation (docs/owners.md).
--
-- Warm-up: a ramp per account grows its daily invitation budget stage by
-- stage (a stage is a day unless account_warmups.step says otherwise) up to
-- the account's limits, and steps back one stage when the provider warns.
-- The ramp is applied in the view account_limits_effective, which every
-- reader of limits uses (the planner, the reservation, status): it is
-- redefined here on top of account_limits_base, the view 00004 defined
-- under that name.
--
-- Upgrading: accounts that exist are not put on a ramp (they are warm).
-- Accounts inserted from now on start on their provider's default ramp
-- when provider_warmup.new_accounts says so (Unipile: yes).

-- Each provider's default ramp. new_accounts: whether an account inserted
-- from now on starts on it.
CREATE TABLE provider_warmup (
    provider     text PRIMARY KEY CHECK (provider IN ('unipile', 'partoo', 'altegio')),
    new_accounts boolean NOT NULL DEFAULT false,
    start_count  integer NOT NULL CHECK (start_count BETWEEN 1 AND 1000000),
    step_count   integer NOT NULL CHECK (step_count BETWEEN 0 AND 1000000),
    full_count   integer NOT NULL CHECK (full_count BETWEEN 1 AND 1000000),
    step         interval NOT NULL DEFAULT '1 day' CHECK (step > interval '0' AND step <= interval '366 days'),
    hold_for     interval NOT NULL DEFAULT '3 days' CHECK (hold_for >= interval '0' AND hold_for <= interval '366 days')
);

-- Unipile's guidance for LinkedIn: new or idle accounts ramp up slowly, to
-- 80-100 invitations a day. Partoo and Altegio have no such rule: their
-- ramps exist for whoever turns them on.
INSERT INTO provider_warmup (provider, new_accounts, start_count, step_count, full_count, step, hold_for) VALUES
    ('unipile', true,  5,  5,  80,  '1 day', '3 days'),
    ('partoo',  false, 20, 20, 300, '1 day', '1 day'),
    ('altegio', false, 20, 20, 100, '1 day', '1 day');

-- account_warmups: one ramp per account. Today's daily budget is
-- start_count + step_count * stage, at most full_count; the stage grows by
-- one every step after stage_since (a stage_since in the future holds the
-- ramp until then). Columns left out on INSERT take the provider's
-- defaults. Delete the row to end the ramp.
CREATE TABLE account_warmups (
    account_id      bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    start_count     integer NOT NULL,
    step_count      integer NOT NULL,
    -- NULL: the account's own invitation limit per 1 day, else its
    -- provider's provider_warmup.full_count.
    full_count      integer,
    step            interval NOT NULL,
    -- How long a warning of the provider holds the ramp.
    hold_for        interval NOT NULL,
    stage           integer NOT NULL DEFAULT 0,
    stage_since     timestamptz NOT NULL DEFAULT now(),
    last_warning    text,
    last_warning_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- warmup_problem returns the first rule the values break, naming the
-- column, or NULL. A NULL argument is not checked.
-- +goose StatementBegin
CREATE FUNCTION warmup_problem(start_count integer, step_count integer, full_count integer,
                               step interval, hold_for interval, stage integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF start_count IS NOT NULL AND (start_count < 1 OR start_count > 1000000) THEN
        RETURN format('account_warmups.start_count: %s is outside 1..1000000 (the daily budget of the first stage)', start_count);
    END IF;
    IF step_count IS NOT NULL AND (step_count < 0 OR step_count > 1000000) THEN
        RETURN format('account_warmups.step_count: %s is outside 0..1000000 (what each stage adds to the daily budget)', step_count);
    END IF;
    IF full_count IS NOT NULL AND (full_count < 1 OR full_count > 1000000) THEN
        RETURN format('account_warmups.full_count: %s is outside 1..1000000 (the daily budget that ends the ramp; NULL for the account''s daily limit)', full_count);
    END IF;
    IF step IS NOT NULL AND (step <= interval '0' OR step > interval '366 days') THEN
        RETURN format('account_warmups.step: %s is not a length between 0 and 366 days (how long a stage lasts, such as ''1 day'')', step);
    END IF;
    IF hold_for IS NOT NULL AND (hold_for < interval '0' OR hold_for > interval '366 days') THEN
        RETURN format('account_warmups.hold_for: %s is not a length between 0 and 366 days (how long a warning holds the ramp)', hold_for);
    END IF;
    IF stage IS NOT NULL AND stage < 0 THEN
        RETURN format('account_warmups.stage: %s is negative (0 is the first stage)', stage);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Fills what an INSERT leaves out from the provider's defaults, and
-- refuses values that cannot work, with a message naming the column
-- (SQLSTATE 23514 check_violation), as accounts_validate does.
-- +goose StatementBegin
CREATE FUNCTION account_warmups_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d provider_warmup%ROWTYPE;
    problem text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT pw.* INTO d FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = NEW.account_id;
        NEW.start_count := coalesce(NEW.start_count, d.start_count, 5);
        NEW.step_count := coalesce(NEW.step_count, d.step_count, 5);
        NEW.step := coalesce(NEW.step, d.step, interval '1 day');
        NEW.hold_for := coalesce(NEW.hold_for, d.hold_for, interval '3 days');
        problem := warmup_problem(NEW.start_count, NEW.step_count, NEW.full_count, NEW.step, NEW.hold_for, NEW.stage);
    ELSE
        problem := warmup_problem(
            CASE WHEN NEW.start_count IS DISTINCT FROM OLD.start_count THEN NEW.start_count END,
            CASE WHEN NEW.step_count IS DISTINCT FROM OLD.step_count THEN NEW.step_count END,
            CASE WHEN NEW.full_count IS DISTINCT FROM OLD.full_count THEN NEW.full_count END,
            CASE WHEN NEW.step IS DISTINCT FROM OLD.step THEN NEW.step END,
            CASE WHEN NEW.hold_for IS DISTINCT FROM OLD.hold_for THEN NEW.hold_for END,
            CASE WHEN NEW.stage IS DISTINCT FROM OLD.stage THEN NEW.stage END);
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'check_violation', TABLE = 'account_warmups';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER account_warmups_validate BEFORE INSERT OR UPDATE ON account_warmups
    FOR EACH ROW EXECUTE FUNCTION account_warmups_validate();
CREATE TRIGGER account_warmups_notify AFTER INSERT OR UPDATE OR DELETE ON account_warmups
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();

-- New accounts start on their provider's ramp when it says so. To opt
-- out, delete the ramp (in the same transaction, or any time later):
-- DELETE FROM account_warmups WHERE account_id = ...
-- +goose StatementBegin
CREATE FUNCTION accounts_start_warmup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM provider_warmup WHERE provider = NEW.provider AND new_accounts) THEN
        INSERT INTO account_warmups (account_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER accounts_start_warmup AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_start_warmup();

-- The limits before any ramp: 00004's account_limits_effective.
CREATE VIEW account_limits_base AS
SELECT l.account_id, l.action, l.max_count, l.per, 'custom'::text AS source
FROM account_limits l
UNION ALL
SELECT a.id, d.action, d.max_count, d.per, 'default'::text
FROM accounts a JOIN provider_limits d ON d.provider = a.provider
WHERE a.pacing = 'default'
  AND NOT EXISTS (SELECT 1 FROM account_limits l WHERE l.account_id = a.id AND l.action = d.action);

-- account_warmup_state: each ramp as of now.
--   stage        stages completed (0 on the first day), held stages included
--   day          stage + 1: "day 4 of ramp"
--   today        today's daily invitation budget
--   full_count   the daily budget that ends the ramp
--   done         today has reached full_count: the ramp no longer limits
--   held_until   set while a provider's warning holds the ramp
CREATE VIEW account_warmup_state AS
SELECT w.account_id, s.stage::integer AS stage, (s.stage + 1)::integer AS day,
    least(w.start_count + w.step_count * s.stage, f.full)::integer AS today,
    f.full::integer AS full_count,
    w.start_count + w.step_count * s.stage >= f.full AS done,
    CASE WHEN w.stage_since > now() THEN w.stage_since END AS held_until,
    w.start_count, w.step_count, w.step, w.hold_for, w.last_warning, w.last_warning_at
FROM account_warmups w
CROSS JOIN LATERAL (SELECT least(w.stage::bigint + greatest(0, floor(extract(epoch from now() - w.stage_since)
    / extract(epoch from w.step)))::bigint, 10000000) AS stage) s
CROSS JOIN LATERAL (SELECT coalesce(w.full_count,
    (SELECT min(b.max_count) FROM account_limits_base b
     WHERE b.account_id = w.account_id AND b.action = 'invite' AND b.per = interval '1 day'),
    (SELECT pw.full_count FROM provider_warmup pw JOIN accounts a ON a.provider = pw.provider WHERE a.id = w.account_id),
    80)::bigint AS full OFFSET 0) f; -- OFFSET 0: computed once per ramp, not once per use

-- warmup_max_count is an invitation window's count max_count under the
-- account's ramp: today / full_count of it, rounded up, at least 1; as is
-- when the account has no ramp or its ramp is done. (A function rather
-- than a join in the view below: the view is read in every reservation,
-- and stays as cheap to plan as before for accounts without a ramp.)
-- +goose StatementBegin
CREATE FUNCTION warmup_max_count(p_account bigint, max_count integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT s.today, s.full_count, s.done INTO r FROM account_warmup_state s WHERE s.account_id = p_account;
    IF NOT FOUND OR r.done THEN
        RETURN max_count;
    END IF;
    RETURN least(max_count, greatest(1, ceil(max_count::numeric * r.today / r.full_count)))::integer;
END
$$;
-- +goose StatementEnd

-- The limits that apply, with the ramp: each invitation window of an
-- account on a ramp that is not done holds today / full_count of its
-- count. With a daily limit of 80 on day 4 of a 5 + 5 a day ramp: 20 a
-- day, and a weekly 200 becomes 50.
CREATE OR REPLACE VIEW account_limits_effective AS
SELECT b.account_id, b.action,
    CASE WHEN b.action = 'invite' AND EXISTS (SELECT 1 FROM account_warmups w WHERE w.account_id = b.account_id)
        THEN warmup_max_count(b.account_id, b.max_count)
        ELSE b.max_count END AS max_count,
    b.per, b.source
FROM account_limits_base b;

-- One owner per person across the organisation (docs/owners.md).
--
-- campaigns.owner_days: NULL (the default) keeps the rule off for the
-- campaign; N makes its targets skip a person whom another account of the
-- organisation invited within N days.
ALTER TABLE campaigns ADD COLUMN owner_days integer
    CONSTRAINT campaigns_owner_days_range CHECK (owner_days BETWEEN 1 AND 3650);

-- person_owners: one row per person (provider, provider_id): the account
-- that owns them and since when.
--   invited    claimed by an invitation's reservation (campaigns with
--              owner_days), in the same transaction as its ledger row; a
--              second account's reservation of the same person meets the
--              primary key (INSERT ... ON CONFLICT waits for the first
--              transaction, then sees its row) and takes the row over only
--              when the claim is older than its campaign's owner_days, or
--              its target ended without sending (skipped, failed)
--   connected  a lookup by the account showed a relationship (FIRST_DEGREE
--              or is_relationship); later, an accepted invitation
--   pending    a lookup by the account showed a pending invitation
-- Connected and pending rows of another account skip a target whatever
-- its campaign's rule: the person is already the organisation's.
CREATE TABLE person_owners (
    provider    text NOT NULL,
    provider_id text NOT NULL,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_id   bigint REFERENCES targets (id) ON DELETE SET NULL,
    kind        text NOT NULL CHECK (kind IN ('invited', 'connected', 'pending')),
    since       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_id)
);
CREATE INDEX person_owners_account ON person_owners (account_id);

-- The invitations sent before this migration: the latest per person.
INSERT INTO person_owners (provider, provider_id, account_id, target_id, kind, since)
SELECT DISTINCT ON (a.provider, t.provider_id) a.provider, t.provider_id, t.account_id, t.id, 'invited', coalesce(t.finished_at, t.updated_at)
FROM targets t JOIN accounts a ON a.id = t.account_id
WHERE t.status = 'sent' AND t.provider_id IS NOT NULL
ORDER BY a.provider, t.provider_id, coalesce(t.finished_at, t.updated_at) DESC;

-- outreach_note_relation records what a lookup (or acceptance tracking:
-- call it with 'connected' when targets.accepted_at is set) says of the
-- person as seen from account: kind 'connected' or 'pending', or NULL for
-- neither (which drops that account's connected or pending row). A
-- connection is kept over another account's claim; an invitation claim of
-- the same account becomes a connection.
-- +goose StatementBegin
CREATE FUNCTION outreach_note_relation(p_provider text, p_provider_id text, p_account bigint, p_kind text, p_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_provider_id IS NULL OR p_provider_id = '' THEN
        RETURN;
    END IF;
    IF p_kind IS NULL THEN
        DELETE FROM person_owners WHERE provider = p_provider AND provider_id = p_provider_id
            AND account_id = p_account AND kind IN ('connected', 'pending');
        RETURN;
    END IF;
    INSERT INTO person_owners AS o (provider, provider_id, account_id, kind, since)
    VALUES (p_provider, p_provider_id, p_account, p_kind, p_at)
    ON CONFLICT (provider, provider_id) DO UPDATE SET account_id = EXCLUDED.account_id, kind = EXCLUDED.kind,
        since = CASE WHEN o.account_id = EXCLUDED.account_id AND o.kind = EXCLUDED.kind THEN o.since ELSE EXCLUDED.since END,
        target_id = CASE WHEN o.account_id = EXCLUDED.account_id THEN o.target_id END
    WHERE o.account_id = EXCLUDED.account_id OR o.kind <> 'connected' AND EXCLUDED.kind = 'connected'
        OR o.kind = 'pending' AND EXCLUDED.kind = 'pending';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION outreach_note_relation(text, text, bigint, text, timestamptz);
DROP TABLE person_owners;
ALTER TABLE campaigns DROP COLUMN owner_days;
CREATE OR REPLACE VIEW account_limits_effective AS
SELECT l.account_id, l.action, l.max_count, l.per, 'custom'::text AS source
FROM account_limits l
UNION ALL
SELECT a.id, d.action, d.max_count, d.per, 'default'::text
FROM accounts a JOIN provider_limits d ON d.provider = a.provider
WHERE a.pacing = 'default'
  AND NOT EXISTS (SELECT 1 FROM account_limits l WHERE l.account_id = a.id AND l.action = d.action);
DROP FUNCTION warmup_max_count(bigint, integer);
DROP VIEW account_warmup_state;
DROP VIEW account_limits_base;
DROP TRIGGER accounts_start_warmup ON accounts;
DROP FUNCTION accounts_start_warmup();
DROP TABLE account_warmups;
DROP FUNCTION account_warmups_validate();
DROP FUNCTION warmup_problem(integer, integer, integer, interval, interval, integer);
DROP TABLE provider_warmup;
