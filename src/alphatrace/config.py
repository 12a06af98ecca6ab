"""Where the store lives: `--db`, else `ALPHATRACE_DB`, else `./alphatrace.duckdb`."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "alphatrace.duckdb"
ENV_DB = "ALPHATRACE_DB"


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    if path is not None and str(path) != "":
        return Path(path)
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return Path(DEFAULT_DB)
