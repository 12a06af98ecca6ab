-- OTLP spans held in the collector until their trace's root arrives (issue #15;
-- server/trace_hold.py, server/otlp_held.py). The exporter was answered success for them, so
-- they are written here in the same round as the answer is given, and deleted in the
-- transaction that stores their trace's events: a killed collector finds them on restart and
-- holds them again, and its trace is decided the same way as if it had not stopped.
CREATE TABLE otlp_held (
    trace_id  VARCHAR NOT NULL,   -- hex
    span_id   VARCHAR NOT NULL,   -- hex
    held_at   DOUBLE NOT NULL,    -- epoch seconds when the collector first held the span
    event     VARCHAR NOT NULL,   -- the mapped telemetry event, before attribution (JSON)
    tags      VARCHAR NOT NULL    -- what the span says about its trace (JSON: root, start, values)
);
