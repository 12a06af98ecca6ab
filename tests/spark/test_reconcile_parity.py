"""Reconcile on Spark (`engines.spark.reconcile`) over an export prices the same legs and
builds the same ledger as the embedded engine: legs by event_id and ledger by run_id, every
column, doubles bit for bit, fingerprints included, with `spark.sql.shuffle.partitions` 1 and
7. Data: the demo (the shipped BTC/ETH slice and its simulated agents) and hand-made edge
cases (those of the ledger parity test plus an ambiguous symbol, a lower-case direction, a
zero entry price, a fractional horizon, an unknown direction)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import alphatrace as at_
from alphatrace.cli.main import app
from alphatrace.demo import shipped
from alphatrace.demo.simulate import simulate
from alphatrace.engines.spark.ledger import single_sources_on
from alphatrace.engines.spark.reconcile import priced_legs, reconcile_frames
from alphatrace.ledger.build import LEDGER_COLUMNS, SOURCES
from alphatrace.ledger.policy import ReconcileConfig
from alphatrace.ledger.pricing import LEG_COLUMNS
from alphatrace.ledger.reconcile import reconcile
from alphatrace.store import Store
from alphatrace.store.export import export_parquet
from tests.demo.conftest import demo_data_dir, demo_market  # noqa: F401 (fixtures)
from tests.ledger.helpers import add_alpha, add_bars, at, policy
from tests.spark.test_ledger_parity import POLICY, _bits, _edge_store

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

Rows = dict[str, dict[str, Any]]


def _keyed(rows: list[dict[str, Any]], key: str) -> Rows:
    return {r[key]: {k: _bits(v) for k, v in r.items()} for r in rows}


def _edges(path: Path) -> Store:
    s = _edge_store(path)
    add_bars(s, "BTCUSDC", [100.5 + i for i in range(6)])           # makes "BTC" ambiguous
    add_bars(s, "ZEROUSDT", [0.0, 2.0, 3.0, 4.0, 5.0])
    add_alpha(s, "amb", "BTC", "LONG", at(2), agent="A")
    add_alpha(s, "lower", "ETHUSDT", " short", at(2, 7), agent="B")
    add_alpha(s, "zero", "ZEROUSDT", "LONG", at(0, -5), agent="A")   # enters the 0.0 bar
    add_alpha(s, "frac", "ETHUSDT", "LONG", at(1, 1), horizon_s=5400.25)
    add_alpha(s, "what", "ETHUSDT", "SIDEWAYS", at(1))
    return s


def _demo(path: Path, market: tuple[pa.Table, pa.Table]) -> Store:
    """The demo's events and market (`market`: the shipped bars and funding), ingested and
    imported as `alphatrace demo` does."""
    bars, funding = market
    files = simulate(bars, seed=7, funding=funding).write_jsonl(path.parent / "events")
    with at_.connect(str(path)) as db:
        db.import_market(*[str(p) for p in sorted(shipped.data_dir().glob("*.parquet"))])
        db.ingest(*[str(p) for p in files])
    return Store(path)


def _embedded(store: Store, lake: Path, cfg: ReconcileConfig) -> tuple[Rows, Rows]:
    reconcile(store, cfg)
    export_parquet(store.con, lake)
    legs = _keyed(store.con.sql(f"SELECT {', '.join(LEG_COLUMNS)} FROM legs"
                                ).to_arrow_table().to_pylist(), "event_id")
    ledger = _keyed(store.con.sql(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger"
                                  ).to_arrow_table().to_pylist(), "run_id")
    store.close()
    return legs, ledger


def _same(got: Rows, want: Rows, columns: tuple[str, ...]) -> None:
    assert got.keys() == want.keys()
    for key, row in want.items():
        for c in columns:
            assert got[key][c] == row[c], (key, c, got[key][c], row[c])


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory, demo_market: tuple[pa.Table, pa.Table]  # noqa: F811
          ) -> dict[str, tuple[Path, Rows, Rows]]:
    """Per data set: the export, and the embedded engine's legs and ledger."""
    out = {}
    for name in ("edges", "demo", "single"):
        d = tmp_path_factory.mktemp(name)
        s = _edges(d / "s.duckdb") if name == "edges" else _demo(d / "s.duckdb", demo_market)
        if name == "single":  # one signal, telemetry record and pnl event per run
            for t in ("alpha", "telemetry", "pnl"):
                s.con.execute(f"DELETE FROM {t} WHERE event_id NOT IN "
                              f"(SELECT min(event_id) FROM {t} GROUP BY run_id)")
        legs, ledger = _embedded(s, d / "lake", policy(POLICY))
        out[name] = (d / "lake", legs, ledger)
    return out


# Each data set with 1 and 7 shuffle partitions: edges with 1 is the CLI test below.
@pytest.mark.parametrize(("data", "partitions"),
                         [("edges", 7), ("demo", 1), ("demo", 7), ("single", 7)])
