DROP VIEW IF EXISTS detection_hit;

CREATE TABLE detection_hit (
    organization_id varchar(255) NOT NULL,
    rule            varchar(50)  NOT NULL,
    group_key       varchar(255) NOT NULL,
    event_time      timestamptz  NOT NULL,
    event_id        bigint       NOT NULL,
    resource_type   varchar(255),
    PRIMARY KEY (organization_id, rule, group_key, event_time, event_id)
);
CREATE INDEX detection_hit_purge_idx ON detection_hit (organization_id, rule, event_time);

INSERT INTO detection_hit (organization_id, rule, group_key, event_time, event_id, resource_type)
SELECT r.organization_id, r.rule, r.group_key, u.event_time, u.event_id, u.resource_type
FROM detection_hit_run r
CROSS JOIN LATERAL unnest(r.event_times, r.event_ids, r.resource_types) AS u (event_time, event_id, resource_type)
ON CONFLICT DO NOTHING;

DROP TABLE detection_hit_run;
