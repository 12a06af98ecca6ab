-- Governance: an anchorable decision log (docs/governance.md, "Decision log" and "Anchors").
-- * Record hashes v2 also cover seq, created_at, actor and hash_version. Rows written before this
--   migration keep hash_version NULL (v1) until the next write re-chains them, itself recorded
--   as an `action = 'rechain'` record (alphatrace.governance.upgrade).
-- * `actor`: who wrote a manual record (a revive's operator, the user who re-chained).
-- * The lifecycle is derived from the chain: the editable cache table becomes a view.
-- * `signed_heads`: Ed25519 signatures over (seq, hash) of the chain head; the key is never here.

ALTER TABLE decisions ADD COLUMN actor VARCHAR;
ALTER TABLE decisions ADD COLUMN hash_version INTEGER;

DROP TABLE lifecycle;

-- Each subject's state after its newest record, and the first seq of the run of records that
-- left it in that state (the decision that put it there).
CREATE VIEW lifecycle AS
WITH r AS (
    SELECT scope, subject, state, seq FROM decisions WHERE scope IN ('agent', 'strategy')
), f AS (
    SELECT scope, subject, arg_max(state, seq) AS state FROM r GROUP BY scope, subject
), b AS (
    SELECT f.scope, f.subject, f.state,
           coalesce(max(r.seq) FILTER (WHERE r.state <> f.state), 0) AS before_seq
    FROM f JOIN r ON r.scope = f.scope AND r.subject = f.subject
    GROUP BY f.scope, f.subject, f.state
)
SELECT b.scope, b.subject, b.state, min(r.seq) AS since_seq
FROM b JOIN r ON r.scope = b.scope AND r.subject = b.subject AND r.seq > b.before_seq
GROUP BY b.scope, b.subject, b.state;

CREATE TABLE signed_heads (
    seq        BIGINT NOT NULL,        -- the head signed: the chain's last seq ...
    hash       VARCHAR NOT NULL,       -- ... and that record's hash
    signed_at  TIMESTAMP NOT NULL,     -- wall clock of the signing (inside the signed statement)
    key_id     VARCHAR NOT NULL,       -- sha256 of the raw Ed25519 public key, first 16 hex
    signature  VARCHAR NOT NULL        -- base64 Ed25519 signature of the canonical statement
);
