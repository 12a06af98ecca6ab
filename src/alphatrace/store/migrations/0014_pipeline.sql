-- Incremental ledger (issue 14): a reconcile rebuilds only the ledger rows of the runs that
-- changed. These tables hold what it compares against, as of the last reconcile.

-- The ledger's definition (a hash of the SQL that builds it): a store whose ledger was built
-- by another version of alphatrace (a new column, a new rule) is rebuilt in full, once.
-- One row; none before the first reconcile that writes it.
CREATE TABLE ledger_build (
    definition  VARCHAR NOT NULL
);

-- How each symbol spelled by pnl events resolved (its key: the market symbol, else the
-- normalised spelling). A new alias or market changes a key, and with it the weighting of
-- the runs whose pnl events spell that symbol: those runs are rebuilt.
CREATE TABLE ledger_pnl_keys (
    alias  VARCHAR PRIMARY KEY,
    key    VARCHAR
);
