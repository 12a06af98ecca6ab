-- Notifications (docs/governance.md §Notifications): a transactional outbox. The transaction
-- that appends decision records also inserts one pending delivery per matching target, so a
-- delivery is never lost between the commit and the send, and survives a restart or kill -9.
-- Secrets are never stored: only the names of the environment variables that hold them.

-- The `notify` section of the policy that last appended decisions (one row): revives, which
-- run without a policy, notify its targets.
CREATE TABLE notify_config (
    section     VARCHAR NOT NULL,     -- the section as JSON (env variable names, never secrets)
    updated_at  TIMESTAMP NOT NULL    -- UTC
);

CREATE SEQUENCE IF NOT EXISTS notify_delivery_seq START 1;
CREATE TABLE notify_deliveries (
    id              BIGINT NOT NULL DEFAULT nextval('notify_delivery_seq'),  -- X-Alphatrace-Delivery
    target          VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    url             VARCHAR,
    url_env         VARCHAR,
    secret_env      VARCHAR,
    record_seq      BIGINT NOT NULL,  -- decisions.seq
    record_hash     VARCHAR NOT NULL, -- decisions.hash: the Idempotency-Key
    payload         VARCHAR NOT NULL, -- the exact body sent (JSON)
    status          VARCHAR NOT NULL, -- pending | delivered | expired
    attempts        INTEGER NOT NULL,
    created_at      TIMESTAMP NOT NULL,  -- UTC, the append's commit time (about)
    next_attempt_at TIMESTAMP NOT NULL,  -- UTC
    expires_at      TIMESTAMP NOT NULL,  -- UTC: created_at + the retry horizon
    retry_initial_s DOUBLE NOT NULL,     -- backoff of the first retry
    retry_max_s     DOUBLE NOT NULL,     -- longest backoff
    last_status     INTEGER,             -- HTTP status of the last attempt (NULL: no response)
    last_error      VARCHAR,
    delivered_at    TIMESTAMP            -- UTC
);

-- Every attempt, for `alphatrace notify log`.
CREATE TABLE notify_attempts (
    delivery_id BIGINT NOT NULL,
    attempt     INTEGER NOT NULL,     -- 1, 2, ...
    sent_at     TIMESTAMP NOT NULL,   -- UTC, when the request was sent
    status_code INTEGER,              -- NULL: no response (refused, timeout)
    error       VARCHAR,
    duration_ms DOUBLE
);
