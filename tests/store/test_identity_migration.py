"""Migrations 0015 and 0021 (issue #19): stores written before them keep their identities.

The old rows are written the way the old code wrote them, with their event_id computed here
independently (hashlib's md5 of the normalised values joined by chr(31), as the old identity
was), into a store without the identity table; after the migration the same events ingested
again are duplicates, and new events are still accepted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from alphatrace.store import Store
from alphatrace.store.connection import table_columns
from alphatrace.store.ingest import ingest_events, ingest_paths

SEP = "\x1f"


def old_id(*values: str) -> str:
    """The pre-0015 identity of an event without event_id: md5 hex of kind and values."""
    return hashlib.md5(SEP.join(values).encode()).hexdigest()


# (table, columns, row, the same event as JSON). Values as the old identity spelled them: the
# kind, then every field of the kind in field-table order ('' when absent), then attrs.
PNL = {"run_id": "r1", "realized_pnl_bps": -12.5}
PNL_ID = old_id("pnl", "r1", "", "", "-12.5", "", "", "", "", "", "")
TEL = {"run_id": "r2", "agent": "A", "ts": 1709294400, "tokens_in": 1830, "model": "gpt-4o",
       "prompt": "v7"}
TEL_ID = old_id("telemetry", "r2", "2024-03-01 12:00:00", "", "A", "", "1830.0", "", "", "",
                "gpt-4o", "", "", '{"prompt":"v7"}')
ALPHA = {"type": "signal", "run_id": "r3", "agent": "A", "symbol": "BTC", "direction": "long",
         "horizon": "8h", "ts": "2024-03-01T12:00:01Z"}
ALPHA_ID = old_id("alpha", "r3", "2024-03-01 12:00:01", "", "A", "BTC", "LONG", "", "", "",
                  "28800.0", "")
GIVEN = {"type": "pnl", "event_id": "sdk-run:3", "run_id": "r4", "realized_pnl_bps": 4.0,
         "revision": 1}


def _old_store(db: Path) -> None:
    """A store as the old code left it: events stored, no identity table, migration 15 not run."""
    with Store(db) as s:
        con = s.con
        con.execute("DROP TABLE event_identity")
        con.execute("DELETE FROM schema_migrations WHERE version IN (15, 21)")
        con.execute("INSERT INTO pnl (event_id, run_id, realized_pnl_bps, revision) "
                    "VALUES (?, 'r1', -12.5, 0), ('sdk-run:3', 'r4', 4.0, 1)", [PNL_ID])
        con.execute("INSERT INTO telemetry (event_id, run_id, agent, ts, tokens_in, model, attrs) "
                    "VALUES (?, 'r2', 'A', TIMESTAMP '2024-03-01 12:00:00', 1830, 'gpt-4o', "
                    "'{\"prompt\":\"v7\"}')", [TEL_ID])
        con.execute("INSERT INTO alpha (event_id, run_id, agent, ts, symbol, direction, horizon_s) "
                    "VALUES (?, 'r3', 'A', TIMESTAMP '2024-03-01 12:00:01', 'BTC', 'LONG', 28800)",
                    [ALPHA_ID])


def test_identities_are_what_the_old_code_computed(store: Store) -> None:
    """The event_id of an event without one is unchanged: the independent md5 above."""
    _, res = ingest_events(store, [PNL, TEL, ALPHA, GIVEN])
    assert [(r.status, r.event_id) for r in res] == [
        ("accepted", PNL_ID), ("accepted", TEL_ID), ("accepted", ALPHA_ID),
        ("accepted", "sdk-run:3")]


def test_old_events_stay_duplicates_after_the_migration(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    _old_store(db)
    with Store(db) as s:  # opening migrates: 0015 keys every stored event, 0021 drops `pre`
        assert s.con.execute("SELECT count(*) FROM event_identity").fetchall()[0][0] == 4
        assert table_columns(s.con, "event_identity") == ["key_hi", "key_lo"]
        report, res = ingest_events(s, [PNL, TEL, ALPHA, GIVEN])
        assert (report.accepted, report.duplicates) == (0, 4)
        assert [r.event_id for r in res] == [PNL_ID, TEL_ID, ALPHA_ID, "sdk-run:3"]
        f = tmp_path / "again.jsonl"
        f.write_text("".join(json.dumps(e) + "\n" for e in (PNL, TEL, ALPHA, GIVEN)))
        again = ingest_paths(s, [str(f)])
        assert (again.accepted, again.duplicates) == (0, 4)
        new = ingest_events(s, [{**PNL, "realized_pnl_bps": -12.0}, {**GIVEN, "event_id": "x"}])[0]
        assert (new.accepted, new.duplicates) == (2, 0)
        counts = s.con.execute(
            "SELECT (SELECT count(*) FROM pnl), (SELECT count(*) FROM telemetry), "
            "(SELECT count(*) FROM alpha), (SELECT count(*) FROM event_identity)").fetchall()[0]
        assert counts == (4, 1, 1, 6)


def _key(kind: str, event_id: str) -> tuple[int, int]:
    """The identity key's halves, computed here: DuckDB's md5_number reads the digest
    little-endian."""
    k = int.from_bytes(hashlib.md5(f"{kind}{SEP}{event_id}".encode()).digest(), "little")
    return k >> 64, k & (2**64 - 1)


def test_0021_drops_pre_and_keeps_every_key(tmp_path: Path) -> None:
    """A store as 0015 to 0020 left it (`pre` first, rows written with their prefix): after
    0021 the table holds the same keys without `pre`, and the same events are duplicates."""
    db = tmp_path / "v20.duckdb"
    with Store(db) as s:
        ingest_events(s, [PNL, TEL, ALPHA, GIVEN])
        s.con.execute("DROP TABLE event_identity")
        s.con.execute("CREATE TABLE event_identity (pre VARCHAR NOT NULL, key_hi UBIGINT NOT NULL, "
                      "key_lo UBIGINT NOT NULL)")
        for kind, eid in (("pnl", PNL_ID), ("telemetry", TEL_ID), ("alpha", ALPHA_ID),
                          ("pnl", "sdk-run:3")):
            s.con.execute("INSERT INTO event_identity VALUES (?, ?, ?)", [eid[:8], *_key(kind, eid)])
        s.con.execute("DELETE FROM schema_migrations WHERE version = 21")
    stored = [_key("pnl", PNL_ID), _key("telemetry", TEL_ID), _key("alpha", ALPHA_ID),
              _key("pnl", "sdk-run:3")]
    with Store(db) as s:
        assert table_columns(s.con, "event_identity") == ["key_hi", "key_lo"]
        keys = "SELECT key_hi, key_lo FROM event_identity"
        assert sorted(s.con.execute(keys).fetchall()) == sorted(stored)
        report = ingest_events(s, [PNL, TEL, ALPHA, GIVEN, {**GIVEN, "event_id": "y"}])[0]
        assert (report.accepted, report.duplicates) == (1, 4)
        assert sorted(s.con.execute(keys).fetchall()) == sorted([*stored, _key("pnl", "y")])
