-- Detection on the event stream.
--
-- detection_cursor: per organization, the next Merkle leaf (audit_leaf.leaf_index) the
-- detection pass has not processed yet. The pass locks the row (FOR UPDATE SKIP LOCKED),
-- so one instance processes an organization at a time, and advances it in the transaction
-- that records the batch's hits, alerts and event counts: each event is counted once.
CREATE TABLE detection_cursor (
    organization_id varchar(255) PRIMARY KEY,
    leaf_index      bigint       NOT NULL DEFAULT 0,
    updated_at      timestamptz  NOT NULL DEFAULT now()
);

-- detection_hit: the events a rule matched, kept while they can still fall into the rule's
-- window (at most 24 hours). A rule's count over its window is a count over this table, so
-- windows survive restarts and are shared by every instance.
CREATE TABLE detection_hit (
    organization_id varchar(255) NOT NULL,
    rule            varchar(50)  NOT NULL,
    group_key       varchar(255) NOT NULL, -- the principal, the address, or '' for the organization
    event_time      timestamptz  NOT NULL,
    event_id        bigint       NOT NULL,
    resource_type   varchar(255),
    PRIMARY KEY (organization_id, rule, group_key, event_time, event_id)
);
-- The purge deletes a rule's hits past its window.
CREATE INDEX detection_hit_purge_idx ON detection_hit (organization_id, rule, event_time);

-- alert_rule: an organization's settings for a detection rule; a rule without a row uses
-- its defaults.
CREATE TABLE alert_rule (
    organization_id varchar(255) NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    rule            varchar(50)  NOT NULL,
    enabled         boolean      NOT NULL,
    threshold       integer      NOT NULL CHECK (threshold > 0 AND threshold <= 100000),
    window_seconds  integer      NOT NULL CHECK (window_seconds > 0 AND window_seconds <= 86400),
    severity        varchar(20)  NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    updated_by      varchar(255) NOT NULL,
    PRIMARY KEY (organization_id, rule)
);

-- The detection pass looks up the newest alert of (organization, rule, principal, severity)
-- before raising one (300 s deduplication).
CREATE INDEX alerts_rule_dedup_idx ON alerts (organization_id, rule, principal, severity, created_at DESC)
    WHERE rule IS NOT NULL;

-- Changing the alert rules is an administrator's update of audit.alerts (the owner
-- inherits the admin role).
UPDATE organization_role
SET permissions = permissions || '[{"resource": "audit.alerts", "action": "update"}]'::jsonb
WHERE organization_id = '*' AND name = 'org:admin'
  AND NOT permissions @> '[{"resource": "audit.alerts", "action": "update"}]'::jsonb;
