-- Market data provenance (issue 2.5): one row per imported market file, so a bar or a
-- quarantined row can be traced to the file (and import) it came from.
CREATE TABLE market_files (
    file_id      BIGINT PRIMARY KEY,   -- from file_id_seq, shared with ingested_files/quarantine
    path         VARCHAR NOT NULL,
    format       VARCHAR NOT NULL,     -- bars | ticks | funding | binance_klines | binance_funding
    rows         BIGINT,               -- data rows read
    new_rows     BIGINT,               -- keys the store did not have
    updated      BIGINT,               -- keys it had, with different values (replaced)
    unchanged    BIGINT,               -- rows already stored identically or repeated in the file
    quarantined  BIGINT,
    lines_exact  BOOLEAN,              -- false: CSV line numbers are row ordinals (see docs)
    symbols      VARCHAR,              -- comma-joined, sorted
    imported_at  TIMESTAMP
);
