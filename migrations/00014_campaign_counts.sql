-- +goose Up
-- Campaign progress without counting the campaign: the console and
-- `outreach status` read how many targets each campaign has and how many
-- ended (sent, skipped, failed, with the reason of each skip and failure)
-- from campaign_counts, whose size is the number of campaigns and reasons,
-- not of targets.
--
-- campaign_counts is append-only between folds: triggers on targets add a
-- row of +n or -n for each change of a count (one row per statement for
-- inserts and deletes, one per target that ends or stops being ended), so
-- concurrent writers never wait on a shared counter row. The scheduler
-- calls outreach_fold_campaign_counts() now and then, which replaces the
-- rows of each (campaign, status, reason) by their sum. A reader sums the
-- rows, folded or not. Targets still pending, queued or being sent are
-- total minus ended: queued and sending ones are few (the near-term
-- horizon) and counted from the targets themselves.
--
-- Writers that bypass triggers (ALTER TABLE targets DISABLE TRIGGER USER,
-- TRUNCATE) leave the counts wrong: outreach_recount_campaigns() rebuilds
-- them from targets.
CREATE TABLE campaign_counts (
    campaign_id bigint NOT NULL,
    -- 'total' (every target), an ended status (sent, skipped, failed),
    -- or 'accepted' (targets whose invitation was accepted: accepted_at).
    status      text NOT NULL,
    -- For skipped and failed: the error type, else 'unknown' (the last
    -- error's text is often unique to its target, and would make a row per
    -- target). Empty for total and sent.
    reason      text NOT NULL DEFAULT '',
    n           bigint NOT NULL
);

CREATE INDEX campaign_counts_campaign ON campaign_counts (campaign_id);

-- +goose StatementBegin
CREATE FUNCTION outreach_count_reason(status text, error_type text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN status IN ('skipped', 'failed')
        THEN coalesce(nullif(error_type, ''), 'unknown') ELSE '' END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION targets_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO campaign_counts (campaign_id, status, reason, n)
        SELECT campaign_id, 'total', '', count(*) FROM counted_rows GROUP BY campaign_id
        UNION ALL
        SELECT campaign_id, status, outreach_count_reason(status, error_type), count(*)
        FROM counted_rows WHERE status IN ('sent', 'skipped', 'failed') GROUP BY 1, 2, 3
        UNION ALL
        SELECT campaign_id, 'accepted', '', count(*) FROM counted_rows WHERE accepted_at IS NOT NULL GROUP BY campaign_id;
    ELSE
        INSERT INTO campaign_counts (campaign_id, status, reason, n)
        SELECT campaign_id, 'total', '', -count(*) FROM counted_rows GROUP BY campaign_id
        UNION ALL
        SELECT campaign_id, status, outreach_count_reason(status, error_type), -count(*)
        FROM counted_rows WHERE status IN ('sent', 'skipped', 'failed') GROUP BY 1, 2, 3
        UNION ALL
        SELECT campaign_id, 'accepted', '', -count(*) FROM counted_rows WHERE accepted_at IS NOT NULL GROUP BY campaign_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_count_insert AFTER INSERT ON targets
    REFERENCING NEW TABLE AS counted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION targets_count_rows();
CREATE TRIGGER targets_count_delete AFTER DELETE ON targets
    REFERENCING OLD TABLE AS counted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION targets_count_rows();

-- A target that ends, stops being ended (an operator retries it), or
-- changes its reason or campaign while ended: one row per count changed.
-- The WHEN clause keeps every other update of a target (queued, sending,
-- deferred) free of it.
-- +goose StatementBegin
CREATE FUNCTION targets_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_reason text := outreach_count_reason(OLD.status, OLD.error_type);
    new_reason text := outreach_count_reason(NEW.status, NEW.error_type);
BEGIN
    IF OLD.status = NEW.status AND old_reason = new_reason AND OLD.campaign_id = NEW.campaign_id THEN
        RETURN NULL;
    END IF;
    IF OLD.status IN ('sent', 'skipped', 'failed') THEN
        INSERT INTO campaign_counts (campaign_id, status, reason, n) VALUES (OLD.campaign_id, OLD.status, old_reason, -1);
    END IF;
    IF NEW.status IN ('sent', 'skipped', 'failed') THEN
        INSERT INTO campaign_counts (campaign_id, status, reason, n) VALUES (NEW.campaign_id, NEW.status, new_reason, 1);
    END IF;
    IF OLD.campaign_id <> NEW.campaign_id THEN
        INSERT INTO campaign_counts (campaign_id, status, reason, n)
        VALUES (OLD.campaign_id, 'total', '', -1), (NEW.campaign_id, 'total', '', 1);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_count_update AFTER UPDATE ON targets
    FOR EACH ROW
    WHEN ((OLD.status IN ('sent', 'skipped', 'failed') OR NEW.status IN ('sent', 'skipped', 'failed'))
        AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.error_type IS DISTINCT FROM NEW.error_type
            OR OLD.campaign_id <> NEW.campaign_id))
    EXECUTE FUNCTION targets_count_update();

