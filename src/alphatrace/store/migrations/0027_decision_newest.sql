-- Each subject's newest record, by seq (issue #14): its seq, action and as_of, which the live
-- pass reads up to three times (where a catch-up resumes, and the as_of-order rule checked
-- before and when appending, governance/journal.py `newest_times`); a grouped max over the
-- whole decision log costs what the log is long, this what the subjects are. `journal.write`,
-- the one place that appends, keeps it in the same transaction; a log whose newest seq is not
-- this table's (written by other means) is read in full instead. Every scope is kept, the
-- chain's too, so the newest seq of the log is the newest here.
CREATE TABLE decision_newest (
    scope    VARCHAR NOT NULL,
    subject  VARCHAR NOT NULL,
    seq      BIGINT NOT NULL,     -- decisions.seq of the subject's newest record
    action   VARCHAR NOT NULL,
    as_of    TIMESTAMP,
    PRIMARY KEY (scope, subject)
);

INSERT INTO decision_newest
SELECT scope, subject, seq, action, as_of FROM decisions
QUALIFY row_number() OVER (PARTITION BY scope, subject ORDER BY seq DESC) = 1
ORDER BY scope, subject;
