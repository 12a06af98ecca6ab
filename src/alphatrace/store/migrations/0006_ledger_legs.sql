-- Reconciliation (issue 3): one priced leg per alpha event, the market state the legs were
-- priced against (for incremental reconcile), a log of reconciles, pnl revision history, and
-- extra ledger columns. Existing ledger columns keep their names and meaning.

-- One row per alpha event. `policy_hash` is the hash of the `reconcile:` policy section that
-- priced it; `fingerprint` hashes every input that decided the numbers (policy, market symbol,
-- bar interval, entry/exit bars and prices, funding totals), so a leg traces to its inputs.
CREATE TABLE legs (
    event_id         VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    agent            VARCHAR,
    strategy         VARCHAR,
    ts               TIMESTAMP,          -- signal time
    symbol           VARCHAR,            -- as the event spelled it
    market_symbol    VARCHAR,            -- resolved market symbol (NULL: unresolved)
    direction        VARCHAR,            -- LONG | SHORT | FLAT
    score_final      DOUBLE,
    regime           VARCHAR,
    size_usd         DOUBLE,             -- effective: event, else agent override, else default
    horizon_s        DOUBLE,             -- effective, same precedence
    fee_rate         DOUBLE,             -- per side, as a fraction (5 bps = 0.0005)
    include_funding  BOOLEAN,
    interval_s       INTEGER,            -- bar interval priced with
    entry_ts         TIMESTAMP,
    entry_price      DOUBLE,
    exit_ts          TIMESTAMP,
    exit_price       DOUBLE,
    gross_bps        DOUBLE,
    fee_bps          DOUBLE,
    funding_bps      DOUBLE,
    paper_pnl_bps    DOUBLE,
    pnl_usd          DOUBLE,
    status           VARCHAR NOT NULL,   -- realized | open | unpriced
    reason           VARCHAR,            -- why open / unpriced
    policy_hash      VARCHAR NOT NULL,
    fingerprint      UBIGINT,
    file_id          BIGINT,
    line             BIGINT
);

-- The market data as of the last reconcile, per symbol: lets the next reconcile tell bars or
-- funding that were only appended (realized legs stay valid) from history that changed.
CREATE TABLE ledger_market_state (
    symbol          VARCHAR PRIMARY KEY,
    interval_s      INTEGER,
    bars_n          BIGINT,
    bars_last       TIMESTAMP,
    bars_digest     UBIGINT,
    funding_n       BIGINT,
    funding_last    TIMESTAMP,
    funding_digest  UBIGINT
);

CREATE TABLE reconcile_log (
    seq            BIGINT PRIMARY KEY,
    policy_hash    VARCHAR NOT NULL,
    legs           BIGINT,
    priced         BIGINT,             -- legs (re)priced by this reconcile
    realized       BIGINT,
    open           BIGINT,
    unpriced       BIGINT,
    runs           BIGINT,
    max_file_id    BIGINT,             -- newest ingested/imported file seen: staleness check
    reconciled_at  TIMESTAMP
);

-- Every pnl event with its precedence among the events of the same run and (normalised)
-- symbol: the highest revision wins, ties by later ts, then later ingest. History is kept.
CREATE VIEW pnl_history AS
SELECT p.*,
       nullif(regexp_replace(upper(split_part(trim(p.symbol), ':', 1)), '[^A-Z0-9]', '', 'g'), '')
         AS symbol_key,
       row_number() OVER (
         PARTITION BY p.run_id,
                      nullif(regexp_replace(upper(split_part(trim(p.symbol), ':', 1)), '[^A-Z0-9]', '', 'g'), '')
         ORDER BY p.revision DESC, p.ts DESC NULLS LAST, p.file_id DESC NULLS LAST,
                  p.line DESC NULLS LAST, p.event_id DESC) AS precedence,
       row_number() OVER (
         PARTITION BY p.run_id,
                      nullif(regexp_replace(upper(split_part(trim(p.symbol), ':', 1)), '[^A-Z0-9]', '', 'g'), '')
         ORDER BY p.revision DESC, p.ts DESC NULLS LAST, p.file_id DESC NULLS LAST,
                  p.line DESC NULLS LAST, p.event_id DESC) = 1 AS is_latest
FROM pnl p;

-- The ledger is rebuilt in full by every reconcile; a PRIMARY KEY index on run_id made that
-- rebuild (delete + insert of every row) an order of magnitude slower, so the table is
-- recreated without it. run_id stays unique by construction (one GROUP BY run_id) and the
-- tests check it. Same columns, same order, same meaning, plus the ones at the end.
CREATE TABLE ledger_v6 (
    run_id             VARCHAR NOT NULL,
    agent              VARCHAR,
    strategy           VARCHAR,
    ts                 TIMESTAMP,
    symbols            VARCHAR,
    direction          VARCHAR,
    score_final        DOUBLE,
    regime             VARCHAR,
    latency_ms         DOUBLE,
    tokens_in          BIGINT,
    tokens_out         BIGINT,
    cost_usd           DOUBLE,
    errors             BIGINT,
    model              VARCHAR,
    entry_price        DOUBLE,
    exit_price         DOUBLE,
    gross_bps          DOUBLE,
    fee_bps            DOUBLE,
    funding_bps        DOUBLE,
    paper_pnl_bps      DOUBLE,
    realized_pnl_bps   DOUBLE,
    pnl_source         VARCHAR,
    size_usd           DOUBLE,
    pnl_usd            DOUBLE,
    net_usd            DOUBLE,
    net_bps            DOUBLE,
    execution_gap_bps  DOUBLE,
    status             VARCHAR,
    policy_hash        VARCHAR,
    n_legs             BIGINT,         -- alpha events of the run
    n_telemetry        BIGINT,         -- telemetry records
    n_pnl              BIGINT,         -- pnl events, revisions included
    entry_ts           TIMESTAMP,      -- earliest entry bar of the legs
    exit_ts            TIMESTAMP,      -- latest exit bar of the legs
    external_pnl_bps   DOUBLE,         -- the external figure, when any
    reason             VARCHAR         -- why open / unpriced / no_signal
);
INSERT INTO ledger_v6 BY NAME SELECT * FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_v6 RENAME TO ledger;
