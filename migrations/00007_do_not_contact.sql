-- +goose Up
-- The do-not-contact list (docs/dnc.md): people, provider ids or email
-- domains never to contact, for everyone (global), one account or one
-- campaign. Checked when the scheduler plans a target and again in the
-- transaction that reserves its send slot; an entry added (with SQL or
-- `outreach dnc add`) skips the matching waiting targets at once.
--
-- Each entry gives exactly one of:
--   identifier  as a user types it for a target (a LinkedIn URL or slug, an
--               email, a phone number, a Partoo user id); normalised on
--               insert by the rules targets follow (dnc_normalize_identifier,
--               the SQL twin of the provider packages' NormalizeIdentifier,
--               which refuses what it cannot normalise exactly as they do);
--   provider_id the provider's id of the person (a LinkedIn member id);
--   domain      an email domain: matches targets whose identifier is an
--               email at that domain (Altegio's emails). Unipile's profile
--               gives no company domain, so LinkedIn targets are matched by
--               identifier or provider id only.
CREATE TABLE do_not_contact (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Scope: neither (global), an account, or a campaign.
    account_id            bigint REFERENCES accounts (id) ON DELETE CASCADE,
    campaign_id           bigint REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The provider whose identifiers the entry holds; taken from the
    -- account or campaign when scoped; NULL (any provider) only for a
    -- global domain entry.
    provider              text CHECK (provider IN ('unipile', 'partoo', 'altegio')),
    identifier            text,
    normalized_identifier text,
    provider_id           text,
    domain                text,
    reason                text NOT NULL DEFAULT '',
    added_by              text NOT NULL DEFAULT current_user,
    added_at              timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX do_not_contact_unique ON do_not_contact
    (account_id, campaign_id, provider, normalized_identifier, provider_id, domain) NULLS NOT DISTINCT;
CREATE INDEX do_not_contact_identifier ON do_not_contact (normalized_identifier) WHERE normalized_identifier IS NOT NULL;
CREATE INDEX do_not_contact_provider_id ON do_not_contact (provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX do_not_contact_domain ON do_not_contact (domain) WHERE domain IS NOT NULL;

-- Waiting targets by person, for skipping them when an entry is added.
CREATE INDEX targets_waiting_identifier ON targets (normalized_identifier)
    WHERE status IN ('pending', 'queued') AND normalized_identifier IS NOT NULL;
CREATE INDEX targets_waiting_provider_id ON targets (provider_id)
    WHERE status IN ('pending', 'queued') AND provider_id IS NOT NULL;
-- People by provider id: an entry by provider id finds the waiting
-- targets given by slug whose person the cache knows.
CREATE INDEX people_provider_id ON people (provider_id);

-- +goose StatementBegin
-- dnc_email_domain returns the domain of an email identifier, or NULL.
CREATE FUNCTION dnc_email_domain(identifier text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN identifier LIKE '%@%' THEN lower(substring(identifier FROM '@([^@]*)$')) END
$$;
-- +goose StatementEnd

CREATE INDEX targets_waiting_domain ON targets (dnc_email_domain(normalized_identifier))
    WHERE status IN ('pending', 'queued') AND normalized_identifier LIKE '%@%';

-- +goose StatementBegin
-- dnc_percent_decode decodes %XX sequences as UTF-8, or returns NULL when
-- an escape is malformed or the result is not UTF-8 (as Go's
-- url.PathUnescape and utf8.ValidString refuse).
CREATE FUNCTION dnc_percent_decode(s text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out bytea := '';
    i int := 1;
    c text;
BEGIN
    WHILE i <= length(s) LOOP
        c := substr(s, i, 1);
        IF c = '%' THEN
            IF substr(s, i + 1, 2) !~ '^[0-9A-Fa-f]{2}$' THEN
                RETURN NULL;
            END IF;
            out := out || decode(substr(s, i + 1, 2), 'hex');
            i := i + 3;
        ELSE
            out := out || convert_to(c, 'UTF8');
            i := i + 1;
        END IF;
    END LOOP;
    BEGIN
        RETURN convert_from(out, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
        RETURN NULL;
    END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- dnc_normalize_identifier normalises what a user typed for a person of
-- provider as the provider packages' NormalizeIdentifier do (a LinkedIn URL
-- or slug to the lower-case slug or member id, an email lower-cased, a
-- phone number to its digits, a Partoo user id trimmed). It raises a
-- check_violation naming do_not_contact.identifier for anything it cannot
-- normalise exactly as they do; it is stricter where they are lenient
-- (rare email forms, non-ASCII digits), never laxer.
CREATE FUNCTION dnc_normalize_identifier(provider text, identifier text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s text := btrim(identifier, E' \t\n\r\f\v');
    rest text;
    m text[];
    parts text[];
    seg text;
    dec text;
    digits text;
    why text;
BEGIN
    IF provider = 'partoo' THEN
        IF s = '' OR s ~ '[[:space:][:cntrl:]/]' OR octet_length(s) > 64 THEN
            why := 'not a Partoo user id (not empty, at most 64 bytes, no spaces or slashes)';
        ELSE
            RETURN s;
        END IF;
    ELSIF provider = 'altegio' THEN
        IF position('@' IN s) > 0 THEN
            IF s ~ '^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$' THEN
                RETURN lower(s);
            END IF;
            why := 'not a bare email address such as jane@example.com';
        ELSE
            digits := regexp_replace(CASE WHEN s LIKE '+%' THEN substr(s, 2) ELSE s END, '[ ().-]', '', 'g');
            IF digits ~ '^[0-9]{6,15}$' THEN
                RETURN CASE WHEN s LIKE '+%' THEN '+' ELSE '' END || digits;
            END IF;
            why := 'not an email or a phone number of 6 to 15 digits';
        END IF;
    ELSIF provider = 'unipile' THEN
        IF s = '' THEN
            why := 'empty';
        ELSIF octet_length(s) > 2048 THEN
            why := 'too long';
        ELSIF s ~ '[[:space:][:cntrl:]]' THEN
            why := 'contains a space or a control character';
        ELSIF s ~ '^AC[ow]AA[A-Za-z0-9_-]{15,75}$' THEN
            RETURN s;
        ELSE
            IF position('/' IN s) = 0 AND position('linkedin.' IN lower(s)) = 0 THEN
                seg := s;
            ELSE
                -- [scheme://]host[/path][?query][#fragment]
                rest := s;
                IF rest !~ '://' THEN
                    rest := 'https://' || regexp_replace(rest, '^//', '');
                END IF;
                m := regexp_match(rest, '^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)');
                IF m IS NULL OR lower(m[1]) NOT IN ('http', 'https') THEN
                    why := 'not an http(s) LinkedIn URL';
                ELSIF m[2] ~ '[@:]' THEN
                    why := 'unexpected port or user in URL';
                ELSIF lower(m[2]) <> 'linkedin.com' AND lower(m[2]) !~ '^[a-z0-9-]+(\.[a-z0-9-]+)*\.linkedin\.com$' THEN
                    why := 'not a linkedin.com URL';
                ELSE
                    parts := array_remove(string_to_array(m[3], '/'), '');
                    IF lower(parts[1]) = 'in' AND cardinality(parts) >= 2 THEN
                        seg := parts[2];
                    ELSIF parts[1] = 'sales' AND cardinality(parts) >= 3 AND parts[2] IN ('lead', 'people') THEN
                        dec := split_part(dnc_percent_decode(parts[3]), ',', 1);
                        IF dec ~ '^AC[ow]AA[A-Za-z0-9_-]{15,75}$' THEN
                            RETURN dec;
                        END IF;
                        why := 'no member id in Sales Navigator URL';
                    ELSE
                        why := 'not a LinkedIn profile URL (/in/<slug>/ or a Sales Navigator lead)';
                    END IF;
                END IF;
            END IF;
            IF seg IS NOT NULL THEN
                dec := dnc_percent_decode(seg);
                IF dec IS NULL THEN
                    why := 'bad percent-encoding';
                ELSIF dec ~ '^AC[ow]AA[A-Za-z0-9_-]{15,75}$' THEN
                    RETURN dec;
                ELSIF dec !~ '^[A-Za-z0-9_-]+$' THEN
                    -- Only ASCII: Go's unicode classes and Postgres's
                    -- may differ beyond it (give a LinkedIn member id or
                    -- use outreach dnc add, which normalises in Go).
                    why := 'a public identifier of letters, digits, - and _ (ASCII)';
                ELSIF length(dec) > 100 THEN
                    why := 'public identifier longer than 100 characters';
                ELSIF btrim(dec, '-_') = '' THEN
                    why := 'public identifier has no letter or digit';
                ELSE
                    RETURN lower(dec);
                END IF;
            END IF;
        END IF;
    ELSE
        why := 'no provider to normalise it for (set provider, account_id or campaign_id)';
    END IF;
    RAISE EXCEPTION 'do_not_contact.identifier: % for provider %: %', to_json(identifier), coalesce(provider, 'NULL'), why
        USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'identifier';
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- do_not_contact_validate checks and completes an entry before it is
-- stored: its scope, its provider (from its account or campaign), exactly
-- one of identifier, provider_id and domain, each normalised. Errors name
-- the column (SQLSTATE 23514 check_violation).
CREATE FUNCTION do_not_contact_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    scope_provider text;
    keys int;
BEGIN
    IF NEW.account_id IS NOT NULL AND NEW.campaign_id IS NOT NULL THEN
        RAISE EXCEPTION 'do_not_contact.campaign_id: give account_id or campaign_id, not both (leave both NULL for a global entry)'
            USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'campaign_id';
    END IF;
    IF NEW.account_id IS NOT NULL THEN
        SELECT a.provider INTO scope_provider FROM accounts a WHERE a.id = NEW.account_id;
    ELSIF NEW.campaign_id IS NOT NULL THEN
        SELECT a.provider INTO scope_provider FROM campaigns c JOIN accounts a ON a.id = c.account_id WHERE c.id = NEW.campaign_id;
    END IF;
    IF scope_provider IS NOT NULL THEN
        IF NEW.provider IS NOT NULL AND NEW.provider <> scope_provider THEN
            RAISE EXCEPTION 'do_not_contact.provider: % is not the provider % of the entry''s account or campaign', NEW.provider, scope_provider
                USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'provider';
        END IF;
        NEW.provider := scope_provider;
    END IF;
    keys := (NEW.identifier IS NOT NULL)::int + (NEW.provider_id IS NOT NULL)::int + (NEW.domain IS NOT NULL)::int;
    IF keys <> 1 THEN
        RAISE EXCEPTION 'do_not_contact.identifier: give exactly one of identifier, provider_id or domain (got %)', keys
            USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'identifier';
    END IF;
    IF NEW.provider IS NULL AND NEW.domain IS NULL THEN
        RAISE EXCEPTION 'do_not_contact.provider: required for a global entry by identifier or provider_id (unipile, partoo or altegio)'
            USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'provider';
    END IF;
    IF NEW.identifier IS NOT NULL THEN
        -- outreach dnc add sets normalized_identifier by the Go rules;
        -- rows inserted with SQL get the SQL twin's.
        IF TG_OP = 'INSERT' AND NEW.normalized_identifier IS NOT NULL THEN
            NEW.normalized_identifier := btrim(NEW.normalized_identifier);
        ELSIF TG_OP = 'INSERT' OR NEW.identifier IS DISTINCT FROM OLD.identifier OR NEW.provider IS DISTINCT FROM OLD.provider
              OR NEW.normalized_identifier IS NULL THEN
            NEW.normalized_identifier := dnc_normalize_identifier(NEW.provider, NEW.identifier);
        END IF;
        IF NEW.normalized_identifier = '' THEN
            RAISE EXCEPTION 'do_not_contact.normalized_identifier: empty (leave it NULL: it is set from identifier)'
                USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'normalized_identifier';
        END IF;
    ELSE
        NEW.normalized_identifier := NULL;
    END IF;
    IF NEW.provider_id IS NOT NULL THEN
        NEW.provider_id := btrim(NEW.provider_id);
        IF NEW.provider_id = '' OR NEW.provider_id ~ '[[:space:][:cntrl:]]' THEN
            RAISE EXCEPTION 'do_not_contact.provider_id: % is empty or holds spaces', to_json(NEW.provider_id)
                USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'provider_id';
        END IF;
    END IF;
    IF NEW.domain IS NOT NULL THEN
        NEW.domain := lower(regexp_replace(btrim(NEW.domain), '^@', ''));
        IF NEW.domain !~ '^[a-z0-9-]+(\.[a-z0-9-]+)+$' THEN
            RAISE EXCEPTION 'do_not_contact.domain: % is not an email domain such as example.com', to_json(NEW.domain)
                USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'domain';
        END IF;
    END IF;
    IF NEW.reason IS NULL THEN
        NEW.reason := '';
    END IF;
    IF NEW.added_by IS NULL OR btrim(NEW.added_by) = '' THEN
        RAISE EXCEPTION 'do_not_contact.added_by: must not be empty (who added the entry)'
            USING ERRCODE = 'check_violation', TABLE = 'do_not_contact', COLUMN = 'added_by';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER do_not_contact_validate BEFORE INSERT OR UPDATE ON do_not_contact
    FOR EACH ROW EXECUTE FUNCTION do_not_contact_validate();

-- +goose StatementBegin
-- dnc_reason is the reason a target stopped by entry d is skipped with:
-- its scope, its id, who added it and why.
CREATE FUNCTION dnc_reason(d do_not_contact) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('do not contact: %s entry %s, added by %s%s',
        CASE WHEN d.account_id IS NOT NULL THEN 'account ' || d.account_id
             WHEN d.campaign_id IS NOT NULL THEN 'campaign ' || d.campaign_id
             ELSE 'global' END,
        d.id, d.added_by, CASE WHEN d.reason <> '' THEN ': ' || d.reason ELSE '' END)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- dnc_match returns the first entry (lowest id) that stops a target of
-- account_id and campaign_id at provider, whose person is known by any of
-- keys (its normalised identifier, its provider id, the provider id the
-- people cache gives), with the reason to skip it; no row when none does.
CREATE FUNCTION dnc_match(account_id bigint, campaign_id bigint, provider text, keys text[])
RETURNS TABLE (entry_id bigint, reason text) LANGUAGE sql STABLE AS $$
    SELECT d.id, dnc_reason(d) FROM (
        SELECT d0.* FROM do_not_contact d0 WHERE d0.normalized_identifier = ANY (keys)
        UNION ALL
        SELECT d0.* FROM do_not_contact d0 WHERE d0.provider_id = ANY (keys)
        UNION ALL
        SELECT d0.* FROM do_not_contact d0 WHERE d0.domain = ANY (SELECT dnc_email_domain(k) FROM unnest(keys) k)
    ) d
    WHERE (d.account_id IS NULL OR d.account_id = dnc_match.account_id)
      AND (d.campaign_id IS NULL OR d.campaign_id = dnc_match.campaign_id)
      AND (d.provider IS NULL OR d.provider = dnc_match.provider)
    ORDER BY d.id LIMIT 1
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- do_not_contact_skip skips the waiting targets (pending with a normalised
-- identifier, or queued) that a new or changed entry stops, in the
-- statement that adds it. A target being sent (sending) is left to the
-- check in the reservation of its next attempt; a new target whose
-- identifier is not normalised yet is checked when the scheduler plans it.
CREATE FUNCTION do_not_contact_skip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH cand AS (
        SELECT t.id FROM targets t
        WHERE t.status IN ('pending', 'queued') AND t.normalized_identifier IS NOT NULL
          AND t.normalized_identifier IN (NEW.normalized_identifier, NEW.provider_id)
        UNION
        SELECT t.id FROM targets t
        WHERE t.status IN ('pending', 'queued') AND t.provider_id IS NOT NULL
          AND t.provider_id IN (NEW.normalized_identifier, NEW.provider_id)
        UNION
        SELECT t.id FROM targets t JOIN accounts a ON a.id = t.account_id
        JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
        WHERE NEW.provider_id IS NOT NULL AND p.provider_id = NEW.provider_id
          AND t.status IN ('pending', 'queued') AND t.provider_id IS NULL
        UNION
        SELECT t.id FROM targets t
        WHERE NEW.domain IS NOT NULL AND t.status IN ('pending', 'queued') AND t.normalized_identifier LIKE '%@%'
          AND dnc_email_domain(t.normalized_identifier) = NEW.domain
    )
    UPDATE targets t SET status = 'skipped', last_error = dnc_reason(NEW), error_type = 'do_not_contact',
        wait_reason = NULL, updated_at = now(), finished_at = now()
    FROM cand JOIN targets t2 ON t2.id = cand.id JOIN accounts a ON a.id = t2.account_id
    -- Checked again on the row as it is when its lock is granted: a
    -- target a reservation took meanwhile (sending) is left to the check
    -- of its next reservation.
    WHERE t.id = cand.id AND t.status IN ('pending', 'queued')
      AND (NEW.account_id IS NULL OR t2.account_id = NEW.account_id)
      AND (NEW.campaign_id IS NULL OR t2.campaign_id = NEW.campaign_id)
      AND (NEW.provider IS NULL OR a.provider = NEW.provider);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER do_not_contact_skip AFTER INSERT OR UPDATE ON do_not_contact
    FOR EACH ROW EXECUTE FUNCTION do_not_contact_skip();

-- +goose Down
DROP TABLE do_not_contact CASCADE;
DROP FUNCTION do_not_contact_skip();
DROP FUNCTION dnc_match(bigint, bigint, text, text[]);
DROP FUNCTION do_not_contact_validate();
DROP FUNCTION dnc_normalize_identifier(text, text);
DROP FUNCTION dnc_percent_decode(text);
DROP INDEX targets_waiting_domain;
DROP INDEX targets_waiting_identifier;
DROP INDEX targets_waiting_provider_id;
DROP INDEX people_provider_id;
DROP FUNCTION dnc_email_domain(text);
