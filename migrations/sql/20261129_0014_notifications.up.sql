-- Alert notifications: each organization's channels (webhooks and email), the deliveries
-- of its alerts to them, and the mark that says an alert's deliveries have been enqueued.

-- Set when the deliveries of an alert have been enqueued; alerts raised before
-- notifications existed count as handled, so nothing old is sent.
ALTER TABLE alerts ADD COLUMN notified_at timestamptz;
UPDATE alerts SET notified_at = created_at;
-- The notifier's scan: alerts not yet handled, oldest first.
CREATE INDEX alerts_unnotified_idx ON alerts (created_at) WHERE notified_at IS NULL;

CREATE TABLE notification_channels (
    id               varchar(40)  PRIMARY KEY,
    organization_id  varchar(255) NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             varchar(100) NOT NULL,
    kind             varchar(16)  NOT NULL CHECK (kind IN ('webhook', 'email')),
    -- The webhook URL or the email address.
    target           varchar(2048) NOT NULL,
    -- The webhook's signing secret (shown once on creation); NULL for email.
    secret           varchar(100),
    min_severity     varchar(20)  NOT NULL CHECK (min_severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    enabled          boolean      NOT NULL DEFAULT true,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    created_by       varchar(255) NOT NULL,
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TABLE alert_deliveries (
    id               bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  varchar(255) NOT NULL,
    -- NULL for a test delivery.
    alert_id         varchar(255) REFERENCES alerts(id) ON DELETE CASCADE,
    channel_id       varchar(40)  NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    status           varchar(16)  NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    -- The JSON body sent (a webhook's body; an email is written from it).
    payload          jsonb        NOT NULL,
    attempts         integer      NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz  NOT NULL,
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    response_status  integer,
    created_at       timestamptz  NOT NULL
);
-- The sender's claim: due pending deliveries.
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
-- The settings page's log per channel, and the alert page's deliveries.
CREATE INDEX alert_deliveries_channel_idx ON alert_deliveries (channel_id, created_at DESC, id DESC);
CREATE INDEX alert_deliveries_alert_idx ON alert_deliveries (alert_id) WHERE alert_id IS NOT NULL;

-- Managing notification channels is audit.alerts:update, for admins and owners.
UPDATE organization_role
SET permissions = permissions || '[{"resource": "audit.alerts", "action": "update"}]'::jsonb
WHERE organization_id = '*' AND name IN ('org:admin', 'org:owner')
  AND NOT permissions @> '[{"resource": "audit.alerts", "action": "update"}]'::jsonb;
