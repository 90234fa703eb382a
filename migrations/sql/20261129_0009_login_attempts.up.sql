-- Sign-in attempt counts for when Redis is unreachable: every instance counts in the same
-- row with one atomic upsert, so the limits hold across instances during an outage.
-- Unlogged: a crash may forget counts, which only restarts a 15-minute window.
CREATE UNLOGGED TABLE login_attempts (
    key   text        PRIMARY KEY CHECK (length(key) <= 400),
    n     bigint      NOT NULL,
    until timestamptz NOT NULL
);
