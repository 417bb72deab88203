-- +goose Up
-- The event triggers of 00010 join a statement's old and new rows
-- (transition tables) on id. PL/pgSQL plans such a statement once per
-- session, at its first run, sized by that run's rows: a session whose
-- first status change was one row kept a nested loop, and a later UPDATE
-- of n rows compared n × n pairs. 20,000 targets skipped in one statement
-- took 25 s instead of half a second, holding their locks meanwhile (an
-- operator's bulk UPDATE, a do-not-contact entry that skips many targets,
-- after any single answer recorded on the same connection). Without
-- nested loops the join is a hash or merge join, whatever the first run.
ALTER FUNCTION targets_status_events() SET enable_nestloop = off;
ALTER FUNCTION accounts_status_events() SET enable_nestloop = off;
ALTER FUNCTION campaigns_status_events() SET enable_nestloop = off;

-- +goose Down
ALTER FUNCTION targets_status_events() RESET enable_nestloop;
ALTER FUNCTION accounts_status_events() RESET enable_nestloop;
ALTER FUNCTION campaigns_status_events() RESET enable_nestloop;
