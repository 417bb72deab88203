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
    INSERT INTO campaign_counts (campaign_id, status, reason, n)
    SELECT campaign_id, status, reason, sum(n) FROM (
        SELECT o.campaign_id, o.status, outreach_count_reason(o.status, o.error_type) AS reason, -1 AS n
        FROM old_rows o JOIN new_rows t ON t.id = o.id
        WHERE o.status IN ('sent', 'skipped', 'failed')
            AND (o.status, outreach_count_reason(o.status, o.error_type), o.campaign_id)
                IS DISTINCT FROM (t.status, outreach_count_reason(t.status, t.error_type), t.campaign_id)
        UNION ALL
        SELECT t.campaign_id, t.status, outreach_count_reason(t.status, t.error_type), 1
        FROM old_rows o JOIN new_rows t ON t.id = o.id
        WHERE t.status IN ('sent', 'skipped', 'failed')
            AND (o.status, outreach_count_reason(o.status, o.error_type), o.campaign_id)
                IS DISTINCT FROM (t.status, outreach_count_reason(t.status, t.error_type), t.campaign_id)
        UNION ALL
        SELECT x.campaign_id, 'total', '', x.n
        FROM old_rows o JOIN new_rows t ON t.id = o.id
        CROSS JOIN LATERAL (VALUES (o.campaign_id, -1), (t.campaign_id, 1)) AS x(campaign_id, n)
        WHERE o.campaign_id <> t.campaign_id
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
