"""Every `db.` name the README and docs/ show is called here on a real store, so a change to
the Python API cannot silently break a documented call (issue #16 item 11). A name documented
without a call below fails the first test."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import alphatrace as at
from alphatrace.api import Database
from alphatrace.demo import shipped
from alphatrace.demo.pipeline import STEPS, run_demo
from alphatrace.errors import GovernanceError
from alphatrace.forensics.api import Forensics
from alphatrace.governance import signing
from alphatrace.ledger.api import LedgerResult
from alphatrace.store import Store

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED = re.compile(r"\bdb\.([a-z_]+(?:\.[a-z_]+)*)")


def documented_names() -> set[str]:
    texts = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return {m.group(1) for p in texts for m in DOCUMENTED.finditer(p.read_text())}


@dataclass
class World:
    db: Database
    events: Path
    tmp: Path
    seen: list[list[dict[str, Any]]]

    def agent(self) -> str:
        return str(self.db.ledger().table.column("agent")[0].as_py())

    def killed(self) -> tuple[str, str] | None:
        """A killed subject nothing else keeps killed: a strategy class first."""
        ds = self.db.gates.evaluation(record=False, once=True)["decisions"]
        killed = sorted((d["scope"] != "strategy", d["scope"], d["subject"]) for d in ds
                        if d["state"] == "killed")
        return (killed[0][1], killed[0][2]) if killed else None


def _revive(w: World) -> Any:
    killed = w.killed()
    if killed is None:  # wired through, refused for a subject that is not killed
        with pytest.raises(GovernanceError, match="not killed"):
            w.db.revive(w.agent(), reason="test")
        return None
    return w.db.revive(killed[1], reason="test", scope=killed[0])


def _sign(w: World) -> Any:
    signing.generate(w.tmp / "k", w.tmp / "k.pub")
    return w.db.audit_sign(w.tmp / "k", w.tmp / "heads.jsonl")


# In order: each call may use what the ones before it wrote.
CALLS: dict[str, Callable[[World], Any]] = {
    "on_decision": lambda w: w.db.on_decision(w.seen.append),
    "import_market": lambda w: w.db.import_market(*sorted(shipped.data_dir().glob("*.parquet"))),
    "alias": lambda w: w.db.alias("BTC", "BTCUSDT"),
    "aliases": lambda w: w.db.aliases(),
    "symbols": lambda w: w.db.symbols(),
    "resolve": lambda w: w.db.resolve("BTC", "ETHUSDT"),
    "ingest": lambda w: w.db.ingest(w.events),
    "reconcile": lambda w: w.db.reconcile(),
    "ledger": lambda w: w.db.ledger(agent=w.agent(), status="realized"),
    "agents": lambda w: w.db.agents(),
    "explain": lambda w: w.db.explain(str(w.db.ledger().table.column("run_id")[0].as_py())),
    "forensics": lambda w: w.db.forensics(agent=w.agent(), changepoints=False),
    "apply_exclusions": lambda w: w.db.apply_exclusions(),
    "exclusions": lambda w: w.db.exclusions(),
    "gates.evaluate": lambda w: w.db.gates.evaluate(),
    "gates.evaluation": lambda w: w.db.gates.evaluation(record=False),
    "gates.backtest": lambda w: w.db.gates.backtest(),
    "confidence": lambda w: w.db.confidence(),
    "audit_show": lambda w: w.db.audit_show(w.agent()),
    "audit_verify": lambda w: w.db.audit_verify(recompute=False),
    "audit_sign": _sign,
    "revive": _revive,
    "ledger_area": lambda w: w.db.ledger_area.agents() == w.db.agents(),
}


def test_every_documented_name_is_called_here() -> None:
    assert documented_names() == set(CALLS)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("api_names")
    run_demo(tmp / "gen.duckdb", runs_per_agent=30, events_dir=tmp / "events",
             steps=[s for s in STEPS if s.name in ("market", "simulate")])
    return tmp / "events"


def test_each_documented_call_answers(events: Path, tmp_path: Path) -> None:
    with at.connect(tmp_path / "s.duckdb") as db:
        w = World(db, events, tmp_path, [])
        got = {name: call(w) for name, call in CALLS.items()}
    assert got["ingest"].accepted > 0 and got["reconcile"].realized > 0
    assert isinstance(got["ledger"], LedgerResult) and len(got["ledger"]) > 0
    assert isinstance(got["confidence"], pa.Table) and got["confidence"].num_rows > 0
    assert got["audit_verify"]["ok"] and got["gates.evaluate"]
    assert w.seen and w.seen[0] == got["gates.evaluate"]  # on_decision saw the evaluation
    assert got["resolve"][0]["resolved"] == "BTCUSDT" and got["ledger_area"]


def test_an_area_works_alone_on_a_store_or_a_read_connection(tmp_path: Path) -> None:
    """Database(store) and an area on a view of an open connection: no second connection,
    nothing migrated (what the server and the dashboard do)."""
    with Store(tmp_path / "s.duckdb") as store:
        db = Database(store)
        assert db.store is store and db.con is store.con
        view = Store(store.path, read_only=True, con=store.cursor())
        assert Forensics(view).exclusions() == db.exclusions() == []
    assert Database.explain.__doc__ == Forensics.explain.__doc__
