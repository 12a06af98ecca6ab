"""Confidence: each agent's running multiplier over its eligible runs in (known_ts, ts, run_id)
order: the multiplier moves when a run's PnL becomes known.

Each run's factor comes from the first matching rule (default: the seed's ×0.85 under −20 bps,
×0.95 under 0, else ×1). Without recovery or floor the multiplier after run t is the product
of the factors so far; since factors take a handful of values, that is Π_k f_k^{c_k(t)} with
c_k(t) the number of runs so far that took factor k: integer counts (exact, vectorised,
independent of summation order) instead of a float running product. With `recovery` (winning
runs that matched no rule get that factor, the multiplier is capped at 1.0) or `floor` the
multiplier is path-dependent both ways, so it is one sequential pass over the sorted runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.arrays import floats
from alphatrace.governance import expr
from alphatrace.governance.policy import RUN_VARIABLES, ConfidenceSection, GovernancePolicy
from alphatrace.governance.runs import ORDER, eligible_sql

HISTORY_SCHEMA = pa.schema([
    ("agent", pa.string()), ("run_id", pa.string()), ("ts", pa.timestamp("us")),
    ("pnl", pa.float64()), ("factor", pa.float64()), ("multiplier_after", pa.float64()),
])

IntArray = npt.NDArray[np.int64]


def _runs(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, agent: str | None,
          as_of: dt.datetime | None) -> pa.Table:
    """Eligible runs in (known_ts, ts, run_id) order; grouping by agent happens on integer codes later,
    which is much cheaper than sorting a million rows by agent name in SQL."""
    base, params = eligible_sql(con, gp, ledger_columns(gp), as_of)
    where = "agent IS NOT NULL"
    if agent is not None:
        where += " AND agent = ?"
        params = [*params, agent]
    sql = f"SELECT {select_list(gp)} FROM ({base}) WHERE {where} ORDER BY {ORDER}"
    return con.sql(sql, params=params).to_arrow_table()


def ledger_columns(gp: GovernancePolicy) -> list[str]:
    """The ledger columns confidence reads: the run's identity and times, and the columns of
    the run variables its rules use."""
    return ["agent", "run_id", "ts", "known_ts",
            *dict.fromkeys(RUN_VARIABLES[v] for v in gp.run_variables())]


def select_list(gp: GovernancePolicy) -> str:
    """The columns `from_runs` reads, over eligible ledger rows (SQL both engines read)."""
    sel = "".join(f", {RUN_VARIABLES[v]} AS {v}" for v in gp.run_variables())
    return f"agent, CAST(run_id AS STRING) AS run_id, ts{sel}"


def factors(gp: GovernancePolicy, env: dict[str, expr.FloatArray], n: int) -> tuple[IntArray, expr.FloatArray]:
    """Per run: the index of the factor it took (rules 0..K-1, K default, K+1 recovery) and
    the factor."""
    conf = gp.confidence
    k = len(gp.factors)
    idx = np.full(n, k, dtype=np.int64)
    open_ = np.ones(n, dtype=np.bool_)
    for i, f in enumerate(gp.factors):
        m = expr.evaluate(f.ast, env, n) & open_
        idx[m] = i
        open_ &= ~m
    if conf.recovery is not None:
        pnl = env["pnl"]
        with np.errstate(invalid="ignore"):
            idx[open_ & (pnl > 0)] = k + 1
    table = np.array([*(f.rule.factor for f in gp.factors), conf.default_factor,
                      conf.recovery if conf.recovery is not None else 1.0], dtype=np.float64)
    return idx, table[idx]


def _agent_order(agents: pa.ChunkedArray) -> tuple[IntArray, IntArray]:
    """(permutation to (agent, known_ts, ts, run_id) order, sorted agent code per permuted row).

    The rows arrive in (known_ts, ts, run_id) order; a stable sort on the agent's rank among the sorted
    distinct names keeps that order inside each agent."""
    enc = pc.dictionary_encode(agents).combine_chunks()
    names = enc.dictionary.to_numpy(zero_copy_only=False)
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names, kind="stable")] = np.arange(len(names))
    codes = rank[np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    order = np.argsort(codes, kind="stable")
    return order, codes[order]


def _product(idx: IntArray, table: expr.FloatArray, starts: npt.NDArray[np.bool_]) -> expr.FloatArray:
    """Π_k table[k] ** (runs so far in the group that took factor k)."""
    n = len(idx)
    group = np.cumsum(starts) - 1
    start_pos = np.flatnonzero(starts)
    out = np.ones(n, dtype=np.float64)
    for k, f in enumerate(table.tolist()):
        if f == 1.0:
            continue
        hit = (idx == k).astype(np.int64)
        if not hit.any():
            continue
        cs = np.cumsum(hit)
        before = cs[start_pos] - hit[start_pos]
        counts = cs - before[group]
        # f**c for each distinct count once, then gathered: the same np.power values as
        # np.power(f, counts), for a fraction of the pow calls (counts repeat along a path).
        out *= np.power(f, np.arange(int(counts.max()) + 1, dtype=np.int64))[counts]
    return out


def _clamped(fac: expr.FloatArray, starts: npt.NDArray[np.bool_], cap: bool,
             floor: float | None) -> expr.FloatArray:
    out = np.empty(len(fac), dtype=np.float64)
    lo = floor if floor is not None else 0.0
    m = 1.0
    for i, (f, s) in enumerate(zip(fac.tolist(), starts.tolist(), strict=True)):
        m = f if s else m * f
        if cap and m > 1.0:
            m = 1.0
        if m < lo:
            m = lo
        out[i] = m
    return out


@dataclass(frozen=True)
class Confidence:
    """Every eligible run's factor and multiplier, in (agent, known_ts, ts, run_id) order."""

    runs: pa.Table            # as fetched, (known_ts, ts, run_id) order
    order: IntArray           # runs.take(order) is (agent, known_ts, ts, run_id) order
    starts: npt.NDArray[np.bool_]
    pnl: expr.FloatArray
    factor: expr.FloatArray
    multiplier: expr.FloatArray

    def history(self) -> pa.Table:
        """(agent, run_id, ts, pnl, factor, multiplier_after) per run."""
        return self._history(0, len(self.order))

    def _history(self, b: int, e: int) -> pa.Table:
        take = pa.array(self.order[b:e])
        return pa.table([self.runs.column("agent").take(take), self.runs.column("run_id").take(take),
                         self.runs.column("ts").take(take).cast(pa.timestamp("us")),
                         pa.array(self.pnl[b:e]), pa.array(self.factor[b:e]),
                         pa.array(self.multiplier[b:e])], schema=HISTORY_SCHEMA)

    @cached_property
    def _segments(self) -> dict[str, tuple[int, int]]:
        """Agent → [start, end) of its runs in (agent, known_ts, ts, run_id) order."""
        start_pos = np.flatnonzero(self.starts)
        ends = np.append(start_pos[1:], len(self.order))
        names = self.runs.column("agent").take(pa.array(self.order[start_pos])).to_pylist()
        return {str(a): (int(b), int(e)) for a, b, e in zip(names, start_pos, ends, strict=True)}

    def agent_history(self, agent: str) -> pa.Table:
        """`history()` of one agent (empty when it has no eligible run): the dashboard slices
        an agent's path from the one all-agent computation it keeps per data version."""
        return self._history(*self._segments.get(agent, (0, 0)))

    def summary(self, warn_below: float | None) -> pa.Table:
        """One row per agent (sorted): multiplier after its last run, runs, last run time,
        lowest multiplier, and whether it is under `warn_below`."""
        n = len(self.order)
        start_pos = np.flatnonzero(self.starts)
        end_pos = np.append(start_pos[1:] - 1, n - 1) if n else np.array([], dtype=np.int64)
        lowest = (np.minimum.reduceat(self.multiplier, start_pos) if n
                  else np.array([], dtype=np.float64))
        last = self.multiplier[end_pos]
        warn = last < warn_below if warn_below is not None else np.zeros(len(last), dtype=np.bool_)
        rows = pa.array(self.order[end_pos])
        return pa.table({
            "agent": self.runs.column("agent").take(rows),
            "multiplier": pa.array(last, pa.float64()),
            "runs": pa.array((end_pos - start_pos + 1).astype(np.int64)),
            "last_ts": self.runs.column("ts").take(rows).cast(pa.timestamp("us")),
            "min_multiplier": pa.array(lowest, pa.float64()),
            "warning": pa.array(warn, pa.bool_()),
        })


