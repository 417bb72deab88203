-- +goose Up
-- Worker liveness: each worker process registers a row and renews its
-- heartbeat every few seconds from a goroutine of its own, independent of
-- provider calls. A worker whose heartbeat is older than a few seconds (by
-- the database's clock) is dead: its in-flight sends are examined at once
-- and their targets queued again, instead of waiting for the lease. See
-- docs/recovery.md.
CREATE TABLE workers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    -- Set by a clean stop: the worker is gone, whatever its heartbeat.
    stopped_at   timestamptz,
    -- Set once its in-flight sends were examined after it died or stopped.
    recovered_at timestamptz
);

CREATE INDEX workers_unrecovered ON workers (heartbeat_at) WHERE recovered_at IS NULL;

-- The worker process that made the call (NULL: a worker without liveness,
-- recovered by the lease only). No foreign key: worker rows are pruned.
ALTER TABLE sends ADD COLUMN worker_id bigint;
-- When an uncertain attempt (outcome unknown or error) was settled from the
-- provider's own state: it went out (outcome then 'sent') or it did not.
ALTER TABLE sends ADD COLUMN settled_at timestamptz;
CREATE INDEX sends_worker_in_flight ON sends (worker_id) WHERE outcome = 'in_flight';

-- The generation of the target's task: its task id is invite:N for 0,
-- invite:N:G after G recoveries. A task of an older generation (still
-- held by asynq for a dead worker) is refused by the reservation.
ALTER TABLE targets ADD COLUMN task_gen integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE targets DROP COLUMN task_gen;
DROP INDEX sends_worker_in_flight;
ALTER TABLE sends DROP COLUMN settled_at;
ALTER TABLE sends DROP COLUMN worker_id;
DROP TABLE workers;
