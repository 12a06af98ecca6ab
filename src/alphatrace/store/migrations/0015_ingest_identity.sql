-- Ingest identity (issue #19): every stored event's identity as a fixed-width key, so dedupe
-- probes 16-byte integers instead of scanning the event tables' event_id text.
--   key_hi, key_lo = the two halves of md5_number(kind || chr(31) || event_id): 128 bits,
--          stable across DuckDB versions (md5 is a fixed function; DuckDB's own hash() is not,
--          and an upgrade that changed it would make every stored event new again). Two
--          UBIGINTs, not one UHUGEINT: Arrow has no unsigned 128-bit type;
--   pre  = the first 8 characters of event_id: time-ordered ids (the SDK's UUIDv7 run ids)
--          keep their order here, so a round's [min, max] skips old row groups by zone map.
-- A row is written in the same transaction as its event (store/ingest.py), so the two never
-- disagree after a crash. Events already stored keep their event_id, and are keyed here from
-- it: an event ingested before this migration is a duplicate when it comes again.
CREATE TABLE event_identity (
    pre     VARCHAR NOT NULL,
    key_hi  UBIGINT NOT NULL,
    key_lo  UBIGINT NOT NULL
);
INSERT INTO event_identity
SELECT left(event_id, 8), (k >> 64)::UBIGINT, (k & 18446744073709551615::UHUGEINT)::UBIGINT
FROM (SELECT event_id, md5_number('telemetry' || chr(31) || event_id) AS k FROM telemetry
      UNION ALL
      SELECT event_id, md5_number('alpha' || chr(31) || event_id) FROM alpha
      UNION ALL
      SELECT event_id, md5_number('pnl' || chr(31) || event_id) FROM pnl);