def compute(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, agent: str | None = None,
            as_of: dt.datetime | None = None) -> Confidence:
    return from_runs(gp, _runs(con, gp, agent, as_of))


def from_runs(gp: GovernancePolicy, runs: pa.Table) -> Confidence:
    """The confidence of eligible runs (columns of `select_list`) given in (known_ts, ts,
    run_id) order: the one computation, whether the runs are the whole ledger's (the embedded
    engine) or one agent's (a Spark group; each agent's path depends on its runs only)."""
    n = runs.num_rows
    order, codes = _agent_order(runs.column("agent")) if n else (
        np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    env = {v: floats(runs.column(v))[order] for v in gp.run_variables()}
    idx, fac = factors(gp, env, n)
    starts = np.ones(n, dtype=np.bool_)
    if n > 1:
        starts[1:] = codes[1:] != codes[:-1]
    conf = gp.confidence
    if conf.recovery is None and conf.floor is None:
        table = np.array([*(f.rule.factor for f in gp.factors), conf.default_factor, 1.0])
        mult = _product(idx, table, starts)
    else:
        mult = _clamped(fac, starts, conf.recovery is not None, conf.floor)
    return Confidence(runs, order, starts, env["pnl"], fac, mult)


def history(con: duckdb.DuckDBPyConnection, gp: GovernancePolicy, agent: str | None = None,
            as_of: dt.datetime | None = None) -> pa.Table:
    """Every eligible run's factor and the multiplier after it: (agent, run_id, ts, pnl,
    factor, multiplier_after), ordered (agent, known_ts, ts, run_id)."""
    return compute(con, gp, agent, as_of).history()


# --- how a multiplier reads (display only) --------------------------------------------------

COLLAPSED_BELOW = 0.01  # a multiplier under 1 % sizes an agent at almost nothing
# A recovery that separates the demo's winners from its losers under the seed's decay
# (×1.02 is too weak against ×0.85 losses: every demo agent still collapses with it).
EXAMPLE_RECOVERY = 1.15
EXAMPLE_FLOOR = 0.25


def percent(m: float | None) -> str:
    """A multiplier as a percentage a person reads at a glance: "85.0 %", "0.35 %",
    "< 0.01 %"; never scientific notation (1e-22 of a position is "< 0.01 %")."""
    if m is None or not np.isfinite(m):
        return "—"
    p = m * 100
    if p == 0:
        return "0 %"
    if abs(p) < 0.01:
        return "< 0.01 %"
    return f"{p:.2f} %" if abs(p) < 10 else f"{p:.1f} %"


def collapse_note(multipliers: dict[str, float], conf: ConfidenceSection) -> str | None:
    """One line when multipliers collapsed under a policy whose multiplier can only fall
    (no `recovery`, no `floor`), naming the options that change that; None otherwise."""
    if conf.recovery is not None or conf.floor is not None:
        return None
    low = sorted(a for a, m in multipliers.items() if m is not None and m < COLLAPSED_BELOW)
    if not low:
        return None
    who = low[0] if len(low) == 1 else f"{len(low)} of {len(multipliers)} agents"
    return (f"{who} under {COLLAPSED_BELOW * 100:g} %: this policy has no confidence.recovery or "
            "confidence.floor, so a multiplier only falls over a long history; set recovery "
            f"(e.g. {EXAMPLE_RECOVERY:g}) or floor (e.g. {EXAMPLE_FLOOR:g}) in a policy file")
