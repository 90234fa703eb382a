-- When each write entered the Merkle leaf queue, so that the sequencer's lag (the age of
-- the oldest write still waiting) can be read by any instance. Existing rows take the time
-- of the migration (a constant default: no table rewrite).
ALTER TABLE audit_leaf_queue ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
