-- The performance report taken every five minutes (one instance takes it): the figures the
-- performance page charts over 24 hours and 7 days. taken_at is the five-minute slot, so a
-- second instance taking the same slot changes nothing. Kept 30 days.
CREATE TABLE perf_snapshots (
    taken_at    timestamptz NOT NULL PRIMARY KEY,
    duration_ms double precision NOT NULL,
    figures     jsonb       NOT NULL
);
