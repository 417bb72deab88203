-- +goose Up
-- The outreach schema. Users feed campaigns with plain SQL against these
-- tables; the README shows how. Postgres is the truth: everything in Redis
-- can be rebuilt from here.

-- accounts: one sending identity at a provider (a LinkedIn account connected
-- to Unipile, an Altegio location, a Partoo API user).
CREATE TABLE accounts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    provider            text NOT NULL CHECK (provider IN ('unipile', 'partoo', 'altegio')),
    -- The provider's own reference: the Unipile account_id, the Altegio
    -- location_id; for Partoo any label (Partoo invites by user id alone).
    provider_account_id text NOT NULL,
    -- Which configured credentials to use: 'default' means UNIPILE_API_KEY
    -- (or PARTOO_API_KEY, ...); 'acme' means UNIPILE_API_KEY_ACME. Never the
    -- secret itself.
    credentials_ref     text NOT NULL DEFAULT 'default' CHECK (credentials_ref ~ '^[a-z0-9_]+$'),
    -- active, paused (until paused_until, then active again) or disabled
    -- (until an operator resumes it).
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'disabled')),
    paused_until        timestamptz,
    pause_reason        text,
    -- Working hours in the account's time zone: sends only between
    -- work_start and work_end on work_days (ISO: 1 = Monday ... 7 = Sunday).
    -- The default, 00:00 to 24:00 every day, means always.
    timezone            text NOT NULL DEFAULT 'UTC',
    work_start          time NOT NULL DEFAULT '00:00',
    work_end            time NOT NULL DEFAULT '24:00',
    work_days           smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}',
    -- At least min_gap plus a random share of gap_jitter between two sends.
    min_gap             interval NOT NULL DEFAULT '0' CHECK (min_gap >= interval '0'),
    gap_jitter          interval NOT NULL DEFAULT '0' CHECK (gap_jitter >= interval '0'),
    -- Maintained by the workers: the earliest time of the next invite (the
    -- gap with its jitter drawn), and until when the provider's usage
    -- warning widens the gap.
    next_send_at        timestamptz,
    slow_until          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_account_id),
    CONSTRAINT work_hours_order CHECK (work_start < work_end),
    CONSTRAINT paused_needs_paused_until CHECK (status <> 'paused' OR paused_until IS NOT NULL)
);

-- account_limits: rolling windows per account and action. '25 per 1 day'
-- is (invite, 25, '1 day'). Change them at any time; the next reservation
-- uses the new numbers.
CREATE TABLE account_limits (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    action     text NOT NULL CHECK (action IN ('invite', 'lookup')),
    max_count  integer NOT NULL CHECK (max_count > 0),
    per        interval NOT NULL CHECK (per > interval '0'),
    PRIMARY KEY (account_id, action, per)
);

-- campaigns: what to send, from which account.
CREATE TABLE campaigns (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    -- The sending account. Targets copy it when inserted, so a later design
    -- with several accounts per campaign only changes how targets get theirs.
    account_id       bigint NOT NULL REFERENCES accounts (id),
    -- A Go text/template rendered per target with .FirstName, .LastName,
    -- .Headline, .Identifier and .Vars (the target's vars).
    message_template text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'done')),
    -- Provider options, such as Altegio's {"user_role": "worker",
    -- "position": "Stylist", "user_permissions": [...], "staff_id": 12}.
    provider_options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(provider_options) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX campaigns_account_id ON campaigns (account_id);

-- targets: one person to invite in one campaign.
--   pending  waiting for its next_attempt_at (resolution, a send slot, a deferral)
--   queued   a task for it is in Redis
--   sending  a worker holds it until locked_until
--   sent, skipped, failed: terminal, with the reason in last_error
CREATE TABLE targets (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id           bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    account_id            bigint NOT NULL REFERENCES accounts (id),
    identifier            text NOT NULL CHECK (identifier <> ''),
    normalized_identifier text,
    provider_id           text,
    vars                  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(vars) = 'object'),
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'skipped', 'failed')),
    attempts              integer NOT NULL DEFAULT 0,
    -- Deferrals by kind, for backoff (cannot_resend_yet doubling, ...).
    deferrals             integer NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz NOT NULL DEFAULT now(),
    locked_until          timestamptz,
    -- The ledger row of the attempt holding the target (status sending).
    current_send_id       bigint,
    last_error            text,
    error_type            text,
    invitation_id         text,
    message               text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    queued_at             timestamptz,
    finished_at           timestamptz,
    UNIQUE (campaign_id, identifier)
);

