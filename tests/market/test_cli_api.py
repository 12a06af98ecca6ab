"""`alphatrace market ...` (JSON contracts, tables, one-line errors) and the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import alphatrace as at
from alphatrace.cli.main import app

DEMO = Path(at.__file__).parent / "demo" / "data"
BARS = "symbol,ts,open,high,low,close\n" + "".join(
    f"{s},2024-01-01T0{h}:00:00Z,10,11,9,10.5\n" for s in ("BTCUSDT", "ETHUSDT", "ETHBTC") for h in range(3)
)


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "m.duckdb")


def test_import_json_is_one_document_with_the_contract_keys(db: str, tmp_path: Path) -> None:
    f = tmp_path / "bars.csv"
    f.write_text(BARS + "BTCUSDT,2024-01-01T09:00:00Z,10,8,9,10\n")
    code, out, _ = cli("market", "import", str(f), "--db", db, "--json")
    assert code == 0
    assert json.loads(out) == {"bars": 9, "funding": 0, "symbols": ["BTCUSDT", "ETHBTC", "ETHUSDT"],
                               "updated": 0, "unchanged": 0, "quarantined": 1, "files": 1}


def test_import_table_lists_bad_rows_with_file_and_line(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bars.csv").write_text(BARS + "BTCUSDT,2024-01-01T09:00:00Z,10,8,9,10\n")
    code, out, _ = cli("market", "import", "bars.csv", "--db", db)
    assert code == 0
    assert "1 bad row(s) quarantined" in out
    assert "  bars.csv:11: high: high (8) is below low (9)\n" in out


def test_user_errors_are_one_red_line_and_exit_2(db: str, tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    code, out, err = cli("market", "import", str(f), "--db", db)
    assert code == 2 and out == ""
    # One message (rich wraps it at the terminal width), no traceback.
    assert err.startswith("error:") and err.count("error:") == 1 and "Traceback" not in err
    assert "x.csv: line 1: no header with known columns" in " ".join(err.split())
    code, _, err = cli("market", "alias", "XBT", "--db", db)
    assert code == 2 and "give either SYMBOL" in err
    code, _, err = cli("market", "alias", "NOPE", "--remove", "--db", db)
    assert code == 1 and "no alias 'NOPE'" in err


def test_alias_symbols_and_resolve(db: str, tmp_path: Path) -> None:
    f = tmp_path / "bars.csv"
    f.write_text(BARS)
    cli("market", "import", str(f), "--db", db)
    code, out, _ = cli("market", "alias", "XBT", "btcusdt", "--db", db, "--json")
    assert code == 0 and json.loads(out) == {"alias": "XBT", "symbol": "BTCUSDT", "imported": True}
    code, out, _ = cli("market", "alias", "--db", db, "--json")
    assert json.loads(out) == [{"alias": "XBT", "symbol": "BTCUSDT"}]

    code, out, _ = cli("market", "symbols", "--db", db, "--json")
    got = [(r["symbol"], r["interval"], r["interval_s"], r["bars"], r["first_bar"], r["last_bar"], r["aliases"])
           for r in json.loads(out)]
    assert got == [
        ("BTCUSDT", "1h", 3600, 3, "2024-01-01T00:00:00.000000Z", "2024-01-01T02:00:00.000000Z", ["XBT"]),
        ("ETHBTC", "1h", 3600, 3, "2024-01-01T00:00:00.000000Z", "2024-01-01T02:00:00.000000Z", []),
        ("ETHUSDT", "1h", 3600, 3, "2024-01-01T00:00:00.000000Z", "2024-01-01T02:00:00.000000Z", []),
    ]

    policy = tmp_path / "p.yaml"
    policy.write_text("market:\n  aliases:\n    ETH: ETHUSDT\n")
    code, out, _ = cli("market", "resolve", "BTC", "ETH", "XBT", "DOGE", "--db", db, "--json")
    assert json.loads(out) == [
        {"symbol": "BTC", "resolved": "BTCUSDT", "status": "prefix", "candidates": ["BTCUSDT"]},
        {"symbol": "ETH", "resolved": None, "status": "ambiguous", "candidates": ["ETHBTC", "ETHUSDT"]},
        {"symbol": "XBT", "resolved": "BTCUSDT", "status": "alias", "candidates": []},
        {"symbol": "DOGE", "resolved": None, "status": "unknown", "candidates": []},
    ]
    code, out, _ = cli("market", "resolve", "ETH", "--policy", str(policy), "--db", db, "--json")
    assert json.loads(out)[0]["status"] == "alias" and json.loads(out)[0]["resolved"] == "ETHUSDT"
    code, out, _ = cli("market", "resolve", "ETH", "--db", db)
    assert code == 0 and "ambiguous" in out

    code, out, _ = cli("market", "alias", "XBT", "--remove", "--db", db)
    assert code == 0 and "removed alias XBT (was BTCUSDT)" in out


def test_python_api(tmp_path: Path) -> None:
    with at.connect(tmp_path / "api.duckdb") as db:
        report = db.import_market(DEMO)
        assert (report.bars, report.funding, report.symbols, report.files) == (
            2 * 4528, 2 * 566, ["BTCUSDT", "ETHUSDT"], 4)
        assert db.alias("XBT", "BTCUSDT")["symbol"] == "BTCUSDT"
        assert [r["symbol"] for r in db.resolve("XBT", "BTC", "ETH")] == ["XBT", "BTC", "ETH"]
        assert [r["resolved"] for r in db.resolve("XBT", "BTC", "ETH")] == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
        assert db.alias("XBT", None)["removed"] is True
        assert db.aliases() == []
        assert [(r["symbol"], r["interval"], r["bars"], r["funding"]) for r in db.symbols()] == [
            ("BTCUSDT", "1h", 4528, 566), ("ETHUSDT", "1h", 4528, 566)]


def test_shipped_demo_slice() -> None:
    files = sorted(p.name for p in DEMO.glob("*.parquet"))
    assert files == ["BTCUSDT_1h.parquet", "BTCUSDT_funding_8h.parquet",
                     "ETHUSDT_1h.parquet", "ETHUSDT_funding_8h.parquet"]
    assert sum((DEMO / f).stat().st_size for f in files) < 400_000
    with at.connect(":memory:") as db:
        db.import_market(DEMO)
        # 2025-06-01 00:00 -> 2025-12-06 15:00 hourly: 188 days * 24 + 16 = 4,528 bars, no gaps;
        # funding 188 * 3 + 2 = 566 settlements (last 2025-12-06 08:00).
        assert db.con.execute(
            "SELECT symbol, count(*), min(ts)::VARCHAR, max(ts)::VARCHAR, "
            "count(*) FILTER (WHERE ts - lag_ts <> INTERVAL 1 HOUR) FROM "
            "(SELECT *, lag(ts) OVER (PARTITION BY symbol ORDER BY ts) AS lag_ts FROM bars) "
            "GROUP BY 1 ORDER BY 1").fetchall() == [
            ("BTCUSDT", 4528, "2025-06-01 00:00:00", "2025-12-06 15:00:00", 0),
            ("ETHUSDT", 4528, "2025-06-01 00:00:00", "2025-12-06 15:00:00", 0)]
        assert db.con.execute(
            "SELECT symbol, count(*), max(ts)::VARCHAR, count(mark_price) FROM funding GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("BTCUSDT", 566, "2025-12-06 08:00:00", 566),
                         ("ETHUSDT", 566, "2025-12-06 08:00:00", 566)]


def test_demo_slice_matches_the_shared_source(market_dir: Path) -> None:
    with at.connect(":memory:") as db:
        db.import_market(DEMO)
        for sym in ("BTCUSDT", "ETHUSDT"):
            same = db.con.execute(
                "SELECT count(*), count(*) FILTER (WHERE (s.open, s.high, s.low, s.close, s.volume) "
                "= (b.open, b.high, b.low, b.close, b.volume)) "
                "FROM bars b JOIN read_parquet(?) s ON s.symbol = b.symbol AND timezone('UTC', s.ts) = b.ts",
                [str(market_dir / f"binance_{sym}_perp_1h.parquet")]).fetchall()
            assert same == [(4528, 4528)]
