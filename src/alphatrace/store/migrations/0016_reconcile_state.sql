-- Reconcile state (issue 14: a live pass proportional to what is new). What the last reconcile
-- left, so the next one reads it instead of counting or scanning whole tables.

-- The event tables' sizes after each reconcile: every telemetry and pnl row then was counted in
-- the ledger, so "the rows of files up to max_file_id still number n_telemetry" replaces summing
-- ledger.n_telemetry over every run. NULL on rows written before this migration: the next
-- reconcile counts as before, once.
ALTER TABLE reconcile_log ADD COLUMN n_telemetry BIGINT;
ALTER TABLE reconcile_log ADD COLUMN n_pnl BIGINT;

-- How each symbol spelled by alpha events resolved at the last reconcile (NULL symbol:
-- unresolved): every leg's market_symbol is its alias's symbol here, so only the legs of an
-- alias that now resolves differently are compared, not every leg. Written by each reconcile
-- from this version on (empty before: the first one compares every leg, as before).
CREATE TABLE ledger_alpha_keys (
    alias   VARCHAR PRIMARY KEY,
    symbol  VARCHAR
);

-- Every agent and strategy class with a run with realized PnL in the ledger (a superset: a
-- subject stays when its runs are rebuilt unrealized). Gates find the subjects without a
-- progress mark here instead of in a DISTINCT over the whole ledger; reconcile adds the
-- subjects of the rows it builds.
CREATE TABLE ledger_subjects (
    scope    VARCHAR NOT NULL,   -- agent | strategy
    subject  VARCHAR NOT NULL,
    PRIMARY KEY (scope, subject)
);
INSERT INTO ledger_subjects
SELECT DISTINCT 'agent', agent FROM ledger WHERE realized_pnl_bps IS NOT NULL AND agent IS NOT NULL
UNION
SELECT DISTINCT 'strategy', strategy FROM ledger
WHERE realized_pnl_bps IS NOT NULL AND strategy IS NOT NULL;
