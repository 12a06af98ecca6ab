-- The newest ingested file the gates' last catch-up judged the ledger up to (issue #14): runs
-- whose events came in a later file and are known at or before their subject's progress mark
-- (late or out-of-order data) are judged again at the mark (governance/replay.py,
-- `changed_runs_sql`). Empty until the first catch-up after this migration.
CREATE TABLE gate_files (
    seen BIGINT NOT NULL   -- reconcile_log.max_file_id of the ledger that catch-up read
);
