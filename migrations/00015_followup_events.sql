-- +goose Up
-- What happens after the invitation joins the event stream and the
-- organisation's owner rule: an accepted invitation (recorded by a poll or
-- a webhook, 00011) and a withdrawn one (00012) are events of their own
-- (docs/events.md), and an acceptance makes the person a connection of the
-- account for the one-owner rule (00009, docs/owners.md).
CREATE TRIGGER targets_accepted_event AFTER UPDATE OF accepted_at ON targets
    FOR EACH ROW WHEN (OLD.accepted_at IS NULL AND NEW.accepted_at IS NOT NULL)
    EXECUTE FUNCTION outreach_target_event('target.accepted');
CREATE TRIGGER targets_withdrawn_event AFTER UPDATE OF withdrawn_at ON targets
    FOR EACH ROW WHEN (OLD.withdrawn_at IS NULL AND NEW.withdrawn_at IS NOT NULL)
    EXECUTE FUNCTION outreach_target_event('target.withdrawn');

-- +goose StatementBegin
CREATE FUNCTION targets_note_acceptance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outreach_note_relation(a.provider, NEW.provider_id, NEW.account_id, 'connected', NEW.accepted_at)
    FROM accounts a WHERE a.id = NEW.account_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER targets_note_acceptance AFTER UPDATE OF accepted_at ON targets
    FOR EACH ROW WHEN (OLD.accepted_at IS NULL AND NEW.accepted_at IS NOT NULL AND NEW.provider_id IS NOT NULL)
    EXECUTE FUNCTION targets_note_acceptance();

-- +goose Down
DROP TRIGGER targets_note_acceptance ON targets;
DROP FUNCTION targets_note_acceptance();
DROP TRIGGER targets_withdrawn_event ON targets;
DROP TRIGGER targets_accepted_event ON targets;
