"""Reading the ledger: filters and the status summary (SQL text + parsing); the per-agent
summary's metrics are `metrics.SUMMARY`.

Filters are validated here so the CLI and the Python API reject the same bad input with the
same one-line message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from alphatrace.errors import InputError
from alphatrace.parse import parse_since as parse_since
from alphatrace.sql import filters

STATUSES = ("realized", "open", "unpriced", "no_signal")

def check_status(status: str | None) -> str | None:
    if status is None:
        return None
    s = status.strip().lower()
    if s not in STATUSES:
        raise InputError(f"status {status!r} is not one of: {', '.join(STATUSES)}")
    return s


def where_sql(agent: str | None, strategy: str | None, since: dt.datetime | None,
              status: str | None) -> tuple[str, list[Any]]:
    """WHERE clause (possibly empty) and its parameters."""
    cond, params = filters(("agent = ?", agent), ("strategy = ?", strategy), ("ts >= ?", since),
                           ("status = ?", status))
    return (" WHERE " + " AND ".join(cond)) if cond else "", params


SUMMARY_SQL = """
SELECT count(*) AS runs,
       count(*) FILTER (WHERE status = 'realized') AS realized,
       count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'unpriced') AS unpriced,
       count(*) FILTER (WHERE status = 'no_signal') AS no_signal,
       count(*) FILTER (WHERE status = 'no_signal' AND n_telemetry > 0) AS telemetry_without_signal,
       count(*) FILTER (WHERE status = 'no_signal' AND n_telemetry = 0 AND n_pnl > 0)
         AS pnl_unknown_run,
       count(*) FILTER (WHERE pnl_source = 'external') AS external_pnl
FROM ledger"""


def summary_line(s: dict[str, int]) -> str:
    """The orphan/status line under the ledger table."""
    return (f"{s['runs']:,} runs: {s['realized']:,} realized · {s['open']:,} open · "
            f"{s['unpriced']:,} unpriced (signals without prices) · {s['no_signal']:,} no_signal "
            f"({s['telemetry_without_signal']:,} telemetry without signal, "
            f"{s['pnl_unknown_run']:,} pnl for unknown runs) · "
            f"{s['external_pnl']:,} with external pnl")
