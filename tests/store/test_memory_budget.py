"""DuckDB's memory budget during a bulk file ingest (store/memory_budget.py): set for a store
file this process owns, never for a served or in-memory store, and restored afterwards."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphatrace.errors import InputError
from alphatrace.store import Store
from alphatrace.store.connection import SERVED
from alphatrace.store.ingest import ingest_paths

# 400 MB = 400,000,000 bytes = 381.47 MiB, which DuckDB shows truncated to one decimal.
BUDGET_SHOWN = "381.4 MiB"


def shown(store: Store) -> str:
    return str(store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def events_file(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"run_id": f"r{i}", "realized_pnl_bps": i}) + "\n"
                            for i in range(n)))
    return path


def ingest_seeing_limit(store: Store, files: list[Path]) -> list[str]:
    """Ingest `files`; the memory limit as seen after each chunk, inside the file's transaction."""
    seen: list[str] = []
    ingest_paths(store, [str(f) for f in files], progress=lambda _n: seen.append(shown(store)))
    return seen


def test_a_file_store_ingests_under_the_budget_then_has_its_limit_back(
        file_store: Store, tmp_path: Path) -> None:
    before = shown(file_store)
    assert before != BUDGET_SHOWN
    seen = ingest_seeing_limit(file_store, [events_file(tmp_path / "a.jsonl"),
                                            events_file(tmp_path / "b.jsonl", 5)])
    assert seen == [BUDGET_SHOWN, BUDGET_SHOWN]
    assert shown(file_store) == before
    assert file_store.con.execute("SELECT count(*) FROM pnl").fetchall() == [(5,)]


def test_the_limit_comes_back_when_a_file_fails(file_store: Store, tmp_path: Path) -> None:
    before = shown(file_store)
    good = events_file(tmp_path / "a.jsonl")
    cut = tmp_path / "b.jsonl.gz"
    cut.write_bytes(gzip.compress(good.read_bytes())[:-12])  # truncated: no end of stream
    seen: list[str] = []
    with pytest.raises(InputError, match="cannot read"):
        ingest_paths(file_store, [str(good), str(cut)],
                     progress=lambda _n: seen.append(shown(file_store)))
    assert seen == [BUDGET_SHOWN]
    assert shown(file_store) == before


@pytest.mark.parametrize(("custom", "custom_shown"), [
    ("2GB", "1.8 GiB"),  # 2e9 bytes = 1.86 GiB: above the budget
    ("100MB", "95.3 MiB"),  # 1e8 bytes = 95.37 MiB: below it
])
def test_a_limit_the_caller_set_is_left_as_it_is(file_store: Store, tmp_path: Path, custom: str,
                                                 custom_shown: str) -> None:
    file_store.con.execute(f"SET memory_limit = '{custom}'")
    assert ingest_seeing_limit(file_store, [events_file(tmp_path / "a.jsonl")]) == [custom_shown]
    assert shown(file_store) == custom_shown


def test_the_default_comes_back_exactly_after_many_ingests(file_store: Store,
                                                           tmp_path: Path) -> None:
    """Restoring by the shown, rounded text would lower the limit a step each time."""
    before = shown(file_store)
    f = events_file(tmp_path / "a.jsonl")
    for _ in range(3):
        assert ingest_seeing_limit(file_store, [f]) == [BUDGET_SHOWN]
    assert shown(file_store) == before


@pytest.fixture
def served(file_store: Store) -> Iterator[Store]:
    """`file_store` as `alphatrace serve` holds it (server/app.py adds its file to SERVED)."""
    assert file_store.path is not None
    key = file_store.path.resolve()
    SERVED.add(key)
    try:
        yield file_store
    finally:
        SERVED.discard(key)


def test_a_served_store_is_never_capped(served: Store, tmp_path: Path) -> None:
    before = shown(served)
    assert ingest_seeing_limit(served, [events_file(tmp_path / "a.jsonl")]) == [before]


def test_an_in_memory_store_is_never_capped(store: Store, tmp_path: Path) -> None:
    before = shown(store)
    assert ingest_seeing_limit(store, [events_file(tmp_path / "a.jsonl")]) == [before]
