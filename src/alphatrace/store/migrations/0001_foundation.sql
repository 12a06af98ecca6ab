-- Foundation: the three event streams, quarantine, ingested files, market data.
-- Timestamps are TIMESTAMP (microseconds, UTC by definition: every writer converts to UTC).

CREATE SEQUENCE IF NOT EXISTS file_id_seq START 1;

CREATE TABLE ingested_files (
    file_id      BIGINT PRIMARY KEY,
    path         VARCHAR NOT NULL,
    sha256       VARCHAR,
    bytes        BIGINT,
    lines        BIGINT,
    accepted     BIGINT,
    duplicates   BIGINT,
    quarantined  BIGINT,
    ingested_at  TIMESTAMP
);

CREATE TABLE telemetry (
    event_id    VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    agent       VARCHAR NOT NULL,
    ts          TIMESTAMP,
    start_ts    TIMESTAMP,
    end_ts      TIMESTAMP,
    latency_ms  DOUBLE,
    tokens_in   BIGINT,
    tokens_out  BIGINT,
    cost_usd    DOUBLE,
    errors      BIGINT,
    model       VARCHAR,
    strategy    VARCHAR,
    attrs       JSON,
    file_id     BIGINT,
    line        BIGINT
);

CREATE TABLE alpha (
    event_id     VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    agent        VARCHAR NOT NULL,
    ts           TIMESTAMP,
    symbol       VARCHAR NOT NULL,
    direction    VARCHAR NOT NULL,   -- LONG | SHORT | FLAT
    score_final  DOUBLE,
    regime       VARCHAR,
    size_usd     DOUBLE,
    horizon_s    DOUBLE,             -- parsed from "8h", "90m", "30s", "1d" or seconds
    strategy     VARCHAR,
    attrs        JSON,
    file_id      BIGINT,
    line         BIGINT
);

CREATE TABLE pnl (
    event_id          VARCHAR NOT NULL,
    run_id            VARCHAR NOT NULL,
    realized_pnl_bps  DOUBLE NOT NULL,
    ts                TIMESTAMP,
    agent             VARCHAR,
    symbol            VARCHAR,
    entry_price       DOUBLE,
    exit_price        DOUBLE,
    revision          BIGINT NOT NULL DEFAULT 0,
    strategy          VARCHAR,
    attrs             JSON,
    file_id           BIGINT,
    line              BIGINT
);

CREATE TABLE quarantine (
    file_id   BIGINT,
    path      VARCHAR,
    line      BIGINT,
    kind      VARCHAR,
    field     VARCHAR,
    reason    VARCHAR NOT NULL,
    raw       VARCHAR
);

CREATE TABLE bars (
    symbol      VARCHAR NOT NULL,
    interval_s  INTEGER NOT NULL,     -- bar length in seconds; 0 for ticks
    ts          TIMESTAMP NOT NULL,   -- bar open time
    open        DOUBLE NOT NULL,
    high        DOUBLE,
    low         DOUBLE,
    close       DOUBLE,
    volume      DOUBLE,
    PRIMARY KEY (symbol, interval_s, ts)
);

CREATE TABLE funding (
    symbol        VARCHAR NOT NULL,
    ts            TIMESTAMP NOT NULL,  -- settlement time, rounded to the hour
    funding_rate  DOUBLE NOT NULL,     -- positive: longs pay shorts
    mark_price    DOUBLE,
    PRIMARY KEY (symbol, ts)
);

CREATE TABLE symbol_aliases (
    alias   VARCHAR PRIMARY KEY,
    symbol  VARCHAR NOT NULL
);
