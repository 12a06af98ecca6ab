-- Ledger (docs/architecture.md §Ledger): one row per run, rebuilt by `alphatrace reconcile`.
-- Extra columns beyond §5: model, size_usd, net_bps, execution_gap_bps, policy_hash.

CREATE TABLE ledger (
    run_id             VARCHAR PRIMARY KEY,
    agent              VARCHAR,
    strategy           VARCHAR,
    ts                 TIMESTAMP,      -- the run's first alpha event, else its first telemetry/pnl
    symbols            VARCHAR,        -- resolved market symbols of the legs, sorted, comma-joined
    direction          VARCHAR,        -- LONG | SHORT | FLAT | MIXED (legs disagree)
    score_final        DOUBLE,
    regime             VARCHAR,
    latency_ms         DOUBLE,
    tokens_in          BIGINT,
    tokens_out         BIGINT,
    cost_usd           DOUBLE,
    errors             BIGINT,
    model              VARCHAR,
    entry_price        DOUBLE,         -- single-leg runs only; NULL for multi-leg
    exit_price         DOUBLE,
    gross_bps          DOUBLE,         -- price move in the trade's favour, before fees
    fee_bps            DOUBLE,         -- fees as a (negative) bps contribution
    funding_bps        DOUBLE,
    paper_pnl_bps      DOUBLE,         -- reconciled: gross + fee + funding
    realized_pnl_bps   DOUBLE,         -- external when present, else paper
    pnl_source         VARCHAR,        -- external | reconciled | NULL
    size_usd           DOUBLE,
    pnl_usd            DOUBLE,
    net_usd            DOUBLE,         -- pnl_usd - cost_usd
    net_bps            DOUBLE,         -- realized_pnl_bps - cost_usd / size_usd * 1e4
    execution_gap_bps  DOUBLE,         -- external - paper, when both exist
    status             VARCHAR,        -- realized | open | unpriced | no_signal
    policy_hash        VARCHAR
);
