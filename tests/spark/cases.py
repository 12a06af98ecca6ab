"""The hand-made governance cases and helpers the Spark governance tests share (the parity
suite of `gates evaluate`/`confidence`, and of `gates backtest`/`audit verify`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alphatrace.api import Database
from alphatrace.cli.common import to_json
from alphatrace.governance.canon import canonical_json
from alphatrace.governance.policy import load_governance
from alphatrace.policy import parse_policy_text
from tests.rows import h, run, series

WRITTEN_AT = dt.datetime(2030, 1, 1)  # created_at of every record, so hashes can be compared

# A duration window, recovery and floor, and a strategy-only kill rule.
WINDOW_POLICY = """
confidence:
  rules:
    - {when: "pnl < -20", factor: 0.8}
    - {when: "pnl < 0", factor: 0.93}
  recovery: 1.07
  floor: 0.3
gates:
  min_runs: 3
  window: {runs: 6, duration: 10h}
  rules:
    - {name: kill_loss, action: kill, when: "last_5_runs_pnl < -60 or error_rate > 0.3"}
    - {name: kill_class, action: kill, when: "rolling_pnl_bps < -150", scope: [strategy]}
    - {name: promote_ok, action: promote, when: "rolling_pnl_bps > 40 and median_latency_ms < 700"}
"""


def policy(text: str | None) -> Any:
    return load_governance(None if text is None else parse_policy_text(text, "p.yaml"))


@contextmanager
def partitions(spark: Any, n: int) -> Iterator[None]:
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")


def first_batch() -> list[dict[str, Any]]:
    rows = [
        *series("loser", [-30, -25, 5, -40, -35, -10, -50], strategy="trend"),
        *series("winner", [12, 30, 8, 25, 19, 22, 41], strategy="carry", lag_h=0.5),
        *series("o'brien", [3, -4, 3, -4, 3, -4], strategy="trend", prefix="ob"),
        *series("zoë", [-60, -70, -80, 5, -90], strategy="trend", start_hour=0.5),
        *series("solo", [10, -30, -40, -50], strategy=None),
        *series("slow", [5, 6, 7, 8], strategy="carry", latency_ms=float("inf")),
    ]
    # ties: several runs signalled and known at the same instant, ordered by run_id only
    rows += [run(f"tie{i}", "tied", p, hour=2.0, strategy="carry") for i, p in
             enumerate([9.5, -3.25, 7.0, -1.0])]
    rows += [run("nobody", None, -12.0, hour=3, strategy="trend"),
             run("open1", "loser", None, hour=8, strategy="trend"),
             run("late", "winner", -200.0, hour=1.5, strategy="carry", known=h(9.5)),
             run("err1", "tied", 1.0, hour=4, strategy="carry", errors=3)]
    return rows


def second_batch() -> list[dict[str, Any]]:
    return [*series("loser", [20, 25, 30, 35], strategy="trend", start_hour=12, prefix="l2_"),
            *series("winner", [-5, 50, 60], strategy="carry", start_hour=12, prefix="w2_"),
            *series("fresh", [1, 2, 3, 4], strategy="trend", start_hour=13)]


def late_eth_rounds(tmp: Path) -> Iterator[tuple[Database, Database, Path, Any]]:
    """The late-runs scenario both engines are judged on: every event first, with bars for BTC
    only (runs 5 and 6 of every agent judged, runs 0-4 on ETH unpriced), reconciled; then
    ETH's bars and a reconcile, which make runs 0-4 known before the agents' marks. Yields
    after each reconcile: (the embedded store, an empty store for Spark's log, the lake's
    path, the pipeline config of the seed policy)."""
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.server.pipeline import PipelineConfig
    from alphatrace.store.ingest import ingest_events
    from tests.policies import SEED
    from tests.server.test_pipeline import bars
    from tests.server.test_pipeline_server import ON_ETH, eth_bars

    cfg = PipelineConfig.load(SEED)
    emb = Database(tmp / "emb.duckdb")
    log = Database(tmp / "log.duckdb")
    bars(emb.store)
    ingest_events(emb.store, ON_ETH)
    for part in range(2):
        if part:
            eth_bars(emb.store)
        reconcile(emb.store, cfg.reconcile)
        yield emb, log, tmp / "lake", cfg


def same(want: Any, got: Any) -> None:
    """Equal documents: their canonical JSON, times written as the CLI's `--json` writes them."""
    assert canonical_json(json.loads(to_json(got))) == canonical_json(json.loads(to_json(want)))
