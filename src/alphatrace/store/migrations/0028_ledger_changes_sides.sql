-- Each ledger change with what the gates' catch-up needs to find every subject concerned
-- without reading the ledger (issue #14: a run that leaves a subject is late news for it
-- too): the run's agent, strategy and knowledge time before the change (old_*) and after it
-- (new_*). A side's known_ts is NULL when the run did not count on that side (no realized PnL
-- or no ts); the old side is all NULL for an added row, the new side for a row that left the
-- ledger (now recorded too). `exclusions apply` records the runs whose exclusion it applied
-- or lifted, with their row on both sides, numbered after every reconcile (ledger/changes.py).
ALTER TABLE ledger_changes ADD COLUMN old_agent VARCHAR;
ALTER TABLE ledger_changes ADD COLUMN old_strategy VARCHAR;
ALTER TABLE ledger_changes ADD COLUMN old_known_ts TIMESTAMP;
ALTER TABLE ledger_changes ADD COLUMN new_agent VARCHAR;
ALTER TABLE ledger_changes ADD COLUMN new_strategy VARCHAR;
ALTER TABLE ledger_changes ADD COLUMN new_known_ts TIMESTAMP;

-- Rows from before: the new side from the ledger as it stands (what the catch-up read for
-- them before 0028); the old side was not recorded and stays NULL, and so does the new side
-- of a run no longer in the ledger.
UPDATE ledger_changes SET
    new_agent = l.agent, new_strategy = l.strategy,
    new_known_ts = CASE WHEN l.realized_pnl_bps IS NOT NULL AND l.ts IS NOT NULL
                        THEN coalesce(l.known_ts, l.ts) END
FROM ledger l WHERE l.run_id = ledger_changes.run_id;