def test_spark_prices_the_same_legs_and_ledger(
        lakes: dict[str, tuple[Path, Rows, Rows]], spark: Any, data: str,
        partitions: int) -> None:
    lake, want_legs, want_ledger = lakes[data]
    statuses = {r["status"] for r in want_legs.values()}
    assert statuses == ({"realized", "open", "unpriced"} if data == "edges" else {"realized"})
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        frames = reconcile_frames(spark, lake, policy(POLICY))
        # the ledger's text without the several-row halves (`single`) where no run has several
        # rows; with them wherever a source has such a run
        assert single_sources_on(spark) == (frozenset(SOURCES) if data == "single"
                                            else frozenset())
        legs = _keyed([r.asDict() for r in frames.legs.collect()], "event_id")
        ledger = _keyed([r.asDict() for r in frames.ledger.collect()], "run_id")
        frames.release()
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    _same(legs, want_legs, LEG_COLUMNS)
    _same(ledger, want_ledger, LEDGER_COLUMNS)


def test_reconcile_cli_writes_legs_and_ledger(
        lakes: dict[str, tuple[Path, Rows, Rows]], spark: Any, tmp_path: Path) -> None:
    """`alphatrace reconcile --engine spark --tables DIR --out DIR --policy P --json`, with one
    shuffle partition."""
    lake, want_legs, want_ledger = lakes["edges"]
    (tmp_path / "p.yaml").write_text(POLICY)
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    try:
        res = CliRunner().invoke(app, ["reconcile", "--engine", "spark", "--tables", str(lake),
                                       "--out", str(tmp_path / "out"), "--policy",
                                       str(tmp_path / "p.yaml"), "--json"])
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    by_status = [r["status"] for r in want_legs.values()]
    assert doc == {"engine": "spark", "legs": len(want_legs),
                   "realized": by_status.count("realized"), "open": by_status.count("open"),
                   "unpriced": by_status.count("unpriced"), "runs": len(want_ledger),
                   "policy_hash": policy(POLICY).hash, "out": str(tmp_path / "out")}
    legs = pq.read_table(tmp_path / "out" / "legs").to_pylist()
    _same(_keyed(legs, "event_id"), want_legs, LEG_COLUMNS)
    ledger = pq.read_table(tmp_path / "out" / "ledger").to_pylist()
    _same(_keyed(ledger, "run_id"), want_ledger, LEDGER_COLUMNS)
    for table, key in (("legs", ("event_id",)), ("ledger", ("ts", "run_id"))):
        for f in (tmp_path / "out" / table).glob("*.parquet"):
            keys = [tuple((r[k] is not None, r[k]) for k in key)  # NULLs first
                    for r in pq.read_table(f).to_pylist()]
            assert keys == sorted(keys), f  # each file's rows in key order
    for args in (["--engine", "spark", "--out", "x"], ["--tables", str(lake)],
                 ["--engine", "flink"]):
        bad = CliRunner().invoke(app, ["reconcile", *args])
        assert bad.exit_code != 0 and ("engine" in bad.output or "--tables" in bad.output)


def test_the_ledger_reads_the_priced_legs_without_pricing_again(
        lakes: dict[str, tuple[Path, Rows, Rows]], spark: Any) -> None:
    """The ledger's physical plan scans the legs `reconcile_frames` computed: it runs neither
    Python kernel (`locate.exits`, the fingerprints) again, and it joins the driver's small
    relations (params, pnl keys) by broadcast, not by shuffling the runs to them. Before, a
    cached legs plan was not matched inside the ledger's CTEs, so the plan priced every signal
    once per read of `legs`."""
    import re

    lake, _, want_ledger = lakes["demo"]
    frames = reconcile_frames(spark, lake, policy(POLICY))
    try:
        plan = frames.ledger._jdf.queryExecution().executedPlan().toString()
        assert "MapInArrow" not in plan
        assert "Scan ExistingRDD[event_id" in plan  # the kept legs
        assert not re.search(r"SortMergeJoin \[(agent|symbol)#", plan), plan
        got = _keyed([r.asDict() for r in frames.ledger.collect()], "run_id")
    finally:
        frames.release()
    _same(got, want_ledger, LEDGER_COLUMNS)


def test_pricing_reads_each_signal_once_and_shuffles_none(
        lakes: dict[str, tuple[Path, Rows, Rows]], spark: Any) -> None:
    """The legs' plan scans the signals once and never shuffles them: the driver's relations
    are broadcast, and `locate.exits` runs over every signal (the unpriceable ones pass
    through with NULL exits), so the priced rows need no join back to the signals. Before, the
    priceable signals went through the kernel apart and were joined back on `event_id`: a
    second scan, and a sort-merge join shuffling every signal on both sides."""
    import re

    lake, want_legs, _ = lakes["demo"]
    legs, _ = priced_legs(spark, lake, policy(POLICY))
    plan = legs._jdf.queryExecution().executedPlan().toString()
    assert not re.search(r"Exchange (hash|range|single|round)", plan), plan
    assert not re.search(r"(SortMerge|ShuffledHash)Join", plan), plan
    assert len(re.findall(r"FileScan parquet [^\n]*alpha\.parquet", plan)) == 1, plan
    assert plan.count("MapInArrow") == 2, plan  # locate.exits, the fingerprints
    _same(_keyed([r.asDict() for r in legs.collect()], "event_id"), want_legs, LEG_COLUMNS)
