"""Ingest behaviour: seed shapes, quarantine reasons, idempotency, transactions, inputs."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from alphatrace.errors import InputError
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events, ingest_paths, iter_quarantine

SEED_TELEMETRY = {"run_id": "r1", "agent": "CryptoFundingRateAgent", "latency_ms": 812,
                  "tokens_in": 1830, "tokens_out": 421, "cost_usd": 0.0123, "errors": 0}
SEED_ALPHA = {"run_id": "r1", "agent": "CryptoFundingRateAgent", "symbol": "BTC",
              "direction": "SHORT", "score_final": -1.42, "regime": "MEAN_REVERT"}
SEED_PNL = {"run_id": "r1", "realized_pnl_bps": -12.5}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def rows(store: Store, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    return store.con.execute(sql).fetchall()


def test_seed_shapes_ingest_as_is(store: Store, tmp_path: Path) -> None:
    f = write_lines(tmp_path / "seed.jsonl", [json.dumps(e) for e in (SEED_TELEMETRY, SEED_ALPHA, SEED_PNL)])
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.duplicates, r.quarantined, r.files) == (3, 0, 0, 1)
    assert rows(store, "SELECT run_id, agent, latency_ms, tokens_in, tokens_out, cost_usd, errors FROM telemetry") == [
        ("r1", "CryptoFundingRateAgent", 812.0, 1830, 421, 0.0123, 0)]
    assert rows(store, "SELECT run_id, symbol, direction, score_final, regime, ts FROM alpha") == [
        ("r1", "BTC", "SHORT", -1.42, "MEAN_REVERT", None)]
    assert rows(store, "SELECT run_id, realized_pnl_bps, revision FROM pnl") == [("r1", -12.5, 0)]


BAD_LINES = [
    ("not json at all", None, "not valid JSON"),
    ('["an", "array"]', None, "not a JSON object"),
    ('{"run_id": "x", "agent": "A", "symbol": "BTC"}', "direction", None),  # shape: no marker
    ('{"type": "alpha", "run_id": "x", "agent": "A", "symbol": "BTC"}', "direction", "missing required field"),
    ('{"run_id": "x", "agent": "A", "symbol": "BTC", "direction": "UP"}', "direction", "unknown direction"),
    ('{"run_id": "x", "agent": "A", "tokens_in": -5}', "tokens_in", "must be >= 0"),
    ('{"run_id": "x", "agent": "A", "latency_ms": NaN}', "latency_ms", "must be finite"),
    ('{"run_id": "x", "agent": "A", "cost_usd": Infinity}', "cost_usd", "must be finite"),
    ('{"run_id": "x", "realized_pnl_bps": "12"}', "realized_pnl_bps", "must be a number (got string)"),
    ('{"run_id": "x", "agent": "A", "tokens_out": 1.5}', "tokens_out", "must be a whole number"),
    ('{"run_id": 1.5, "realized_pnl_bps": 1}', "run_id", "must be a string or an integer"),
    ('{"agent": "A", "latency_ms": 5}', "run_id", "missing required field"),
    ('{"run_id": "x", "agent": "A", "symbol": "BTC", "direction": "LONG", "ts": "yesterday"}', "ts", "cannot parse timestamp"),
    ('{"type": "bogus", "run_id": "x"}', "type", "unknown type"),
    ('{"run_id": "x", "agent": ["A"], "latency_ms": 5}', "agent", "must be a string (got array)"),
    ('{"run_id": "x", "agent": "A", "symbol": "BTC", "direction": "LONG", "size_usd": 0}', "size_usd", "must be > 0"),
    ('{"run_id": "x", "agent": "A", "symbol": "BTC", "direction": "LONG", "horizon": "soon"}', "horizon", "cannot parse horizon"),
    ('{"run_id": "", "realized_pnl_bps": 1}', "run_id", "must not be empty"),
]


def test_bad_lines_quarantined_with_field_and_reason_good_lines_kept(store: Store, tmp_path: Path) -> None:
    good = [json.dumps({**SEED_ALPHA, "run_id": f"g{i}"}) for i in range(len(BAD_LINES) + 1)]
    lines: list[str] = []
    for i, (bad, _, _) in enumerate(BAD_LINES):
        lines += [good[i], bad]
    lines.append(good[-1])
    f = write_lines(tmp_path / "mixed.jsonl", lines)
    r = ingest_paths(store, [str(f)])
    assert r.accepted == len(good)
    assert r.quarantined == len(BAD_LINES)
    assert rows(store, "SELECT count(*) FROM alpha")[0][0] == len(good)
    q = list(iter_quarantine(store))
    assert [x["line"] for x in q] == [2 * i + 2 for i in range(len(BAD_LINES))]
    for rec, (raw, field, reason) in zip(q, BAD_LINES, strict=True):
        assert rec["path"] == str(f)
        assert rec["raw"] == raw
        if field == "direction" and reason is None:
            assert rec["field"] == "type" and "cannot tell the event kind" in rec["reason"]
            continue
        assert rec["field"] == field, rec
        assert reason is not None and reason in rec["reason"], rec


def test_reingest_reports_everything_as_duplicates(store: Store, tmp_path: Path) -> None:
    lines = [json.dumps({**SEED_TELEMETRY, "run_id": f"r{i}"}) for i in range(50)] + ["garbage"]
    f = write_lines(tmp_path / "a.jsonl", lines)
    first = ingest_paths(store, [str(f)])
    second = ingest_paths(store, [str(f)])
    assert (first.accepted, first.duplicates, first.quarantined) == (50, 0, 1)
    # The report says what this call did: the bad line was quarantined by the first call, so
    # it is a duplicate now, like the 50 stored events (issue #13 item 7).
    assert (second.accepted, second.duplicates, second.quarantined) == (0, 51, 0)
    assert rows(store, "SELECT count(*) FROM telemetry")[0][0] == 50
    assert rows(store, "SELECT count(*) FROM quarantine")[0][0] == 1  # not recorded twice


def test_identity_ignores_whitespace_key_order_case_and_time_spelling(store: Store) -> None:
    a = {"run_id": "r", "agent": "A", "symbol": "BTC", "direction": "long", "ts": "2024-03-01T12:00:00Z"}
    b = {"ts": 1709294400, "direction": "LONG", "symbol": "BTC", "agent": "A", "run_id": "r"}
    c = {"ts": 1709294400000, "direction": " Long ", "symbol": "BTC", "agent": "A", "run_id": "r"}
    _, res = ingest_events(store, [a, b, c])
    assert [x.status for x in res] == ["accepted", "duplicate", "duplicate"]
    assert len({x.event_id for x in res}) == 1


def test_event_id_is_identity_when_given(store: Store) -> None:
    e1 = {**SEED_PNL, "event_id": "e-1"}
    e2 = {**SEED_PNL, "event_id": "e-1", "realized_pnl_bps": 99}  # same id: a retry, not new data
    e3 = {**SEED_PNL, "event_id": "e-2"}
    _, res = ingest_events(store, [e1, e2, e3])
    assert [x.status for x in res] == ["accepted", "duplicate", "accepted"]
    assert rows(store, "SELECT event_id, realized_pnl_bps FROM pnl ORDER BY event_id") == [
        ("e-1", -12.5), ("e-2", -12.5)]


def test_attrs_keep_unknown_fields(store: Store) -> None:
    ingest_events(store, [{**SEED_ALPHA, "prompt_version": "v7", "features": {"funding_z": 2.1}}])
    (attrs,) = rows(store, "SELECT attrs FROM alpha")[0]
    assert json.loads(attrs) == {"prompt_version": "v7", "features": {"funding_z": 2.1}}


def test_kind_from_flag_type_and_shape(store: Store, tmp_path: Path) -> None:
    f = write_lines(tmp_path / "k.jsonl", [json.dumps({"run_id": "r9", "agent": "A"})])
    r = ingest_paths(store, [str(f)], kind="telemetry")  # no marker: only --kind can tell
    assert r.accepted == 1 and rows(store, "SELECT run_id FROM telemetry") == [("r9",)]
    _, res = ingest_events(store, [{"type": "PnL", "run_id": "r9", "realized_pnl_bps": 3}])
    assert res[0].kind == "pnl"
    with pytest.raises(InputError, match="--kind"):
        ingest_paths(store, [str(f)], kind="trades")


def test_timestamps(store: Store) -> None:
    evs = [
        {**SEED_ALPHA, "run_id": "iso_z", "ts": "2024-03-01T12:00:00Z"},
        {**SEED_ALPHA, "run_id": "iso_off", "ts": "2024-03-01T14:00:00+02:00"},
        {**SEED_ALPHA, "run_id": "naive", "ts": "2024-03-01 12:00:00"},
        {**SEED_ALPHA, "run_id": "sec", "ts": 1709294400},
        {**SEED_ALPHA, "run_id": "ms", "ts": 1709294400000},
        {**SEED_ALPHA, "run_id": "frac", "ts": 1709294400.25},
    ]
    ingest_events(store, evs)
    got = dict(rows(store, "SELECT run_id, epoch_us(ts) FROM alpha"))
    base = 1709294400 * 1_000_000
    assert got == {"iso_z": base, "iso_off": base, "naive": base, "sec": base, "ms": base,
                   "frac": base + 250_000}


def test_horizon_units(store: Store) -> None:
    evs = [{**SEED_ALPHA, "run_id": f"h{i}", "horizon": h} for i, h in
           enumerate(["8h", "90m", "30s", "2d", "1w", 3600, "45"])]
    ingest_events(store, evs)
    got = [r[0] for r in rows(store, "SELECT horizon_s FROM alpha ORDER BY run_id")]
    assert got == [8 * 3600, 90 * 60, 30, 2 * 86400, 7 * 86400, 3600, 45]


def test_gzip_folder_and_stdin(store: Store, tmp_path: Path) -> None:
    d = tmp_path / "spool"
    (d / "sub").mkdir(parents=True)
    with gzip.open(d / "sub" / "a.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(SEED_TELEMETRY) + "\n")
    write_lines(d / "b.jsonl", [json.dumps(SEED_ALPHA)])
    (d / "ignored.txt").write_text("not events")
    r = ingest_paths(store, [str(d)])
    assert (r.accepted, r.files) == (2, 2)
    r2 = ingest_paths(store, ["-"], stdin=io.BytesIO((json.dumps(SEED_PNL) + "\n").encode()))
    assert r2.accepted == 1


def test_blank_lines_and_crlf_keep_line_numbers(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "crlf.jsonl"
    f.write_bytes(b'{"run_id":"a","realized_pnl_bps":1}\r\n\r\n   \nbad\r\n{"run_id":"b","realized_pnl_bps":2}')
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.quarantined) == (2, 1)
    (q,) = list(iter_quarantine(store))
    assert (q["line"], q["raw"]) == (4, "bad")


def test_invalid_utf8_line_is_quarantined_rest_kept(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "u.jsonl"
    f.write_bytes(b'{"run_id":"a","realized_pnl_bps":1}\n{"run_id":"\xff\xfe","realized_pnl_bps":1}\n'
                  b'{"run_id":"b","realized_pnl_bps":2}\n')
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.quarantined) == (2, 1)
    (q,) = list(iter_quarantine(store))
    assert q["line"] == 2 and q["reason"] == "not valid UTF-8"


def test_missing_file_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ingest_paths(store, [str(tmp_path / "nope.jsonl")])


def test_failed_file_leaves_store_unchanged(file_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after the first chunk of a file rolls the whole file back."""
    from alphatrace.store import ingest as ingest_mod
    from alphatrace.store import lines as lines_mod

    f = write_lines(tmp_path / "big.jsonl", [json.dumps({**SEED_PNL, "run_id": f"r{i}"}) for i in range(300)])
    real = lines_mod.iter_chunks

    def crashing(stream, chunk_bytes=0):  # type: ignore[no-untyped-def]
        for i, ch in enumerate(real(stream, 1024)):
            if i == 2:
                raise RuntimeError("simulated crash mid-file")
            yield ch

    monkeypatch.setattr(ingest_mod, "iter_chunks", crashing)
    with pytest.raises(RuntimeError):
        ingest_paths(file_store, [str(f)])
    assert rows(file_store, "SELECT count(*) FROM pnl")[0][0] == 0
    assert rows(file_store, "SELECT count(*) FROM ingested_files")[0][0] == 0
    monkeypatch.setattr(ingest_mod, "iter_chunks", real)
    r = ingest_paths(file_store, [str(f)])
    assert (r.accepted, r.duplicates) == (300, 0)


