-- Which ledger rows each reconcile changed (issue #14: late runs, and #18: the same on Spark).
-- A run whose row a reconcile adds or changes in any column (new or revised events, a leg
-- repriced because bars or funding were appended or corrected, a policy change) gets one row
-- here with that reconcile's `reconcile_log.seq`; a row rebuilt to the same values gets none,
-- so a full rebuild records only what it changed. Append-only, in seq order (reads of recent
-- seqs skip the older row groups). Exported with the ledger, so Spark reads the same changes.
CREATE TABLE ledger_changes (
    seq     BIGINT NOT NULL,    -- the reconcile (reconcile_log.seq) that changed the row
    run_id  VARCHAR NOT NULL
);

-- The newest ledger_changes seq the gates' last catch-up read the ledger at: the runs changed
-- after it and known at or before their subject's progress mark are judged again at the mark
-- (governance/replay.py). None yet: every recorded change is after it.
CREATE TABLE gate_seen (
    seq  BIGINT NOT NULL
);

-- 0022 kept the newest ingested file the last catch-up's ledger held. The runs it would have
-- found changed since (events from a later file the ledger already holds) are carried over as
-- changed by the newest reconcile, which no catch-up has seen (gate_seen is empty).
INSERT INTO ledger_changes
SELECT DISTINCT (SELECT greatest(coalesce(max(seq), 0), 1) FROM reconcile_log), c.run_id
FROM (SELECT run_id, file_id FROM alpha UNION ALL SELECT run_id, file_id FROM pnl
      UNION ALL SELECT run_id, file_id FROM telemetry) c
WHERE c.file_id > (SELECT max(seen) FROM gate_files)
  AND c.file_id <= (SELECT max_file_id FROM reconcile_log ORDER BY seq DESC LIMIT 1)
  AND c.run_id IN (SELECT run_id FROM ledger)
ORDER BY c.run_id;

DROP TABLE gate_files;
