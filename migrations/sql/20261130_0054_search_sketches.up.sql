-- Free text in the events explorer is a substring LIKE over the search text (models.SearchText),
-- which no index serves under row-level security and which a trigram index made ingest about
-- 60 % slower. A search sketch answers "can this word occur on this day?" instead: per
-- organization and UTC day, a Bloom filter (one hash) of every byte trigram of the day's
-- events' search text, built off the ingest path by a daily job. It covers the events whose
-- Merkle leaf index is below below_leaf, plus possibly more; a search still reads the events
-- from below_leaf on (see models/searchsketch.go).
--
-- The table is the database owner's only, like event_counts_daily: nothing is granted to the
-- tenant role. The bits say which trigrams an organization's text holds.
CREATE TABLE search_sketches (
    organization_id varchar(255) NOT NULL,
    day             date         NOT NULL,
    bits            bytea        NOT NULL,
    events          bigint       NOT NULL,
    below_leaf      bigint       NOT NULL,
    built_at        timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, day)
);

-- Whether every bit of positions is set in bits (bit p is bit p % 8 of byte p / 8). A search
-- sends only its word's bit positions: a year's sketches stay in the database. The sketch is
-- decompressed once, into plain (a copy): get_byte on the stored, compressed value would
-- decompress all 8 KiB again for every bit.
CREATE FUNCTION auditdb_search_sketch_has(bits bytea, positions int[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    plain bytea := bits || ''::bytea;
    p int;
BEGIN
    FOREACH p IN ARRAY positions LOOP
        IF get_byte(plain, p >> 3) & (1 << (p & 7)) = 0 THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- One row per organization whose events' search text was rewritten (erasure, pseudonymization,
-- redaction). The sketch builder touches the row in its snapshot transaction: a rewrite that
-- commits after the builder's snapshot makes the builder's write fail with a serialization
-- error, so a sketch of the old text never outlives the rewrite's deletion of it.
CREATE TABLE search_sketch_changes (
    organization_id varchar(255) PRIMARY KEY,
    changed_at      timestamptz  NOT NULL DEFAULT now()
);

-- Any UPDATE of audit_log that changes an event's search text deletes the sketches of the days
-- it touched, in its own transaction, so that a search for the new text (a pseudonym) still
-- reads those days until the job rebuilds them. A trigger, not each writer, so that no future
-- writer can forget it.
-- The guard row is bumped first, in a statement of its own: it waits for a builder holding the
-- row, and the DELETE that follows then takes a snapshot that sees the builder's sketch.
CREATE FUNCTION auditdb_search_sketch_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_sketch_changes (organization_id)
    SELECT DISTINCT n.organization_id FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE (o.action, o.principal_id, o.target_resource_type, o.target_resource_id, o.outcome_description, o.correlation_id)
        IS DISTINCT FROM (n.action, n.principal_id, n.target_resource_type, n.target_resource_id, n.outcome_description, n.correlation_id)
    ORDER BY 1
    ON CONFLICT (organization_id) DO UPDATE SET changed_at = now();
    DELETE FROM search_sketches s USING (
        SELECT DISTINCT n.organization_id, (n."timestamp" AT TIME ZONE 'UTC')::date AS day
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.action, o.principal_id, o.target_resource_type, o.target_resource_id, o.outcome_description, o.correlation_id)
            IS DISTINCT FROM (n.action, n.principal_id, n.target_resource_type, n.target_resource_id, n.outcome_description, n.correlation_id)
    ) t
    WHERE s.organization_id = t.organization_id AND s.day = t.day;
    RETURN NULL;
END $$;

CREATE TRIGGER audit_log_search_sketch_invalidate AFTER UPDATE ON audit_log
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_search_sketch_invalidate();
