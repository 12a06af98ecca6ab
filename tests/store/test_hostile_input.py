"""Input that used to stop a whole file or batch, or that later broke every report (issue #13,
items 1-7): values out of range, years past 9999, duplicate keys, a leading tab or BOM, and the
counts of a re-ingest. Expected outcomes are read off the documented field table by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alphatrace.store import Store
from alphatrace.store.encode_events import object_pairs
from alphatrace.store.ingest import ingest_events, ingest_paths

TEL = '{{"type":"telemetry","run_id":"{r}","agent":"A",{kv}}}'
ALPHA = '{{"run_id":"{r}","agent":"A","symbol":"BTC","direction":"LONG",{kv}}}'
PNL = '{{"run_id":"{r}",{kv}}}'  # a value of realized_pnl_bps itself
REV = '{{"run_id":"{r}","realized_pnl_bps":1,{kv}}}'


def ingest_text(store: Store, tmp_path: Path, lines: list[str]) -> dict[int, tuple[str | None, str]]:
    """Ingest the lines as one file; {line: (field, reason)} of what went to quarantine."""
    f = tmp_path / "in.jsonl"
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    ingest_paths(store, [str(f)])
    return {ln: (fld, reason) for ln, fld, reason in store.con.execute(
        "SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()}


def stored_runs(store: Store) -> set[str]:
    return {r for (r,) in store.con.execute(
        "SELECT run_id FROM telemetry UNION ALL SELECT run_id FROM alpha "
        "UNION ALL SELECT run_id FROM pnl").fetchall()}


# (template, field, value as JSON text, accepted?) — the limits of README's field table.
CASES = [
    (TEL, "tokens_in", "9223372036854775808", False),  # 2^63: the BIGINT cast failed the file
    (TEL, "tokens_in", "18446744073709551616", False),  # 2^64
    (TEL, "tokens_out", "9223372036854775807", False),
    (TEL, "errors", "9223372036854775808", False),
    (REV, "revision", "9223372036854775808", False),
    (TEL, "tokens_in", "1000000000000", True),  # 1e12: the documented maximum
    (TEL, "tokens_in", "1000000000001", False),
    (TEL, "errors", "1000000000", True),
    (TEL, "errors", "1000000001", False),
    (TEL, "latency_ms", "10000000000", True),
    (TEL, "latency_ms", "1.00000001e10", False),
    (TEL, "cost_usd", "1e9", True),
    (TEL, "cost_usd", "1.5e9", False),
    (PNL, "realized_pnl_bps", "1.7e308", False),  # its sum overflowed: no gate decided
    (PNL, "realized_pnl_bps", "-1.7e308", False),
    (PNL, "realized_pnl_bps", "10000000", True),
    (PNL, "realized_pnl_bps", "-10000000", True),
    (PNL, "realized_pnl_bps", "10000000.5", False),
    (REV, "revision", "9007199254740991", True),  # 2^53 - 1
    (REV, "revision", "9007199254740992", False),
    (ALPHA, "score_final", "1e12", True),
    (ALPHA, "score_final", "-1.0000001e12", False),
    (ALPHA, "size_usd", "1e13", True),
    (ALPHA, "size_usd", "2e13", False),
    (ALPHA, "horizon", '"3650d"', True),  # ten years
    (ALPHA, "horizon", '"3651d"', False),
    (ALPHA, "horizon", "315360001", False),
    (ALPHA, "ts", '"10000-01-01T00:00:00Z"', False),  # read back as a year DuckDB holds
    (ALPHA, "ts", '"9999-12-31T00:00:00-14:00"', False),  # past 9999 once in UTC
    (ALPHA, "ts", '"2249-12-31T23:59:59Z"', True),
    (ALPHA, "ts", '"2250-01-01T00:00:00Z"', False),
    (ALPHA, "ts", '"1970-01-01T00:00:00Z"', True),
    (ALPHA, "ts", '"1969-12-31T23:59:59Z"', False),
    (ALPHA, "ts", "-1", False),  # epoch seconds before 1970
    (ALPHA, "ts", "9000000000000", False),  # epoch ms: year 2255
    (ALPHA, "ts", "8000000000000", True),  # epoch ms: year 2223
    (TEL, "start_ts", '"10000-01-01T00:00:00Z"', False),
]


def test_each_value_is_judged_alone_and_the_rest_of_the_file_is_kept(
    store: Store, tmp_path: Path
) -> None:
    lines = [t.format(r=f"r{i}", kv=f'"{fld}":{val}') for i, (t, fld, val, _) in enumerate(CASES)]
    bad = ingest_text(store, tmp_path, lines)
    expect_bad = {i + 1: fld for i, (_, fld, _, ok) in enumerate(CASES) if not ok}
    assert {ln: fld for ln, (fld, _) in bad.items()} == expect_bad
    assert stored_runs(store) == {f"r{i}" for i, c in enumerate(CASES) if c[3]}
    for ln, (_, reason) in bad.items():
        val = CASES[ln - 1][2]
        assert "range" in reason or "must be >" in reason, reason
        got = reason.rsplit("(got ", 1)[1][:-1]  # the value is quoted back (as JSON reads it)
        assert got == val if val.startswith('"') else float(got) == float(val), reason


def test_out_of_range_reasons_name_the_bound(store: Store, tmp_path: Path) -> None:
    bad = ingest_text(store, tmp_path, [
        TEL.format(r="a", kv='"tokens_in":9223372036854775808'),
        ALPHA.format(r="b", kv='"ts":"10000-01-01T00:00:00Z"'),
        TEL.format(r="c", kv='"tokens_in":-5'),
        ALPHA.format(r="d", kv='"size_usd":0'),
    ])
    assert bad == {
        1: ("tokens_in", "out of range: must be <= 1e12 (got 9223372036854775808)"),
        2: ("ts", 'out of range: must be from 1970-01-01 to before 2250-01-01 '
                  '(got "10000-01-01T00:00:00Z")'),
        3: ("tokens_in", "must be >= 0 (got -5)"),
        4: ("size_usd", "must be > 0 (got 0)"),
    }


def test_in_memory_batches_keep_their_valid_events(store: Store) -> None:
    """The HTTP collector and the SDK's direct sink: one event per status, nothing raised."""
    events = [
        {"run_id": "ok1", "agent": "A", "tokens_in": 10},
        {"run_id": "big", "agent": "A", "tokens_in": 2**63},
        {"run_id": "huge", "realized_pnl_bps": 1.7e308},
        {"run_id": "far", "agent": "A", "symbol": "BTC", "direction": "LONG",
         "ts": "10000-01-01T00:00:00Z"},
        {"run_id": "ok2", "realized_pnl_bps": 3.0},
    ]
    report, results = ingest_events(store, events, source="<http>")
    assert [r.status for r in results] == ["accepted", "rejected", "rejected", "rejected", "accepted"]
    assert [r.field for r in results] == [None, "tokens_in", "realized_pnl_bps", "ts", None]
    assert (report.accepted, report.quarantined) == (2, 3)
    assert stored_runs(store) == {"ok1", "ok2"}


