-- Collector (issue 6): API keys for the HTTP collector, and the spool files already ingested.

-- Keys are stored as sha256 hex of the whole key, never in clear; `prefix` (the key's first
-- characters) lets a user tell keys apart in `alphatrace keys list`. Scope: ingest | read | admin.
CREATE TABLE api_keys (
    name        VARCHAR PRIMARY KEY,
    scope       VARCHAR NOT NULL,
    key_hash    VARCHAR NOT NULL UNIQUE,
    prefix      VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT false,
    revoked_at  TIMESTAMP
);

-- One row per closed spool file ingested by `alphatrace ingest --follow` (or `serve --follow`).
-- fingerprint = sha256(name, size, mtime_ns): a restart never ingests the same file twice.
CREATE TABLE spool_files (
    fingerprint  VARCHAR PRIMARY KEY,
    name         VARCHAR NOT NULL,
    dir          VARCHAR NOT NULL,
    bytes        BIGINT NOT NULL,
    mtime_ns     BIGINT NOT NULL,
    accepted     BIGINT NOT NULL,
    duplicates   BIGINT NOT NULL,
    quarantined  BIGINT NOT NULL,
    ingested_at  TIMESTAMP NOT NULL
);