-- Due targets of a campaign, oldest first: the scheduler's claim query. Only
-- waiting rows are in the index, so a claim reads what it returns whatever
-- the size of the table.
-- Resolved targets wait for an invite slot, unresolved ones for a lookup.
CREATE INDEX targets_due ON targets (campaign_id, (provider_id IS NULL), next_attempt_at)
    WHERE status = 'pending' AND normalized_identifier IS NOT NULL;
-- New targets whose identifier the scheduler has not normalised yet.
CREATE INDEX targets_new ON targets (id)
    WHERE status = 'pending' AND normalized_identifier IS NULL;
-- Queued and in-flight targets, for reconciliation and per-account counts.
CREATE INDEX targets_in_flight ON targets (account_id, status)
    WHERE status IN ('queued', 'sending');
CREATE INDEX targets_campaign_status ON targets (campaign_id, status);
-- A person is invited at most once per account, across campaigns.
CREATE UNIQUE INDEX targets_one_per_person ON targets (account_id, provider_id)
    WHERE provider_id IS NOT NULL AND status NOT IN ('skipped', 'failed');

-- Targets take their campaign's account unless given one.
-- +goose StatementBegin
CREATE FUNCTION targets_set_account() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER targets_set_account BEFORE INSERT ON targets
    FOR EACH ROW EXECUTE FUNCTION targets_set_account();

-- people: the resolve cache, so nobody is looked up twice. The relationship
-- fields are as seen by the account that looked the person up.
CREATE TABLE people (
    provider              text NOT NULL,
    normalized_identifier text NOT NULL,
    provider_id           text NOT NULL,
    first_name            text NOT NULL DEFAULT '',
    last_name             text NOT NULL DEFAULT '',
    headline              text NOT NULL DEFAULT '',
    looked_up_by          bigint REFERENCES accounts (id) ON DELETE SET NULL,
    network_distance      text,
    is_relationship       boolean NOT NULL DEFAULT false,
    invitation_status     text,
    fetched_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, normalized_identifier)
);

-- sends: the ledger, one row per attempt to call a provider (an invite or a
-- lookup). Limits are counted from it. A row is written before the call
-- (outcome 'in_flight', window_at infinity) and completed after it; window_at
-- is then the time the answer came, the latest moment the provider can have
-- counted the request.
CREATE TABLE sends (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    target_id     bigint REFERENCES targets (id) ON DELETE SET NULL,
    action        text NOT NULL CHECK (action IN ('invite', 'lookup')),
    reserved_at   timestamptz NOT NULL,
    window_at     timestamptz NOT NULL DEFAULT 'infinity',
    outcome       text NOT NULL DEFAULT 'in_flight',
    error_type    text,
    http_status   integer,
    invitation_id text,
    detail        text
);

-- Rolling-window counts and "the n-th latest send" are index scans on this.
CREATE INDEX sends_window ON sends (account_id, action, window_at);
CREATE INDEX sends_target ON sends (target_id);
CREATE INDEX sends_in_flight ON sends (account_id, action) WHERE outcome = 'in_flight';

-- Wake the scheduler at once when work arrives or controls change. Row
-- triggers on the controls fire only for rows that changed (a statement
-- trigger would fire on every UPDATE, even of no row, and the scheduler's
-- own housekeeping would wake it in a loop); notifications with the same
-- payload in one transaction are delivered once.
-- +goose StatementBegin
CREATE FUNCTION outreach_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outreach_wake', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_notify AFTER INSERT ON targets
    FOR EACH STATEMENT EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER accounts_notify_insert AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER accounts_notify_update
    AFTER UPDATE OF status, paused_until, timezone, work_start, work_end, work_days, min_gap, gap_jitter ON accounts
    FOR EACH ROW WHEN ((OLD.status, OLD.paused_until, OLD.timezone, OLD.work_start, OLD.work_end, OLD.work_days, OLD.min_gap, OLD.gap_jitter)
        IS DISTINCT FROM (NEW.status, NEW.paused_until, NEW.timezone, NEW.work_start, NEW.work_end, NEW.work_days, NEW.min_gap, NEW.gap_jitter))
    EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER account_limits_notify AFTER INSERT OR UPDATE OR DELETE ON account_limits
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER campaigns_notify_insert AFTER INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION outreach_notify();
CREATE TRIGGER campaigns_notify_update AFTER UPDATE OF status ON campaigns
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION outreach_notify();

-- +goose Down
DROP TABLE sends;
DROP TABLE people;
DROP TABLE targets;
DROP FUNCTION targets_set_account();
DROP TABLE campaigns;
DROP TABLE account_limits;
DROP TABLE accounts;
DROP FUNCTION outreach_notify();
