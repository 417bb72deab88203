-- +goose Up
-- Every invitation writes a ledger row (sends) and an owner row
-- (person_owners), and their four foreign keys ran a query per row each:
-- Postgres checks a key with a SELECT ... FOR KEY SHARE of the referenced
-- row for every row inserted. That was 15% of Postgres's instructions per
-- target on the batch path (BENCHMARKS.md, "sixth pass"). The checks could
-- not fail there: the writers on the invitation path (the reservation,
-- the batch, the owner claim) hold the target and the account locked in
-- the same transaction, and the other writers (a poll, a withdrawal, a read of
-- the sent list, a reservation Postgres lost) work on an account or a
-- target they have just read. No program path deletes a target or an
-- account; an operator's DELETE keeps the effects the keys had:
--   - deleting an account deletes its ledger and owner rows (the keys
--     were ON DELETE CASCADE; an account with targets still cannot be
--     deleted, targets keep their key on accounts);
--   - deleting a target (or its campaign) leaves its ledger and owner
--     rows without it, target_id NULL (the keys were ON DELETE SET NULL).
-- A row written at the same moment as such a DELETE, by a writer that did
-- not lock what it names, can keep the id of the deleted row; nothing
-- reads it differently from NULL (ids are never reused, every reader joins
-- on them).
ALTER TABLE sends DROP CONSTRAINT sends_account_id_fkey, DROP CONSTRAINT sends_target_id_fkey;
ALTER TABLE person_owners DROP CONSTRAINT person_owners_account_id_fkey, DROP CONSTRAINT person_owners_target_id_fkey;

-- The statements are dynamic (EXECUTE) so that each DELETE plans them for
-- its own number of rows: a cached plan from a one-row delete would scan
-- person_owners (which has no index on target_id) once per row of a
-- campaign's delete (see 00018).
-- +goose StatementBegin
CREATE FUNCTION accounts_delete_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'DELETE FROM sends s USING gone g WHERE s.account_id = g.id';
    EXECUTE 'DELETE FROM person_owners o USING gone g WHERE o.account_id = g.id';
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER accounts_delete_ledger AFTER DELETE ON accounts REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_delete_ledger();

-- +goose StatementBegin
CREATE FUNCTION targets_delete_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'UPDATE sends s SET target_id = NULL FROM gone g WHERE s.target_id = g.id';
    EXECUTE 'UPDATE person_owners o SET target_id = NULL FROM gone g WHERE o.target_id = g.id';
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER targets_delete_ledger AFTER DELETE ON targets REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION targets_delete_ledger();

-- The event triggers build each target event's data with this function.
-- Declared IMMUTABLE, it could not be inlined (jsonb_build_object is
-- STABLE), so Postgres ran it as a separate query for every event: 3% of
-- Postgres's instructions per target. STABLE is what it is, and lets the
-- planner put its expression into the triggers' INSERT.
ALTER FUNCTION outreach_target_event_data(targets) STABLE;

-- +goose Down
ALTER FUNCTION outreach_target_event_data(targets) IMMUTABLE;
DROP TRIGGER targets_delete_ledger ON targets;
DROP FUNCTION targets_delete_ledger();
DROP TRIGGER accounts_delete_ledger ON accounts;
DROP FUNCTION accounts_delete_ledger();
UPDATE sends SET target_id = NULL WHERE target_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = sends.target_id);
UPDATE person_owners SET target_id = NULL WHERE target_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = person_owners.target_id);
DELETE FROM sends WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = sends.account_id);
DELETE FROM person_owners WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = person_owners.account_id);
ALTER TABLE sends ADD CONSTRAINT sends_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT sends_target_id_fkey FOREIGN KEY (target_id) REFERENCES targets (id) ON DELETE SET NULL;
ALTER TABLE person_owners ADD CONSTRAINT person_owners_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT person_owners_target_id_fkey FOREIGN KEY (target_id) REFERENCES targets (id) ON DELETE SET NULL;