-- An invitation accepted (or, by an operator's hand, no longer): one row.
-- +goose StatementBegin
CREATE FUNCTION targets_count_acceptance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign_id, status, reason, n)
    VALUES (NEW.campaign_id, 'accepted', '', CASE WHEN NEW.accepted_at IS NULL THEN -1 ELSE 1 END);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_count_acceptance AFTER UPDATE OF accepted_at ON targets
    FOR EACH ROW WHEN ((OLD.accepted_at IS NULL) <> (NEW.accepted_at IS NULL))
    EXECUTE FUNCTION targets_count_acceptance();

-- Folds the rows of each (campaign, status, reason) into one, drops zeros
-- and the counts of deleted campaigns; returns how many rows it removed.
-- Safe to run concurrently with writers and with itself: it sums only the
-- rows it deleted.
-- +goose StatementBegin
CREATE FUNCTION outreach_fold_campaign_counts() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    removed bigint;
    added bigint;
BEGIN
    WITH gone AS (DELETE FROM campaign_counts RETURNING campaign_id, status, reason, n),
    folded AS (
        INSERT INTO campaign_counts (campaign_id, status, reason, n)
        SELECT g.campaign_id, g.status, g.reason, sum(g.n) FROM gone g
        WHERE EXISTS (SELECT 1 FROM campaigns c WHERE c.id = g.campaign_id)
        GROUP BY 1, 2, 3 HAVING sum(g.n) <> 0
        RETURNING 1)
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM folded) INTO removed, added;
    RETURN removed - added;
END
$$;
-- +goose StatementEnd

-- Rebuilds every count from targets (after a load with triggers disabled,
-- or a TRUNCATE). Takes a share lock on targets while it counts.
-- +goose StatementBegin
CREATE FUNCTION outreach_recount_campaigns() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE targets IN SHARE MODE;
    DELETE FROM campaign_counts;
    INSERT INTO campaign_counts (campaign_id, status, reason, n)
    SELECT campaign_id, 'total', '', count(*) FROM targets GROUP BY campaign_id
    UNION ALL
    SELECT campaign_id, status, outreach_count_reason(status, error_type), count(*)
    FROM targets WHERE status IN ('sent', 'skipped', 'failed') GROUP BY 1, 2, 3
    UNION ALL
    SELECT campaign_id, 'accepted', '', count(*) FROM targets WHERE accepted_at IS NOT NULL GROUP BY campaign_id;
END
$$;
-- +goose StatementEnd

SELECT outreach_recount_campaigns();

-- The ledger's rolling-window counts (the console's budget bars and
-- activity, a campaign's sends of the day) read outcome and target from
-- the index, without visiting the heap: a week of an account's ledger is
-- scattered over as many pages as it has rows.
CREATE INDEX sends_window_outcome ON sends (account_id, action, window_at) INCLUDE (outcome, target_id);
DROP INDEX sends_window;
ALTER INDEX sends_window_outcome RENAME TO sends_window;

-- An account's acceptances of the last day and week, for the console.
CREATE INDEX targets_accepted ON targets (account_id, accepted_at) WHERE accepted_at IS NOT NULL;

-- +goose Down
DROP INDEX targets_accepted;
DROP INDEX sends_window;
CREATE INDEX sends_window ON sends (account_id, action, window_at);
DROP TRIGGER targets_count_acceptance ON targets;
DROP FUNCTION targets_count_acceptance();
DROP TRIGGER targets_count_update ON targets;
DROP TRIGGER targets_count_delete ON targets;
DROP TRIGGER targets_count_insert ON targets;
DROP FUNCTION outreach_recount_campaigns();
DROP FUNCTION outreach_fold_campaign_counts();
DROP FUNCTION targets_count_update();
DROP FUNCTION targets_count_rows();
DROP FUNCTION outreach_count_reason(text, text);
DROP TABLE campaign_counts;
