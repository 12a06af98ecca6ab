-- Knowledge time (issue 14 item 3): a run counts toward confidence and gates from the moment its
-- PnL became known, not from its signal time.
--
-- ledger.known_ts: a reconciled run: the latest exit bar open time over its legs (an all-FLAT
-- run: its signal ts); a run whose PnL comes from external pnl events: the latest ts of the
-- events it uses, each falling back to its file's ingested_at; never before the run's ts.
-- NULL when the run is not realized. Every reconcile rebuilds the ledger and computes it
-- exactly (ledger/build.py); this fills existing rows from what is stored, taking for an
-- external run every pnl event of the run (not only the winning revisions): the next
-- reconcile replaces it with the exact value.
ALTER TABLE ledger ADD COLUMN known_ts TIMESTAMP;
UPDATE ledger SET known_ts = CASE
    WHEN realized_pnl_bps IS NULL THEN NULL
    WHEN pnl_source = 'external' THEN greatest(ts, (
        SELECT max(coalesce(p.ts, f.ingested_at)) FROM pnl p
        LEFT JOIN ingested_files f ON f.file_id = p.file_id
        WHERE p.run_id = ledger.run_id))
    ELSE coalesce(exit_ts, ts) END;

-- How far `gates evaluate` has evaluated each subject: the knowledge time of its last
-- evaluation. The next evaluation only evaluates points after it (governance/replay.py).
CREATE TABLE gate_progress (
    scope         VARCHAR NOT NULL,   -- agent | strategy
    subject       VARCHAR NOT NULL,
    evaluated_to  TIMESTAMP NOT NULL, -- UTC knowledge time
    PRIMARY KEY (scope, subject)
);
-- A store with decisions already: each subject is evaluated up to its newest gate record, so
-- the first catch-up after the upgrade does not replay the history it already judged.
INSERT INTO gate_progress
SELECT scope, subject, max(as_of) FROM decisions
WHERE scope IN ('agent', 'strategy') AND as_of IS NOT NULL
  AND action IN ('promote', 'kill', 'hold', 'inconclusive', 'error')
GROUP BY scope, subject;