def test_many_chunks_dedupe_across_chunks(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alphatrace.store import ingest as ingest_mod
    from alphatrace.store import lines as lines_mod

    real = lines_mod.iter_chunks
    monkeypatch.setattr(ingest_mod, "iter_chunks", lambda s, chunk_bytes=0: real(s, 700))
    lines = [json.dumps({**SEED_PNL, "run_id": f"r{i % 40}"}) for i in range(200)]
    f = write_lines(tmp_path / "dups.jsonl", lines)
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.duplicates) == (40, 160)
    # the first occurrence is the one kept
    assert rows(store, "SELECT min(line), max(line) FROM pnl") == [(1, 40)]


def test_duplicates_inside_one_chunk_keep_the_first_line(store: Store, tmp_path: Path) -> None:
    a = json.dumps({**SEED_PNL, "run_id": "a"})
    b = json.dumps({**SEED_PNL, "run_id": "b"})
    f = write_lines(tmp_path / "d.jsonl", [a, b, a, a, b])
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.duplicates) == (2, 3)
    assert rows(store, "SELECT run_id, line FROM pnl ORDER BY line") == [("a", 1), ("b", 2)]


def test_duplicate_across_fast_and_exact_path_in_one_chunk(store: Store, tmp_path: Path) -> None:
    """Line 2 spells run_id "r1" with an escape, so only the exact path clears it; it is the
    same event as line 1, and line 3 (quarantined) makes the chunk a mix of both paths."""
    lines = ['{"run_id":"r1","realized_pnl_bps":5}',
             '{"run_id":"r\\u0031","realized_pnl_bps":5}',
             '{"run_id":"r2","realized_pnl_bps":"5"}',
             '{"run_id":"r3","realized_pnl_bps":6}']
    f = write_lines(tmp_path / "mix.jsonl", lines)
    r = ingest_paths(store, [str(f)])
    assert (r.accepted, r.duplicates, r.quarantined) == (2, 1, 1)
    assert rows(store, "SELECT run_id, line FROM pnl ORDER BY line") == [("r1", 1), ("r3", 4)]
    (q,) = list(iter_quarantine(store))
    assert (q["line"], q["field"]) == (3, "realized_pnl_bps")


def test_an_event_is_one_event_whether_its_text_escapes_non_ascii_or_not(store: Store, tmp_path: Path) -> None:
    """Collector batches are encoded with UTF-8 text (store/encode_events.py); a file may carry
    the same event with \\u escapes: both spellings are one identity."""
    e = {**SEED_ALPHA, "agent": "Agenté", "note": "café ☕ 𝄞", "nested": {"k": "ü"}}
    f = write_lines(tmp_path / "escaped.jsonl", [json.dumps(e, ensure_ascii=True)])
    assert ingest_paths(store, [str(f)]).accepted == 1
    report, _results = ingest_events(store, [e])
    assert (report.accepted, report.duplicates) == (0, 1)
    assert rows(store, "SELECT agent, attrs FROM alpha") == [
        ("Agenté", '{"note":"café ☕ 𝄞","nested":{"k":"ü"}}')]
