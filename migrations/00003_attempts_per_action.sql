-- +goose Up
-- targets.attempts counts the calls of the target's current action only:
-- its profile lookups until the lookup resolves it, then its invitations.
-- A lookup that resolves the target sets it back to 0, so an invitation's
-- first 5xx backs off from the first step and the invitation gets every
-- try of the policy (TransientAttempts), however many lookups it took.
-- The ledger (sends, one row per call with its action) keeps the full
-- count: SELECT action, count(*) FROM sends WHERE target_id = $1 GROUP BY action.
COMMENT ON COLUMN targets.attempts IS
    'calls of the current action: lookups until the target is resolved, then invitations (reset to 0 when a lookup resolves it); sends has every call';

-- Targets resolved by a lookup and still under way count their
-- invitations only, as from now on.
UPDATE targets t SET attempts = (SELECT count(*) FROM sends s WHERE s.target_id = t.id AND s.action = 'invite')
WHERE t.provider_id IS NOT NULL AND t.status IN ('pending', 'queued', 'sending')
    AND EXISTS (SELECT 1 FROM sends s WHERE s.target_id = t.id AND s.action = 'lookup');

-- +goose Down
COMMENT ON COLUMN targets.attempts IS NULL;
