-- Event identity without `pre` (issue #19): dedupe decides whether a key is stored from the
-- whole keys it holds in memory (store/identity_keys.py) and no longer reads event_identity
-- by a [min, max] range of event_id prefixes, so the column had no reader left. The keys are
-- unchanged: every stored event stays a duplicate.
ALTER TABLE event_identity DROP COLUMN pre;
