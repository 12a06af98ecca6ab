-- Runs excluded from governance (issue 4.4): written by forensics from the policy's exclusion
-- rules, read by gates and confidence. One row per excluded run, with the reason kept.
CREATE TABLE run_exclusions (
    run_id       VARCHAR PRIMARY KEY,
    rule         VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    policy_hash  VARCHAR
);
