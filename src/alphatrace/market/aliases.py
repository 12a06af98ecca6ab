"""Symbol aliases: stored in the store (`market alias`) or given by the policy (`market.aliases`).

Both map a name agents use (`XBT`, `BTC`) straight to a market symbol; there are no chains, so
an alias never points at another alias. Stored aliases are kept in their normalised form (see
`symbols.norm_symbol`), which makes `btc/usdt` and `BTC-USDT` one alias, not two that could
disagree. Policy aliases apply to the commands given that policy and win over stored ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from alphatrace.errors import InputError, NotFoundError
from alphatrace.market.symbols import norm_symbol
from alphatrace.policy import Policy, load_policy
from alphatrace.store import Store
from alphatrace.store.connection import one


class MarketPolicy(BaseModel):
    """The `market:` section of a policy file."""

    model_config = ConfigDict(extra="forbid")
    aliases: dict[str, str] = {}

    @field_validator("aliases")
    @classmethod
    def _check(cls, v: dict[str, str]) -> dict[str, str]:
        for alias, symbol in v.items():
            if not norm_symbol(str(alias)):
                raise ValueError(f"alias {alias!r} has no letters or digits")
            if not norm_symbol(str(symbol)):
                raise ValueError(f"alias {alias!r} maps to {symbol!r}, which is not a symbol")
        return v


def policy_aliases(policy: Policy | str | Path | None) -> dict[str, str]:
    """The policy's `market.aliases` ({} when none); PolicyError with line/column when bad."""
    if policy is None:
        return {}
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    return dict(pol.section("market", MarketPolicy).aliases)


def _clean(alias: str, symbol: str) -> tuple[str, str]:
    a, s = norm_symbol(alias), symbol.strip().upper()
    if not a:
        raise InputError(f"alias {alias!r} has no letters or digits")
    if not s or any(c.isspace() for c in s):
        raise InputError(f"{symbol!r} is not a market symbol (e.g. BTCUSDT)")
    if a == norm_symbol(s):
        raise InputError(f"alias {alias!r} is the symbol itself; it resolves without an alias")
    return a, s


def set_alias(store: Store, alias: str, symbol: str) -> dict[str, Any]:
    """Store `alias` -> `symbol` (replacing an earlier target). Returns the stored record."""
    a, s = _clean(alias, symbol)
    with store.transaction() as con:
        chained = con.execute("SELECT symbol FROM symbol_aliases WHERE alias = ?",
                              [norm_symbol(s)]).fetchall()
        if chained:
            raise InputError(
                f"{s} is itself an alias of {chained[0][0]}; point {alias} at {chained[0][0]}"
            )
        con.execute("DELETE FROM symbol_aliases WHERE alias = ?", [a])
        con.execute("INSERT INTO symbol_aliases VALUES (?, ?)", [a, s])
        known = int(one(con, "SELECT count(*) FROM (SELECT symbol FROM bars WHERE symbol = ? "
                             "UNION ALL SELECT symbol FROM funding WHERE symbol = ?)", [s, s])[0])
    return {"alias": a, "symbol": s, "imported": known > 0}


def remove_alias(store: Store, alias: str) -> dict[str, Any]:
    a = norm_symbol(alias)
    with store.transaction() as con:
        rows = con.execute("SELECT symbol FROM symbol_aliases WHERE alias = ?", [a]).fetchall()
        if not rows:
            raise NotFoundError(f"no alias {alias!r}")
        con.execute("DELETE FROM symbol_aliases WHERE alias = ?", [a])
    return {"alias": a, "symbol": rows[0][0], "removed": True}


def list_aliases(store: Store) -> list[dict[str, Any]]:
    rows = store.con.execute("SELECT alias, symbol FROM symbol_aliases ORDER BY alias").fetchall()
    return [{"alias": a, "symbol": s} for a, s in rows]
