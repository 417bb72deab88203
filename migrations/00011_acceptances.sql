-- +goose Up
-- Acceptances and account health (docs/acceptances.md).
--
-- A sent invitation is accepted when the person becomes a relation of the
-- account: read from Unipile's relations list (polled, paced as the
-- 'poll' action) or from its new_relation webhook. Either way the target
-- records it once: accepted_at is set only while it is NULL.

ALTER TABLE targets ADD COLUMN accepted_at timestamptz;
-- How the acceptance was first seen: 'poll' or 'webhook'.
ALTER TABLE targets ADD COLUMN accepted_via text
    CONSTRAINT targets_accepted_via_check CHECK (accepted_via IN ('poll', 'webhook'));
ALTER TABLE targets ADD CONSTRAINT targets_accepted_when_sent
    CHECK (accepted_at IS NULL OR status = 'sent') NOT VALID;
-- Sent invitations still waiting for an answer, per account: what an
-- acceptance is matched against, and what makes polling frequent.
CREATE INDEX targets_awaiting_acceptance ON targets (account_id, provider_id)
    WHERE status = 'sent' AND accepted_at IS NULL;

-- account_polls: per Unipile account, when its relations are read next,
-- how far they were read (the newest relation seen: the next poll stops
-- there), and the connection status the provider last reported.
CREATE TABLE account_polls (
    account_id         bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- When the next poll is due. The scheduler moves it ahead by a lease
    -- when it enqueues the poll; the worker sets it when the poll is done.
    next_poll_at       timestamptz NOT NULL DEFAULT now(),
    last_polled_at     timestamptz,
    -- The newest relation seen: its creation time and member id.
    relation_at        timestamptz,
    relation_member    text,
    -- Unipile's status of the account (OK, CREDENTIALS, ERROR, STOPPED,
    -- PERMISSIONS, CONNECTING, or a webhook's RECONNECTED ...), and when
    -- it was reported, by the account endpoint or a webhook.
    provider_status    text,
    provider_status_at timestamptz,
    last_error         text
);
CREATE INDEX account_polls_due ON account_polls (next_poll_at);

INSERT INTO account_polls (account_id) SELECT id FROM accounts WHERE provider = 'unipile';

-- +goose StatementBegin
CREATE FUNCTION outreach_account_polls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.provider = 'unipile' THEN
        INSERT INTO account_polls (account_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER accounts_polls AFTER INSERT OR UPDATE OF provider ON accounts
    FOR EACH ROW EXECUTE FUNCTION outreach_account_polls();

-- Unipile's default pacing of relation polls: at most 48 a day (one every
-- half hour), at least 10 minutes apart plus up to 10 more at random.
-- Change them with SQL like any default (docs/pacing.md).
INSERT INTO provider_limits (provider, action, max_count, per) VALUES
    ('unipile', 'poll', 48, '1 day');
INSERT INTO provider_pacing (provider, action, min_gap, gap_jitter) VALUES
    ('unipile', 'poll', '10 minutes', '10 minutes');

-- +goose Down
DELETE FROM provider_pacing WHERE provider = 'unipile' AND action = 'poll';
DELETE FROM provider_limits WHERE provider = 'unipile' AND action = 'poll';
DROP TRIGGER accounts_polls ON accounts;
DROP FUNCTION outreach_account_polls();
DROP TABLE account_polls;
DROP INDEX targets_awaiting_acceptance;
ALTER TABLE targets DROP CONSTRAINT targets_accepted_when_sent;
ALTER TABLE targets DROP COLUMN accepted_via;
ALTER TABLE targets DROP COLUMN accepted_at;
