-- +goose Up
-- The event stream: every change a user's other systems care about (a
-- target sent, failed or skipped; an account paused, disabled or resumed;
-- a campaign done) is a row of events, written by triggers in the same
-- transaction as the change, whoever makes it (outreach or a user's own
-- SQL), with a notification on channel outreach_events. docs/events.md
-- explains how to read it without missing a row.
--
-- Order. Ids come from a sequence, and sequence values are not handed out
-- in commit order: a reader of "id > cursor" could pass over a row whose
-- transaction took its id earlier but committed later. So each row also
-- carries its transaction's id (xid8), and the stream's order is (xid, id).
-- A reader only reads rows whose transaction is older than every
-- transaction of this database still running (outreach_events_horizon):
-- those transactions are over, so no row can appear later before a
-- position already read. outreach_events_after does this.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction: the first key of the stream's order.
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at          timestamptz NOT NULL DEFAULT now(),
    -- target.sent, target.failed, target.skipped, account.paused,
    -- account.disabled, account.resumed, campaign.done (and what later
    -- features add, such as target.accepted, target.withdrawn).
    kind        text NOT NULL CHECK (kind ~ '^[a-z_]+\.[a-z_]+$'),
    -- What the event is about. No foreign keys: events outlive the rows.
    account_id  bigint,
    campaign_id bigint,
    target_id   bigint,
    data        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object')
);

CREATE INDEX events_stream ON events (xid, id);
CREATE INDEX events_target ON events (target_id) WHERE target_id IS NOT NULL;

-- Records one event and notifies outreach_events (one notification per
-- transaction: identical notifications are delivered once). For triggers
-- and code paths that have no row change to hang an event on.
-- +goose StatementBegin
CREATE FUNCTION outreach_event(kind text, account_id bigint, campaign_id bigint, target_id bigint, data jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO events (kind, account_id, campaign_id, target_id, data)
    VALUES (kind, account_id, campaign_id, target_id, COALESCE(data, '{}'))
    RETURNING id INTO new_id;
    PERFORM pg_notify('outreach_events', '');
    RETURN new_id;
END
$$;
-- +goose StatementEnd

-- What a target's event says about it.
-- +goose StatementBegin
CREATE FUNCTION outreach_target_event_data(t targets) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'status', t.status,
        'identifier', t.identifier,
        'provider_id', t.provider_id,
        'invitation_id', t.invitation_id,
        'error_type', t.error_type,
        'reason', t.last_error,
        'attempts', t.attempts))
$$;
-- +goose StatementEnd

