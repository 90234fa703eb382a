-- Detection records a rule's hits per pass, not per event: one row holds the hits of one
-- (organization, rule, group) that one batch found, its times, event ids and resource
-- types as arrays in (time, id) order, with their count and time span. A batch of 20,000
-- events touching 500 principals writes about 500 rows where it wrote one per matching
-- event, and a pass can tell from the counts alone that a group cannot have reached a
-- threshold, without reading its hits.
CREATE TABLE detection_hit_run (
    organization_id varchar(255)  NOT NULL,
    rule            varchar(50)   NOT NULL,
    group_key       varchar(255)  NOT NULL, -- the principal, the address, or '' for the organization
    first_time      timestamptz   NOT NULL,
    last_time       timestamptz   NOT NULL,
    hits            integer       NOT NULL CHECK (hits > 0),
    event_times     timestamptz[] NOT NULL,
    event_ids       bigint[]      NOT NULL,
    resource_types  text[]        NOT NULL,
    CHECK (cardinality(event_times) = hits AND cardinality(event_ids) = hits AND cardinality(resource_types) = hits)
);
-- The window read (a rule's groups over a time range) and the purge (a rule's runs past
-- twice its window) both start from (organization, rule).
CREATE INDEX detection_hit_run_window_idx ON detection_hit_run (organization_id, rule, group_key, last_time);

INSERT INTO detection_hit_run (organization_id, rule, group_key, first_time, last_time, hits, event_times, event_ids, resource_types)
SELECT organization_id, rule, group_key, min(event_time), max(event_time), count(*)::int,
       array_agg(event_time ORDER BY event_time, event_id), array_agg(event_id ORDER BY event_time, event_id),
       array_agg(resource_type::text ORDER BY event_time, event_id)
FROM detection_hit GROUP BY organization_id, rule, group_key;

DROP TABLE detection_hit;

-- detection_hit: one row per recorded hit, as before, for reading (support queries, tests).
CREATE VIEW detection_hit AS
SELECT r.organization_id, r.rule, r.group_key, u.event_time, u.event_id, u.resource_type
FROM detection_hit_run r
CROSS JOIN LATERAL unnest(r.event_times, r.event_ids, r.resource_types) AS u (event_time, event_id, resource_type);