def test_leading_whitespace_and_a_bom_are_json(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "win.jsonl"
    body = ('{"run_id":"bom","agent":"A","errors":0}\n'
            '\t{"run_id":"tab","agent":"A","errors":0}\n'
            ' \t {"run_id":"mixed","agent":"A","errors":0}\n')
    f.write_bytes(b"\xef\xbb\xbf" + body.encode())
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.quarantined) == (3, 0)
    assert stored_runs(store) == {"bom", "tab", "mixed"}
    assert store.con.execute("SELECT line FROM telemetry ORDER BY line").fetchall() == [
        (1,), (2,), (3,)]


DUPLICATE = '{"run_id":"A","agent":"X","latency_ms":5,"run_id":"B"}'


def test_a_duplicated_key_is_quarantined_on_every_path(store: Store, tmp_path: Path) -> None:
    # File ingest: DuckDB alone would keep "A".
    bad = ingest_text(store, tmp_path, [DUPLICATE, '{"run_id":"C","agent":"X","errors":0,"m":1,"m":2}',
                                        '{"run_id":"D","agent":"X","latency_ms":5}'])
    assert bad == {1: ("run_id", "duplicate key run_id"), 2: ("m", "duplicate key m")}
    assert stored_runs(store) == {"D"}
    # HTTP: the body parser would keep "B"; the collector parses with `object_pairs`.
    events = json.loads(f"[{DUPLICATE}]", object_pairs_hook=object_pairs)
    _, results = ingest_events(store, events, source="<http>")
    assert [(r.status, r.field, r.reason) for r in results] == [
        ("rejected", "run_id", "duplicate key run_id")]
    assert stored_runs(store) == {"D"}


@pytest.mark.parametrize("line", [
    '{"run_id":"r","agent":"A","latency_ms":1,"extra":{"k":1,"k":2}}',  # nested: not the event's key
    '{"run_id":"r","agent":"A","latency_ms":1,"model":"m"}',
])
def test_keys_seen_once_are_not_duplicates(store: Store, tmp_path: Path, line: str) -> None:
    assert ingest_text(store, tmp_path, [line]) == {}
    assert stored_runs(store) == {"r"}


@pytest.mark.parametrize("value", ["-Infinity", "Infinity", "NaN", "-1e400"])
def test_a_non_finite_run_id_is_not_an_id(store: Store, tmp_path: Path, value: str) -> None:
    # Found by the fuzz test: the fast path read `-Infinity` as the text id "-Infinity".
    bad = ingest_text(store, tmp_path, [f'{{"run_id":{value},"agent":"A","latency_ms":1}}'])
    assert bad == {1: ("run_id", "must be a string or an integer (got number)")}
