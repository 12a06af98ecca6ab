-- Each subject's counted runs and earliest knowledge time (issue #14: a young subject's window
-- read). Gates read a subject's window from a lower bound on knowledge time. A subject with
-- fewer runs than its window holds needs its whole history; without these columns the bound
-- widened fourfold a read until it passed the ledger's oldest run (then an unbounded read).
-- Both describe the subject's ledger rows that governance may count (realized, with a ts;
-- known at `coalesce(known_ts, ts)`), written by reconcile (`reconcile._subjects_sql`):
-- - runs: how many there are (exclusions and an as-of may count fewer, never more);
-- - first_known: a lower bound on their knowledge times. Reconcile lowers it as it builds
--   rows and never raises it; a full rebuild sets it exactly. NULL: no such run seen.
ALTER TABLE ledger_subjects ADD COLUMN first_known TIMESTAMP;
ALTER TABLE ledger_subjects ADD COLUMN runs BIGINT DEFAULT 0;

UPDATE ledger_subjects SET first_known = f.first_known, runs = f.runs
FROM (SELECT 'agent' AS scope, agent AS subject,
             min(coalesce(known_ts, ts)) FILTER (WHERE ts IS NOT NULL) AS first_known,
             count(*) FILTER (WHERE ts IS NOT NULL) AS runs
      FROM ledger WHERE realized_pnl_bps IS NOT NULL AND agent IS NOT NULL GROUP BY agent
      UNION ALL
      SELECT 'strategy', strategy, min(coalesce(known_ts, ts)) FILTER (WHERE ts IS NOT NULL),
             count(*) FILTER (WHERE ts IS NOT NULL)
      FROM ledger WHERE realized_pnl_bps IS NOT NULL AND strategy IS NOT NULL GROUP BY strategy) f
WHERE ledger_subjects.scope = f.scope AND ledger_subjects.subject = f.subject;
