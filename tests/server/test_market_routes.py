"""POST /v1/market/bars and /v1/market/funding (issue #14 item 4), and GET /v1/decisions.

The routes are driven in process (TestClient runs the app's lifespan, so the writer thread is
real): JSON rows, raw CSV and Parquet bodies, multipart files, gzip, bad rows to quarantine,
the after-round hooks seeing the bars in the round that stored them. Expected values are the
rows the tests send, written out by hand.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.governance.gates import Decision
from alphatrace.governance.journal import append
from alphatrace.market.readers import MARKET_SUFFIXES
from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.server.market_routes import cell, safe_name
from alphatrace.store import Store

H = 3_600_000  # one hour in ms
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


class App:
    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def auth(self, scope: str = "ingest") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post(self, route: str, scope: str = "ingest", **kw: Any) -> Any:
        headers = {**self.auth(scope), **kw.pop("headers", {})}
        return self.client.post(route, headers=headers, **kw)

    def sql(self, q: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.client.app.state.writer.reader() as con:  # type: ignore[attr-defined]
            return con.execute(q, params or []).fetchall()


def make_app(tmp: Path, **kw: Any) -> tuple[TestClient, dict[str, str]]:
    db = tmp / "m.duckdb"
    with Store(db) as store:
        keys = {s: create_key(store, f"k-{s}", s)["key"] for s in ("ingest", "read")}
    return TestClient(create_app(db, warn_without_keys=False, **kw)), keys


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    client, keys = make_app(tmp_path)
    with client:
        yield App(client, keys)


def bar(i: int, symbol: str = "BTCUSDT", close: float = 100.5) -> dict[str, Any]:
    return {"symbol": symbol, "ts": T0 + i * H, "open": 100.0, "high": 101.0, "low": 99.0,
            "close": close, "volume": 12.5}


def test_json_bars_are_stored_and_a_resend_is_all_duplicates(app: App) -> None:
    rows = [bar(0), bar(1), bar(2, close=99.25)]
    res = app.post("/v1/market/bars", json=rows)
    assert res.status_code == 200, res.text
    doc = res.json()
    assert (doc["accepted"], doc["new"], doc["duplicates"], doc["quarantined"]) == (3, 3, 0, 0)
    assert doc["symbols"] == ["BTCUSDT"]
    got = app.sql("SELECT ts, close, interval_s FROM bars ORDER BY ts")
    assert got == [(dt.datetime(2025, 1, 1, 0), 100.5, 3600), (dt.datetime(2025, 1, 1, 1), 100.5, 3600),
                   (dt.datetime(2025, 1, 1, 2), 99.25, 3600)]
    again = app.post("/v1/market/bars", json={"rows": rows}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    # A corrected value replaces the stored one and counts as accepted (updated).
    fixed = app.post("/v1/market/bars", json=[bar(2, close=99.5)]).json()
    assert (fixed["accepted"], fixed["new"], fixed["updated"]) == (1, 0, 1)
    assert app.sql("SELECT close FROM bars WHERE ts = '2025-01-01 02:00'") == [(99.5,)]


def test_bad_rows_are_quarantined_with_their_reason_and_the_good_ones_kept(app: App) -> None:
    rows = [bar(0), {**bar(1), "open": "abc"}, bar(2), {**bar(3), "ts": "not a time"}]
    res = app.post("/v1/market/bars", json=rows)
    assert res.status_code == 207
    doc = res.json()
    assert (doc["accepted"], doc["quarantined"]) == (2, 2)
    assert [(p["index"], p["line"], p["field"]) for p in doc["problems"]] == [
        (1, 2, "open"), (3, 4, "ts")]
    assert "abc" in doc["problems"][0]["reason"]
    q = app.sql("SELECT path, line, kind, field FROM quarantine ORDER BY line")
    assert q == [("<http:bars>", 2, "bars", "open"), ("<http:bars>", 4, "bars", "ts")]
    assert len(app.sql("SELECT * FROM bars")) == 2
    # The same bad rows sent again (a retry) are not quarantined twice.
    app.post("/v1/market/bars", json=rows)
    assert len(app.sql("SELECT * FROM quarantine")) == 2


def test_funding_rows_and_the_wrong_route(app: App) -> None:
    rows = [{"symbol": "BTCUSDT", "ts": "2025-01-01T08:00:00Z", "funding_rate": 0.0001,
             "mark_price": 94000.5},
            {"symbol": "BTCUSDT", "ts": "2025-01-01T16:00:00Z", "funding_rate": -0.00025}]
    wrong = app.post("/v1/market/bars", json=rows)
    assert wrong.status_code == 400 and "/v1/market/funding" in wrong.json()["detail"]
    assert app.sql("SELECT count(*) FROM funding") == [(0,)]
    res = app.post("/v1/market/funding", json=rows)
    assert res.status_code == 200 and res.json()["accepted"] == 2
    assert app.sql("SELECT ts, funding_rate, mark_price FROM funding ORDER BY ts") == [
        (dt.datetime(2025, 1, 1, 8), 0.0001, 94000.5), (dt.datetime(2025, 1, 1, 16), -0.00025, None)]
    back = app.post("/v1/market/funding", json=[bar(0)])
    assert back.status_code == 400 and "/v1/market/bars" in back.json()["detail"]


def test_csv_body_gzip_symbol_and_interval_from_the_file_name(app: App) -> None:
    text = "ts,open,high,low,close\n2025-01-01T00:00:00Z,10,11,9,10.5\n"
    body = gzip.compress(text.encode())
    res = app.post("/v1/market/bars", content=body, params={"filename": "ETHUSDT_1h.csv"},
                   headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"})
    assert res.status_code == 200, res.text
    assert res.json()["symbols"] == ["ETHUSDT"]
    assert app.sql("SELECT symbol, interval_s, close FROM bars") == [("ETHUSDT", 3600, 10.5)]
    assert app.sql("SELECT path FROM market_files") == [("<http:bars>/ETHUSDT_1h.csv",)]


def test_a_single_bar_needs_an_interval_and_the_error_says_how(app: App) -> None:
    res = app.post("/v1/market/bars", json=[bar(0, symbol="SOLUSDT")])
    assert res.status_code == 400
    assert "?interval=1h" in res.json()["detail"] and "/tmp" not in res.json()["detail"]
    ok = app.post("/v1/market/bars", json=[bar(0, symbol="SOLUSDT")], params={"interval": "4h"})
    assert ok.status_code == 200, ok.text
    assert app.sql("SELECT interval_s FROM bars") == [(4 * 3600,)]
    # Once the symbol's interval is known, the next single bar needs nothing.
    nxt = app.post("/v1/market/bars", json=[bar(4, symbol="SOLUSDT")])
    assert nxt.status_code == 200 and nxt.json()["accepted"] == 1
    assert app.post("/v1/market/bars", json=[bar(0)], params={"interval": "soon"}).status_code == 422


def test_rows_without_symbol_take_the_query_symbol(app: App) -> None:
    rows = [{k: v for k, v in bar(i).items() if k != "symbol"} for i in range(2)]
    missing = app.post("/v1/market/bars", json=rows)
    assert missing.status_code == 400 and "?symbol=SYMBOL" in missing.json()["detail"]
    res = app.post("/v1/market/bars", json=rows, params={"symbol": "xrpusdt"})
    assert res.status_code == 200 and res.json()["symbols"] == ["XRPUSDT"]


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def test_parquet_body_and_multipart_files(app: App) -> None:
    pbody = parquet_bytes([bar(i) for i in range(3)])
    res = app.post("/v1/market/bars", content=pbody,
                   headers={"Content-Type": "application/vnd.apache.parquet"})
    assert res.status_code == 200 and res.json()["new"] == 3, res.text
    csv_eth = "symbol,ts,open,high,low,close\nETHUSDT,2025-01-01T00:00:00Z,1,2,0.5,1.5\n" \
              "ETHUSDT,2025-01-01T01:00:00Z,1,2,0.5,-4\n"
    res = app.post("/v1/market/bars", files=[
        ("file", ("eth.csv", csv_eth.encode(), "text/csv")),
        ("file", ("../../etc/BTC_more.parquet", parquet_bytes([bar(3), bar(4)]),
                  "application/octet-stream")),
    ], params={"interval": "1h"})
    assert res.status_code == 207, res.text
    doc = res.json()
    assert (doc["new"], doc["quarantined"], doc["files"]) == (3, 1, 2)
    assert [(p["source"], p["line"], p["field"]) for p in doc["problems"]] == [
        ("<http:bars>/eth_1h.csv", 3, "close")]
    assert "index" not in doc["problems"][0]  # a file's rows are named by line
    assert app.sql("SELECT count(*) FROM bars WHERE symbol = 'BTCUSDT'") == [(5,)]


def test_what_the_route_refuses(tmp_path: Path) -> None:
    client, keys = make_app(tmp_path, max_body=2000)
    with client:
        a = App(client, keys)
        assert a.client.post("/v1/market/bars", json=[bar(0)]).status_code == 401
        assert a.post("/v1/market/bars", scope="read", json=[bar(0)]).status_code == 403
        big = [bar(i) for i in range(40)]
        assert a.post("/v1/market/bars", json=big).status_code == 413
        bomb = gzip.compress(json.dumps(big).encode())
        assert len(bomb) < 2000
        assert a.post("/v1/market/bars", content=bomb, headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"}).status_code == 413
        odd = a.post("/v1/market/bars", content=b"x", headers={"Content-Type": "image/png"})
        assert odd.status_code == 415
        exe = a.post("/v1/market/bars", files=[("file", ("prices.exe", b"1", "text/csv"))])
        assert exe.status_code == 415
        assert a.post("/v1/market/bars", json={"bars": []}).status_code == 400
        assert a.post("/v1/market/bars", json=[1, 2]).status_code == 400
        empty = a.post("/v1/market/bars", json=[])
        assert empty.status_code == 200 and empty.json()["accepted"] == 0
        junk = a.post("/v1/market/bars", content=b"\x00\x01garbage",
                      headers={"Content-Type": "application/vnd.apache.parquet"})
        assert junk.status_code == 400 and "Parquet" in junk.json()["detail"]
        assert a.sql("SELECT count(*) FROM bars") == [(0,)]


def test_the_import_is_a_writer_round_and_the_hooks_see_its_bars(tmp_path: Path) -> None:
    client, keys = make_app(tmp_path)
    seen: list[int] = []
    writer = client.app.state.writer  # type: ignore[attr-defined]
    writer.after_round(lambda store: seen.append(store.con.execute(
        "SELECT count(*) FROM bars").fetchall()[0][0]))
    with client:
        a = App(client, keys)
        # The answer is sent when the import commits; the hooks run for it on their own
        # thread (`sync()` waits for them).
        a.post("/v1/market/bars", json=[bar(0), bar(1)])
        writer.sync().result(timeout=60)
        a.post("/v1/market/bars", json=[bar(2)])
        writer.sync().result(timeout=60)
    assert seen[0] == 2 and seen[-1] == 3 and set(seen) == {2, 3}


def decision(subject: str, action: str, state: str) -> Decision:
    return Decision(subject=subject, scope="agent", action=action, rule="r" if action == "kill"
                    else None, fired=(), blocked=False, state=state,  # type: ignore[arg-type]
                    cascade_from=None, metrics={"runs": 3}, run_ids=["a", "b"],
                    as_of=dt.datetime(2025, 10, 2, 8), policy_hash=None)


def test_decisions_after_a_seq(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with Store(db) as store:
        key = create_key(store, "r", "read")["key"]
        with store.transaction():
            append(store, [decision("A", "hold", "candidate"), decision("B", "hold", "candidate")],
                   None)
        with store.transaction():
            append(store, [decision("A", "kill", "killed")], None)
    with TestClient(create_app(db, warn_without_keys=False)) as c:
        h = {"Authorization": f"Bearer {key}"}
        assert c.get("/v1/decisions").status_code == 401
        all_ = c.get("/v1/decisions", headers=h).json()
        assert [(d["seq"], d["subject"], d["action"]) for d in all_["decisions"]] == [
            (1, "A", "hold"), (2, "B", "hold"), (3, "A", "kill")]
        assert all_["last_seq"] == 3
        after = c.get("/v1/decisions", params={"after": 2}, headers=h).json()
        assert [d["seq"] for d in after["decisions"]] == [3]
        assert after["decisions"][0]["run_ids"] == ["a", "b"]
        assert after["decisions"][0]["as_of"].startswith("2025-10-02")
        none = c.get("/v1/decisions", params={"after": 3}, headers=h).json()
        assert none == {"decisions": [], "last_seq": 3}
        one = c.get("/v1/decisions", params={"limit": 1}, headers=h).json()
        assert [d["seq"] for d in one["decisions"]] == [1] and one["last_seq"] == 1
        assert c.get("/v1/decisions", params={"after": -1}, headers=h).status_code == 422


@given(st.one_of(st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False)))
def test_a_json_number_becomes_text_that_reads_back_as_the_same_number(x: float) -> None:
    text = cell(x)
    assert text is not None and float(text) == x


@given(st.text(max_size=40), st.sampled_from(MARKET_SUFFIXES))
def test_an_uploaded_name_is_a_safe_base_name_with_its_suffix(stem: str, suffix: str) -> None:
    name = safe_name("dir/" + stem + suffix, None)
    assert "/" not in name and not name.startswith(".")
    assert name.lower().endswith(suffix)
    assert all((c.isalnum() and c.isascii()) or c in "._-" for c in name)