-- A row trigger that records the event TG_ARGV[0] for the target changed,
-- for columns added later, e.g.
--   CREATE TRIGGER targets_accepted_event AFTER UPDATE OF accepted_at ON targets
--       FOR EACH ROW WHEN (OLD.accepted_at IS NULL AND NEW.accepted_at IS NOT NULL)
--       EXECUTE FUNCTION outreach_target_event('target.accepted');
-- +goose StatementBegin
CREATE FUNCTION outreach_target_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outreach_event(TG_ARGV[0], NEW.account_id, NEW.campaign_id, NEW.id, outreach_target_event_data(NEW));
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Targets that reach sent, failed or skipped: one INSERT ... SELECT per
-- UPDATE statement over its transition tables, one notification. (A
-- target inserted already terminal, which imports do not do, is recorded
-- by a row trigger that costs nothing for the usual pending inserts.)
-- +goose StatementBegin
CREATE FUNCTION targets_status_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO events (kind, account_id, campaign_id, target_id, data)
    SELECT 'target.' || t.status, t.account_id, t.campaign_id, t.id, outreach_target_event_data(t::targets)
    FROM new_rows t JOIN old_rows o ON o.id = t.id
    WHERE t.status IN ('sent', 'failed', 'skipped') AND t.status IS DISTINCT FROM o.status
    ORDER BY t.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('outreach_events', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_status_events AFTER UPDATE ON targets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION targets_status_events();
-- +goose StatementBegin
CREATE FUNCTION targets_insert_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outreach_event('target.' || NEW.status, NEW.account_id, NEW.campaign_id, NEW.id, outreach_target_event_data(NEW));
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER targets_insert_event AFTER INSERT ON targets
    FOR EACH ROW WHEN (NEW.status IN ('sent', 'failed', 'skipped'))
    EXECUTE FUNCTION targets_insert_event();

-- Accounts paused, disabled, or active again.
-- +goose StatementBegin
CREATE FUNCTION accounts_status_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO events (kind, account_id, data)
    SELECT CASE a.status WHEN 'active' THEN 'account.resumed' ELSE 'account.' || a.status END,
        a.id,
        jsonb_strip_nulls(jsonb_build_object('name', a.name, 'status', a.status, 'previous_status', o.status,
            'paused_until', a.paused_until, 'reason', a.pause_reason))
    FROM new_rows a JOIN old_rows o ON o.id = a.id
    WHERE a.status IS DISTINCT FROM o.status
    ORDER BY a.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('outreach_events', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER accounts_status_events AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_status_events();

-- Campaigns closed.
-- +goose StatementBegin
CREATE FUNCTION campaigns_status_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO events (kind, account_id, campaign_id, data)
    SELECT 'campaign.' || c.status, c.account_id, c.id,
        jsonb_build_object('name', c.name, 'status', c.status, 'previous_status', o.status)
    FROM new_rows c JOIN old_rows o ON o.id = c.id
    WHERE c.status = 'done' AND o.status <> 'done'
    ORDER BY c.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('outreach_events', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER campaigns_status_events AFTER UPDATE ON campaigns
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_status_events();

-- The horizon of the stream: every event of a transaction below it is
-- committed or never will be, and every event still to come has a
-- transaction at or above it. It is pg_snapshot_xmin(pg_current_snapshot())
-- (the oldest transaction running), except that transactions running in
-- another database of the cluster are passed over: they cannot write
-- this database's events (a backend serves one database for life, so a
-- backend_xid seen in another database is a fact, however stale the view
-- of pg_stat_activity; a transaction not found there counts). The
-- caller's own transaction, if it wrote, holds it too. Read the stream
-- outside transactions that write.
-- +goose StatementBegin
CREATE FUNCTION outreach_events_horizon() RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT LEAST(COALESCE(min(x), pg_snapshot_xmax(pg_current_snapshot())), pg_current_xact_id_if_assigned())
    FROM pg_snapshot_xip(pg_current_snapshot()) x
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a
        WHERE a.backend_xid = x::xid
          AND a.datid <> (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
$$;
-- +goose StatementEnd

-- The events after the event `after` (0: from the start), in the
-- stream's order, at most max_rows of them, and only those whose
-- transaction is older than every running one: a reader that continues
-- from the last id it read never misses a row and never reads one twice.
-- +goose StatementBegin
CREATE FUNCTION outreach_events_after(after bigint DEFAULT 0, max_rows integer DEFAULT 1000)
RETURNS SETOF events LANGUAGE plpgsql STABLE AS $$
DECLARE
    after_xid xid8 := '0';
BEGIN
    IF after > 0 THEN
        SELECT e.xid INTO after_xid FROM events e WHERE e.id = after;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'event % does not exist (deleted?): continue from a later one', after
                USING ERRCODE = 'no_data_found';
        END IF;
    END IF;
    RETURN QUERY
    SELECT e.* FROM events e
    WHERE (e.xid, e.id) > (after_xid, after)
      AND e.xid < (SELECT outreach_events_horizon())
    ORDER BY e.xid, e.id
    LIMIT max_rows;
END
$$;
-- +goose StatementEnd

-- webhook_subscribers: URLs that receive the events by HTTP POST, signed
-- with secret, each with its own cursor over the stream. Insert a row to
-- subscribe; `outreach webhooks` (or the scheduler) delivers.
CREATE TABLE webhook_subscribers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^https?://[^/]'),
    -- The HMAC-SHA256 key of the signature (docs/events.md).
    secret          text NOT NULL CHECK (length(secret) >= 16),
    enabled         boolean NOT NULL DEFAULT true,
    -- Only these kinds (NULL: all).
    kinds           text[],
    -- The position of the last event delivered (or passed over): its
    -- transaction and id; (0, 0) is the start of the stream.
    cursor_xid      xid8 NOT NULL DEFAULT '0',
    cursor_id       bigint NOT NULL DEFAULT 0,
    -- Failed tries of the delivery at the cursor since the last success,
    -- and since when it fails (NULL: it does not).
    attempts        integer NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered       bigint NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    -- A deliverer's lease (a runner that died leaves it to expire).
    locked_by       text,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE webhook_subscribers;
DROP FUNCTION outreach_events_after(bigint, integer);
DROP FUNCTION outreach_events_horizon();
DROP TRIGGER campaigns_status_events ON campaigns;
DROP FUNCTION campaigns_status_events();
DROP TRIGGER accounts_status_events ON accounts;
DROP FUNCTION accounts_status_events();
DROP TRIGGER targets_insert_event ON targets;
DROP FUNCTION targets_insert_event();
DROP TRIGGER targets_status_events ON targets;
DROP FUNCTION targets_status_events();
DROP FUNCTION outreach_target_event();
DROP FUNCTION outreach_target_event_data(targets);
DROP FUNCTION outreach_event(text, bigint, bigint, bigint, jsonb);
DROP TABLE events;
