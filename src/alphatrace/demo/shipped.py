"""The market data slice shipped inside the package.

The demo must work from a fresh install with no network, so it imports the Parquet files under
`alphatrace/demo/data/` (or a folder given with --data) with the market area's importer.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alphatrace.errors import InputError
from alphatrace.market.importer import import_files
from alphatrace.store import Store

SUFFIXES = (".parquet", ".csv")


def data_dir() -> Path:
    """The shipped slice's folder (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files("alphatrace.demo").joinpath("data")))


def market_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of market data")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise InputError(
            f"{directory}: no Parquet or CSV market files (the demo needs 1h bars of at least one "
            "symbol; pass --data DIR to use other files)"
        )
    return files


def import_market(store: Store, files: list[Path]) -> dict[str, Any]:
    """Through the market area's importer, like `alphatrace market import` (same report)."""
    report = import_files(store, [str(f) for f in files])
    return {**report.to_dict(), "file_names": [f.name for f in files]}
