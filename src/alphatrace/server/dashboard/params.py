"""Query parameters of the pages and their JSON endpoints, validated in one place so a bad
value gets the same one-line message on a page, from the API and from `alphatrace report`."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from alphatrace.errors import InputError
from alphatrace.forensics.config import NUMERIC_FEATURES
from alphatrace.ledger.query import parse_since

_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")

OVERVIEW_SORT = ("name", "state", "multiplier", "signal_size_usd", "runs", "hit_rate",
                 "mean_net_bps",
                 "total_pnl_usd", "total_cost_usd", "net_usd", "last_decision")
SCATTER_FEATURES = NUMERIC_FEATURES
DEFAULT_POINTS = 1000
MAX_POINTS = 5000
DEFAULT_SCATTER_POINTS = 2000


def _time(name: str, text: str | None, *, end_of_day: bool) -> dt.datetime | None:
    if text is None or not text.strip():
        return None
    try:
        t = parse_since(text)
    except InputError:
        raise InputError(f"{name} {text!r}: use an ISO 8601 date or time (2025-01-31, "
                         "2025-01-31T08:00:00Z), epoch seconds, or a duration back from now (7d)"
                         ) from None
    assert t is not None
    if end_of_day and _DATE.match(text):
        t += dt.timedelta(days=1)
    return t


@dataclass(frozen=True)
class RunFilter:
    """Runs of one strategy (or all) with since ≤ ts < until. A bare date as `until` means
    the end of that day, so `since=until=2025-07-01` is that whole day."""

    strategy: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    since_text: str | None = None
    until_text: str | None = None

    @classmethod
    def parse(cls, strategy: str | None, since: str | None, until: str | None) -> RunFilter:
        s = _time("since", since, end_of_day=False)
        u = _time("until", until, end_of_day=True)
        if s is not None and u is not None and u <= s:
            raise InputError(f"until ({until}) must be after since ({since})")
        return cls(strategy or None, s, u, (since or "").strip() or None,
                   (until or "").strip() or None)

    def where(self) -> tuple[list[str], list[object]]:
        cond: list[str] = []
        params: list[object] = []
        if self.strategy is not None:
            cond.append("strategy = ?")
            params.append(self.strategy)
        if self.since is not None:
            cond.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            cond.append("ts < ?")
            params.append(self.until)
        return cond, params

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (only those set)."""
        out = {"strategy": self.strategy, "since": self.since_text, "until": self.until_text}
        return {k: v for k, v in out.items() if v}


def sort_key(sort: str | None, order: str | None) -> tuple[str, bool]:
    """(column, descending); default: net_usd, highest first."""
    key = (sort or "net_usd").strip()
    if key not in OVERVIEW_SORT:
        raise InputError(f"sort {sort!r} is not one of: {', '.join(OVERVIEW_SORT)}")
    o = (order or ("asc" if key in ("name", "state", "last_decision") else "desc")).strip().lower()
    if o not in ("asc", "desc"):
        raise InputError(f"order {order!r} must be asc or desc")
    return key, o == "desc"


def points(n: int | None, default: int = DEFAULT_POINTS) -> int:
    if n is None:
        return default
    if not 10 <= n <= MAX_POINTS:
        raise InputError(f"points {n} must be between 10 and {MAX_POINTS}")
    return n


def feature(name: str | None, default: str) -> str:
    f = (name or default).strip()
    if f not in SCATTER_FEATURES:
        raise InputError(f"feature {name!r} is not one of: {', '.join(SCATTER_FEATURES)}")
    return f
