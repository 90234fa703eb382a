-- Detection's runs (models/detectfeed.go): the Merkle sequencer records, in the transaction
-- that appends them, which writes' events one call appended to an organization's log as the
-- leaves [first_leaf, first_leaf + leaves): the last ids of those writes' leaf queue rows,
-- which are the last ids of their detection feed rows, and the sum of the events' ids (a
-- check that the feed rows hold exactly those events). Detection then takes a batch's events
-- from the feed rows of the runs it starts with, without reading the leaves back. A run is
-- only written while a feed row of its writes exists, and is only a shortcut: detection reads
-- the leaves of a range without a whole, matching run. Unlogged (a crash empties it) and the
-- database owner's only, like the feed; it holds no values of events.
CREATE UNLOGGED TABLE detection_run (
    organization_id varchar(255) NOT NULL,
    first_leaf      bigint       NOT NULL,
    leaves          integer      NOT NULL,
    feed_last_ids   bigint[]     NOT NULL,
    id_sum          bigint       NOT NULL,
    written_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, first_leaf)
);
