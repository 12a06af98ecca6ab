"""Unknown agent, strategy or subject names: the same one-line error, exit 1 and a close match
in every command (`ledger --agent Nobody` and `confidence --agent Nobody` alike)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from alphatrace.config import resolve_db_path
from alphatrace.errors import NotFoundError, StoreError
from alphatrace.store.connection import has_table

SCOPES = ("agent", "strategy")


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The known name a user most likely meant: a case-insensitive equal, else the closest
    by difflib's ratio (at least 0.6), else None."""
    pool = sorted(set(known))
    folded = [k for k in pool if k.casefold() == name.casefold()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if close:
        return close[0]
    lower = {k.casefold(): k for k in pool}
    close = difflib.get_close_matches(name.casefold(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def not_found(what: str, name: str, known: Iterable[str]) -> NotFoundError:
    hint = suggest(name, known)
    return NotFoundError(f"no {what} named {name!r}"
                         + (f"; did you mean {hint!r}?" if hint else ""))


def known(con: duckdb.DuckDBPyConnection, scope: str) -> set[str]:
    """Names of `scope` the store knows: in the ledger or in the decision log."""
    out: set[str] = set()
    if has_table(con, "ledger"):
        out |= {str(r[0]) for r in con.execute(
            f"SELECT DISTINCT {scope} FROM ledger WHERE {scope} IS NOT NULL").fetchall()}
    if has_table(con, "lifecycle"):
        out |= {str(r[0]) for r in con.execute(
            "SELECT DISTINCT subject FROM lifecycle WHERE scope = ?", [scope]).fetchall()}
    return out


def check(con: duckdb.DuckDBPyConnection, agent: str | None = None,
          strategy: str | None = None) -> None:
    """NotFoundError (exit 1, with a close match) when --agent or --strategy names nothing
    the store knows."""
    for scope, name in (("agent", agent), ("strategy", strategy)):
        if name is not None:
            names = known(con, scope)
            if name not in names:
                raise not_found(scope, name, names)


def check_subject(con: duckdb.DuckDBPyConnection, subject: str,
                  scopes: Sequence[str] | None = None) -> None:
    """As `check`, for a name that may be an agent or a strategy."""
    names: set[str] = set()
    for scope in scopes or SCOPES:
        names |= known(con, scope)
    if subject not in names:
        raise not_found(" or ".join(scopes or SCOPES), subject, names)


def require_store(db: Path | None) -> None:
    """Read commands never create a store: the same error as a read-only open."""
    if db is not None and str(db) == ":memory:":
        return
    path = resolve_db_path(db)
    if not path.exists():
        raise StoreError(f"no alphatrace store at {path} (run `alphatrace ingest` first)")
