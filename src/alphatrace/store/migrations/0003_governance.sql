-- Governance (docs/architecture.md §Governance): the decision log (a SHA-256 hash chain), subject lifecycle, and
-- the policies decisions were made under (so an audit can replay them).
-- `seq` is deliberately not a key: the chain order is carried by prev_hash, and an audit must
-- be able to see (and name) rows whose seq was swapped or duplicated.

CREATE TABLE decisions (
    seq           BIGINT NOT NULL,     -- position in the chain, 1 = oldest
    eval_id       BIGINT NOT NULL,     -- one `gates evaluate` (or one revive)
    subject       VARCHAR NOT NULL,
    scope         VARCHAR NOT NULL,    -- agent | strategy
    action        VARCHAR NOT NULL,    -- promote | kill | hold | inconclusive | revive
    rule          VARCHAR,             -- the rule that decided the action; 'cascade' for cascades
    fired         VARCHAR NOT NULL,    -- canonical JSON list: every rule that matched
    blocked       BOOLEAN NOT NULL,    -- a promotion refused because the subject is killed
    state         VARCHAR NOT NULL,    -- lifecycle state after this record
    cascade_from  VARCHAR,             -- the killed strategy an agent's kill came from
    reason        VARCHAR,             -- revive: the operator's reason
    policy_hash   VARCHAR,
    as_of         TIMESTAMP,
    metrics       VARCHAR NOT NULL,    -- canonical JSON object of metric values
    run_ids       VARCHAR NOT NULL,    -- canonical JSON list, ordered (ts, run_id)
    prev_hash     VARCHAR NOT NULL,
    hash          VARCHAR NOT NULL,    -- sha256(canonical JSON of the fields above + prev_hash)
    created_at    TIMESTAMP            -- wall clock, informational, not hashed
);

CREATE TABLE lifecycle (
    scope      VARCHAR NOT NULL,
    subject    VARCHAR NOT NULL,
    state      VARCHAR NOT NULL,       -- candidate | promoted | killed
    since_seq  BIGINT NOT NULL,        -- the decision that put it in this state
    PRIMARY KEY (scope, subject)
);

CREATE TABLE governance_policies (
    policy_hash  VARCHAR PRIMARY KEY,  -- sha256 of body
    body         VARCHAR NOT NULL      -- canonical JSON of the normalised gates + eligibility
);

CREATE TABLE decision_head (
    id       INTEGER PRIMARY KEY,      -- always 1
    seq      BIGINT NOT NULL,          -- the last record's seq and hash: truncation shows here
    hash     VARCHAR NOT NULL
);
