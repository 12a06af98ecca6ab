-- `alphatrace quarantine clear`: every clear or prune of the quarantine is recorded, with its
-- filters and how many rows it removed, so the quarantine's history stays explainable.
CREATE SEQUENCE IF NOT EXISTS quarantine_clear_seq START 1;
CREATE TABLE quarantine_clears (
    seq         BIGINT PRIMARY KEY DEFAULT nextval('quarantine_clear_seq'),
    cleared_at  TIMESTAMP NOT NULL,   -- UTC
    file        VARCHAR,              -- --file filter (NULL: every file)
    before      TIMESTAMP,            -- --before filter: rows of files ingested before this (UTC)
    rows        BIGINT NOT NULL,      -- rows removed
    paths       VARCHAR               -- JSON object: path -> rows removed
);
