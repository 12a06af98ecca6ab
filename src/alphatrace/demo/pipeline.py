"""`alphatrace demo` as a list of steps over one fresh store.

Each step is a function of the shared context returning a JSON-able dict; the CLI shows one
progress line per step and prints every result (or one JSON document of all of them). Later
areas append their step (reconcile, forensics, gates, ...) to `STEPS` instead of editing the
command, and can read what the simulator planted from `ctx.demo.truth`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.demo import shipped, summary
from alphatrace.demo.simulate import DemoEvents, simulate
from alphatrace.errors import InputError, StoreError
from alphatrace.governance.confidence import EXAMPLE_RECOVERY, collapse_note
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_paths

DEFAULT_DB = Path("alphatrace-demo.duckdb")
DEFAULT_SEED = 7
DEFAULT_RUNS_PER_AGENT = 700
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


@dataclass
class DemoContext:
    store: Store
    data_dir: Path
    events_dir: Path
    seed: int = DEFAULT_SEED
    runs_per_agent: int = DEFAULT_RUNS_PER_AGENT
    demo: DemoEvents | None = None
    files: list[Path] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str  # key of its result in the JSON document
    title: str  # what the progress line says while it runs
    run: Callable[[DemoContext], dict[str, Any]]


def step_market(ctx: DemoContext) -> dict[str, Any]:
    return shipped.import_market(ctx.store, shipped.market_files(ctx.data_dir))


def _bars_for_simulation(store: Store) -> tuple[pa.Table, pa.Table]:
    """The finest regular bars (1h when present) and the funding, as Arrow."""
    con = store.con
    iv = con.execute(
        "SELECT coalesce(max(interval_s) FILTER (WHERE interval_s = 3600), min(interval_s)) "
        "FROM bars WHERE interval_s > 0"
    ).fetchall()[0][0]
    if iv is None:
        raise InputError("no bars in the store: the simulator needs prices to trade on")
    bars = con.sql(
        "SELECT symbol, ts, open, high, low, close FROM bars WHERE interval_s = $iv ORDER BY symbol, ts",
        params={"iv": int(iv)},
    ).to_arrow_table()
    funding = con.sql(
        "SELECT symbol, ts, funding_rate, mark_price FROM funding ORDER BY symbol, ts"
    ).to_arrow_table()
    return bars, funding


def step_simulate(ctx: DemoContext) -> dict[str, Any]:
    bars, funding = _bars_for_simulation(ctx.store)
    ctx.demo = simulate(bars, seed=ctx.seed, runs_per_agent=ctx.runs_per_agent, funding=funding)
    ctx.files = ctx.demo.write_jsonl(ctx.events_dir)
    t = ctx.demo.truth
    qb = t.quality_break
    return {
        "seed": t.seed,
        "runs": t.runs,
        "agents": len(t.runs_by_agent),
        "events": t.events_by_kind,
        "lines": {f.name: len(ctx.demo.lines[f.name]) for f in ctx.files},
        "bad_lines": len(t.bad_lines),
        "duplicates": t.duplicates,
        "planted": {
            "loss_cluster": {
                "agent": t.cluster.agent,
                "when": f"latency_ms > {t.cluster.latency_ms_gt:g} and tokens_in > {t.cluster.tokens_in_gt}",
                "runs": len(t.cluster.run_ids),
                "of_runs": t.cluster.agent_runs,
            },
            "cost_then_pnl_break": {
                "agent": qb.agent,
                "cost_break": {"run_index": qb.cost_break_index, "run_id": qb.cost_break_run_id,
                               "ts": qb.cost_break_ts, "model": f"{qb.model_before} -> {qb.model_after}",
                               "cost_ratio": qb.cost_ratio},
                "pnl_break": {"run_index": qb.pnl_break_index, "run_id": qb.pnl_break_run_id,
                              "ts": qb.pnl_break_ts},
            },
            "external_pnl": {"agent": t.external_pnl_agent, "runs": t.external_pnl_runs},
        },
    }


def step_ingest(ctx: DemoContext) -> dict[str, Any]:
    report = ingest_paths(ctx.store, [str(f) for f in ctx.files])
    return {**report.to_dict(), "file_names": [f.name for f in ctx.files]}


def step_summary(ctx: DemoContext) -> dict[str, Any]:
    return summary.summarize(ctx.store)


def step_reconcile(ctx: DemoContext) -> dict[str, Any]:
    from alphatrace.api import Database

    report = Database(ctx.store).reconcile()
    return report.to_dict()


def step_agents(ctx: DemoContext) -> dict[str, Any]:
    from alphatrace.api import Database

    return {"agents": Database(ctx.store).agents()}


def step_forensics(ctx: DemoContext) -> dict[str, Any]:
    from alphatrace.forensics import demo as forensics_demo

    return forensics_demo.step(ctx)


def step_governance(ctx: DemoContext) -> dict[str, Any]:
    from alphatrace.api import Database

    db = Database(ctx.store)
    # created_at is the time of writing and is hashed, so it and the hashes that cover it
    # (hash, prev_hash, the head) differ from run to run: the demo document leaves them out to
    # stay byte-identical.
    volatile = ("created_at", "hash", "prev_hash", "head")
    # The default gates, evaluated as the live loop does: catching up run by run (the seed's
    # gates, policies/seed.yaml, would kill every demo agent on noise within its first runs).
    gp = load_governance(None)
    decisions = [{k: v for k, v in d.items() if k not in volatile}
                 for d in db.gates.evaluate(gp, catch_up=True)]
    conf = db.confidence(policy=gp).to_pylist()
    return {
        "confidence": conf,
        "confidence_note": collapse_note({r["agent"]: r["multiplier"] for r in conf},
                                         gp.confidence),
        "with_recovery": with_recovery(db, gp),
        "decisions": decisions,
        # the chain, each record's own metrics, and every evaluation re-decided from the store
        "audit": {k: v for k, v in db.audit_verify().items() if k not in volatile},
    }


def with_recovery(db: Any, gp: GovernancePolicy) -> dict[str, Any]:
    """What the same agents' multipliers would be under the default policy plus
    `recovery`, so the demo shows the alternative beside the seed rule (which stays default)."""
    alt = replace(gp, confidence=gp.confidence.model_copy(update={"recovery": EXAMPLE_RECOVERY}))
    rows = db.confidence(policy=alt).to_pylist()
    return {"recovery": EXAMPLE_RECOVERY,
            "multipliers": {r["agent"]: r["multiplier"] for r in rows}}


STEPS: list[Step] = [
    Step("market", "importing the shipped BTC/ETH bars and funding", step_market),
    Step("simulate", "simulating agent runs over the real prices", step_simulate),
    Step("ingest", "ingesting the simulated events", step_ingest),
    Step("summary", "summarising the demo store", step_summary),
    Step("reconcile", "reconciling signals against real prices", step_reconcile),
    Step("agents", "summarising each agent's dollars", step_agents),
    Step("forensics", "explaining losses: clusters and change points", step_forensics),
    Step("governance", "confidence, gates and the decision log", step_governance),
]


def fresh_store_path(db: Path) -> None:
    """Remove an earlier demo store, refusing anything that is not a DuckDB database file."""
    if db.is_dir():
        raise InputError(f"{db} is a folder; --db needs a file path")
    if db.exists():
        with open(db, "rb") as fh:
            head = fh.read(16)
        if head[8:12] != DUCKDB_MAGIC:
            raise InputError(f"refusing to overwrite {db}: it is not a DuckDB database file")
        # A store another process has open (a running `alphatrace serve`) would be unlinked
        # under it and keep growing unseen: opening it first raises the holder's error instead.
        from alphatrace.store import Store

        Store(db, read_only=True).close()
        try:
            db.unlink()
        except OSError as e:
            raise StoreError(f"cannot remove the old demo store {db}: {e}") from None
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        wal.unlink()


StepHook = Callable[[Step], AbstractContextManager[Any]]


def _no_hook(step: Step) -> AbstractContextManager[Any]:
    return nullcontext()


@contextmanager
def _events_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="alphatrace-demo-") as d:
        yield Path(d)


def run_demo(
    db: Path = DEFAULT_DB,
    *,
    seed: int = DEFAULT_SEED,
    runs_per_agent: int = DEFAULT_RUNS_PER_AGENT,
    data_dir: Path | None = None,
    events_dir: Path | None = None,
    steps: Sequence[Step] | None = None,
    on_step: StepHook = _no_hook,
) -> dict[str, Any]:
    """Build a fresh demo store at `db` and return every step's result by step name.

    The JSONL goes to a temporary folder unless `events_dir` says where to keep it.
    """
    fresh_store_path(db)
    with _events_dir(events_dir) as ev_dir, Store(db) as store:
        ctx = DemoContext(store, data_dir or shipped.data_dir(), ev_dir, seed, runs_per_agent)
        for step in steps if steps is not None else STEPS:
            with on_step(step):
                ctx.results[step.name] = step.run(ctx)
        return dict(ctx.results)
