-- +goose Up
-- Accounts that cannot work are refused at the door (docs/accounts.md):
--   accounts.provider_account_id  not empty or blank
--   accounts.timezone             a time zone name Postgres and Go both know
--                                 (the tz database's spelling, case included)
--   accounts.work_days            at least one day, each 1 (Monday) .. 7 (Sunday)
--   accounts.min_gap, gap_jitter  at most 1 day each
--   account_limits.per            at most 366 days
--   account_limits.max_count      1 .. 1,000,000
--   targets.identifier            at most 2,048 bytes (a btree index holds
--                                 about 2.7 KB, and no real identifier is
--                                 that long)
-- Validating triggers rather than CHECK constraints: their messages name the
-- column and the value (SQLSTATE 23514 check_violation), and they look only
-- at the columns an UPDATE changes, so rows written before this migration
-- never make the workers' and scheduler's own updates fail.
--
-- Rows already in the database are kept as they are (nothing is deleted or
-- rewritten): an account that breaks a rule, or whose limits do, is
-- disabled with pause_reason 'invalid configuration: <the rule>', so it
-- sends nothing until an operator fixes the value and resumes it (resuming
-- a disabled account checks all its values again). Existing targets with
-- longer identifiers stay; new ones are refused.

-- +goose StatementBegin
-- outreach_timezone_known reports whether tz is a time zone name as the
-- tz database spells it. Setting the time zone (undone when the function
-- returns, by its SET clause) checks it is known and yields the canonical
-- spelling, so 'europe/paris' is refused, as Go's time.LoadLocation would.
-- Postgres also takes POSIX rules ('UTC+3'), which Go does not: a name
-- with a digit must be in pg_timezone_names (slow, but rare: Etc/GMT+3).
CREATE FUNCTION outreach_timezone_known(tz text) RETURNS boolean LANGUAGE plpgsql VOLATILE
SET timezone TO 'UTC' AS $$
DECLARE
    canonical text;
BEGIN
    IF tz IN ('UTC', 'Etc/UTC') THEN
        RETURN true;
    END IF;
    BEGIN
        PERFORM set_config('timezone', tz, true);
        canonical := current_setting('timezone');
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN false;
    END;
    IF canonical IS DISTINCT FROM tz THEN
        RETURN false;
    END IF;
    IF tz ~ '[0-9]' THEN
        RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz);
    END IF;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- account_problem returns the first rule the values break, as a message
-- naming the column, or NULL. A NULL argument is not checked.
-- +goose StatementBegin
CREATE FUNCTION account_problem(provider_account_id text, timezone text, work_days smallint[],
                                min_gap interval, gap_jitter interval) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF provider_account_id IS NOT NULL AND btrim(provider_account_id) = '' THEN
        RETURN 'accounts.provider_account_id: must not be empty (the Unipile account_id, the Altegio location_id, a label for Partoo)';
    END IF;
    IF timezone IS NOT NULL AND NOT outreach_timezone_known(timezone) THEN
        RETURN format('accounts.timezone: unknown time zone %s (want an IANA name such as Europe/Paris or UTC)', to_json(timezone));
    END IF;
    IF work_days IS NOT NULL THEN
        IF cardinality(work_days) = 0 THEN
            RETURN 'accounts.work_days: empty (want ISO weekdays, 1 = Monday ... 7 = Sunday, such as {1,2,3,4,5})';
        END IF;
        IF array_ndims(work_days) <> 1 OR array_position(work_days, NULL) IS NOT NULL
           OR NOT work_days <@ '{1,2,3,4,5,6,7}'::smallint[] THEN
            RETURN format('accounts.work_days: %s holds values outside 1..7 (1 = Monday ... 7 = Sunday)', work_days);
        END IF;
    END IF;
    IF min_gap IS NOT NULL AND min_gap > interval '1 day' THEN
        RETURN format('accounts.min_gap: %s is longer than the maximum, 1 day (use account_limits for longer spacing)', justify_hours(min_gap));
    END IF;
    IF gap_jitter IS NOT NULL AND gap_jitter > interval '1 day' THEN
        RETURN format('accounts.gap_jitter: %s is longer than the maximum, 1 day', justify_hours(gap_jitter));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION account_limit_problem(max_count integer, per interval) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF max_count IS NOT NULL AND (max_count < 1 OR max_count > 1000000) THEN
        RETURN format('account_limits.max_count: %s is outside 1..1000000', max_count);
    END IF;
    IF per IS NOT NULL AND per > interval '366 days' THEN
        RETURN format('account_limits.per: %s is longer than the maximum, 366 days', justify_hours(per));
    END IF;
    IF per IS NOT NULL AND per <= interval '0' THEN
        RETURN format('account_limits.per: %s is not a positive length', per);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Rows from before: disable what cannot work, keep the values.
