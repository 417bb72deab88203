-- +goose Up
-- Throughput (issue 15): the counts of targets that end are written once
-- per UPDATE statement instead of once per target. 00014's row trigger
-- ran a PL/pgSQL function and inserted one campaign_counts row for every
-- target that ended; a batch recording 100 answers wrote 100 rows. This
-- statement trigger reads the statement's transition tables (which the
-- events trigger of 00010 has the statement capture anyway) and inserts
-- one row per (campaign, status, reason) that changed, with the sum.
--
-- It also moves a target's 'total' between campaigns whenever its
-- campaign changes (00014 moved it only when the target had ended).

-- +goose StatementBegin
CREATE FUNCTION targets_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every count is a sum over rows, so the change is the rows after
    -- minus the rows before, grouped: a target whose status, reason and
    -- campaign stayed the same cancels out. No join of the two tables
    -- (a claim updates thousands of rows).
    INSERT INTO campaign_counts (campaign_id, status, reason, n)
    SELECT campaign_id, status, reason, sum(n) FROM (
        SELECT campaign_id, status, outreach_count_reason(status, error_type) AS reason, 1 AS n
        FROM new_rows WHERE status IN ('sent', 'skipped', 'failed')
        UNION ALL
        SELECT campaign_id, status, outreach_count_reason(status, error_type), -1
        FROM old_rows WHERE status IN ('sent', 'skipped', 'failed')
        UNION ALL
        SELECT campaign_id, 'total', '', 1 FROM new_rows
        UNION ALL
        SELECT campaign_id, 'total', '', -1 FROM old_rows
    ) d
    GROUP BY campaign_id, status, reason
    HAVING sum(n) <> 0;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

DROP TRIGGER targets_count_update ON targets;
CREATE TRIGGER targets_count_update AFTER UPDATE ON targets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION targets_count_changes();

-- +goose Down
DROP TRIGGER targets_count_update ON targets;
CREATE TRIGGER targets_count_update AFTER UPDATE ON targets
    FOR EACH ROW
    WHEN ((OLD.status IN ('sent', 'skipped', 'failed') OR NEW.status IN ('sent', 'skipped', 'failed'))
        AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.error_type IS DISTINCT FROM NEW.error_type
            OR OLD.campaign_id <> NEW.campaign_id))
    EXECUTE FUNCTION targets_count_update();
DROP FUNCTION targets_count_changes();