UPDATE accounts a SET status = 'disabled', paused_until = NULL, updated_at = now(),
    pause_reason = 'invalid configuration: ' || p.problem
FROM (
    SELECT a2.id, coalesce(
        account_problem(a2.provider_account_id, a2.timezone, a2.work_days, a2.min_gap, a2.gap_jitter),
        (SELECT account_limit_problem(l.max_count, l.per) FROM account_limits l
         WHERE l.account_id = a2.id AND account_limit_problem(l.max_count, l.per) IS NOT NULL
         ORDER BY l.action, l.per LIMIT 1)) AS problem
    FROM accounts a2
) p
WHERE p.id = a.id AND p.problem IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION accounts_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'INSERT' OR (NEW.status = 'active' AND OLD.status = 'disabled') THEN
        -- A new account, or one an operator resumes: check everything.
        problem := account_problem(NEW.provider_account_id, NEW.timezone, NEW.work_days, NEW.min_gap, NEW.gap_jitter);
    ELSE
        -- Only what changed, so an old row never blocks unrelated updates.
        problem := account_problem(
            CASE WHEN NEW.provider_account_id IS DISTINCT FROM OLD.provider_account_id THEN NEW.provider_account_id END,
            CASE WHEN NEW.timezone IS DISTINCT FROM OLD.timezone THEN NEW.timezone END,
            CASE WHEN NEW.work_days IS DISTINCT FROM OLD.work_days THEN NEW.work_days END,
            CASE WHEN NEW.min_gap IS DISTINCT FROM OLD.min_gap THEN NEW.min_gap END,
            CASE WHEN NEW.gap_jitter IS DISTINCT FROM OLD.gap_jitter THEN NEW.gap_jitter END);
    END IF;
    IF problem IS NULL AND TG_OP = 'UPDATE' AND NEW.status = 'active' AND OLD.status = 'disabled' THEN
        SELECT account_limit_problem(l.max_count, l.per) INTO problem FROM account_limits l
        WHERE l.account_id = NEW.id AND account_limit_problem(l.max_count, l.per) IS NOT NULL
        ORDER BY l.action, l.per LIMIT 1;
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'check_violation', TABLE = 'accounts';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Only statements that set one of these columns run the check: the
-- workers' frequent updates of next_send_at and slow_until do not.
CREATE TRIGGER accounts_validate
    BEFORE INSERT OR UPDATE OF provider_account_id, timezone, work_days, min_gap, gap_jitter, status ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_validate();

-- +goose StatementBegin
CREATE FUNCTION account_limits_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        problem := account_limit_problem(NEW.max_count, NEW.per);
    ELSE
        problem := account_limit_problem(
            CASE WHEN NEW.max_count IS DISTINCT FROM OLD.max_count THEN NEW.max_count END,
            CASE WHEN NEW.per IS DISTINCT FROM OLD.per THEN NEW.per END);
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'check_violation', TABLE = 'account_limits';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER account_limits_validate BEFORE INSERT OR UPDATE OF max_count, per ON account_limits
    FOR EACH ROW EXECUTE FUNCTION account_limits_validate();

-- +goose StatementBegin
CREATE FUNCTION targets_identifier_too_long() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'targets.identifier: % bytes, longer than the maximum of 2048', octet_length(NEW.identifier)
        USING ERRCODE = 'check_violation', TABLE = 'targets', COLUMN = 'identifier';
END
$$;
-- +goose StatementEnd

-- The WHEN clause is evaluated without calling the function, so imports of
-- millions of rows pay almost nothing for it.
CREATE TRIGGER targets_identifier_length BEFORE INSERT OR UPDATE OF identifier ON targets
    FOR EACH ROW WHEN (octet_length(NEW.identifier) > 2048)
    EXECUTE FUNCTION targets_identifier_too_long();

-- +goose Down
DROP TRIGGER targets_identifier_length ON targets;
DROP FUNCTION targets_identifier_too_long();
DROP TRIGGER account_limits_validate ON account_limits;
DROP FUNCTION account_limits_validate();
DROP TRIGGER accounts_validate ON accounts;
DROP FUNCTION accounts_validate();
DROP FUNCTION account_limit_problem(integer, interval);
DROP FUNCTION account_problem(text, text, smallint[], interval, interval);
DROP FUNCTION outreach_timezone_known(text);
