"""`alphatrace reconcile`: price what is new or whose inputs changed, then rebuild the ledger.

Incremental and idempotent. A leg is (re)priced when it is new, still open or unpriced, its
symbol now resolves differently, it was priced before legs recorded their `bar_interval` (a
store upgraded by migration 0008: its next reconcile re-prices those legs once), the policy section changed, its market's bars changed other
than by appending, or funding changed in a way that can reach it (anything but appended
settlements after its exit). Appended bars cannot move a realized leg: its exit bar already
existed and new bars open later. Market changes are detected from a per-symbol digest stored
after each reconcile (`ledger_market_state`), one aggregate pass over the bars.

The ledger is rebuilt only for the runs that changed (`changed_runs`): runs of legs priced or
removed now, runs with events from files newer than the last reconcile (file ids only grow),
and runs whose pnl symbols now resolve differently. It is rebuilt in full with `--full`, on
the first reconcile, after a policy change, when the code that builds it changed
(`ledger_build`), or when the event tables no longer add up to what the ledger counted plus
the new files (an event removed, or rows written other than by ingest). The result equals a
from-scratch rebuild; the tests check that on random histories split into random batches.

This module runs the SQL of `market`, `pricing` and `build` on the store, in one transaction,
and hands `locate` the bars, settlements and signals it searches (as numpy arrays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import duckdb
import numpy as np

from alphatrace.ledger import locate
from alphatrace.ledger.build import LEDGER_COLUMNS, ledger_sql, pnl_keys_sql
from alphatrace.ledger.fingerprint import FIELDS, with_fingerprints
from alphatrace.ledger.market import (
    chosen_bars_sql,
    funding_profile_sql,
    label_sql,
    markets_sql,
    profile_sql,
    settlements_sql,
)
from alphatrace.ledger.policy import ReconcileConfig, params_sql
from alphatrace.ledger.pricing import LEG_COLUMNS, Relations, narrow_sql, priced_legs_sql
from alphatrace.market.symbols import resolution_sql
from alphatrace.store import Store
from alphatrace.store.connection import has_table, one, registered

Step = Callable[[str], None]


@dataclass
class ReconcileReport:
    """docs/architecture.md §CLI keys (legs, realized, open, unpriced) plus what this reconcile did."""

    legs: int
    realized: int
    open: int
    unpriced: int
    priced: int
    runs: int
    policy_hash: str
    full: bool
    rebuilt: int = 0  # ledger rows (runs) rebuilt by this reconcile; `runs` when in full

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TEMP = ("_rc_params", "_rc_profile", "_rc_markets", "_rc_fprofile", "_rc_settle", "_rc_symmap",
         "_rc_pnlkeys", "_rc_todo", "_rc_gone", "_rc_runs", "_rc_stale")


@dataclass(frozen=True)
class Market:
    """The chosen bars (their times as a `locate.Series`, their opens per row) and the funding
    settlements (i, sid, us; `i` is the key of `_rc_settle`, which holds their running sums)
    of one reconcile: what `locate` searches."""

    bars: locate.Series
    opens: np.ndarray
    settlements: locate.Columns


def prepare_market(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig) -> Market:
    """Profiles (temp tables `_rc_profile`, `_rc_markets`, `_rc_fprofile`), the chosen bars
    and the funding running sums (`_rc_settle`)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_profile AS {profile_sql(cfg.bar_interval_s)}")
    intervals = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT interval_s FROM _rc_profile WHERE chosen").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE _rc_markets AS "
                + markets_sql("_rc_profile", label_sql(intervals)))
    chosen = con.sql(chosen_bars_sql("_rc_markets")).fetchnumpy()
    bars, opens = locate.Series.of(chosen["sid"], chosen["us"]), np.ma.getdata(chosen["open"])
    con.execute("CREATE OR REPLACE TEMP TABLE _rc_fprofile AS "
                + funding_profile_sql("_rc_markets"))
    null_marks = one(con, "SELECT coalesce(sum(null_marks) FILTER (WHERE sid IS NOT NULL), 0) "
                          "FROM _rc_fprofile")[0]
    fallback = None
    if null_marks:
        # Missing mark price: the open of the first bar at or after the settlement.
        points = con.sql("SELECT fp.sid, epoch_us(f.ts) AS us FROM funding f "
                         "JOIN _rc_fprofile fp ON fp.symbol = f.symbol AND fp.sid IS NOT NULL "
                         "WHERE f.mark_price IS NULL").fetchnumpy()
        fallback = locate.next_opens(bars, opens, points)
    totals = locate.funding_totals(_settlement_rows(con, fallback))
    with registered(con, "_rc_settle_rows", totals) as rows:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_settle AS SELECT * FROM {rows}")
    settle = {k: totals[k] for k in ("i", "sid", "us")}
    return Market(bars, opens, settle)


def _settlement_rows(con: duckdb.DuckDBPyConnection, fallback: locate.Columns | None
                     ) -> locate.Columns:
    """(sid, us, rm) of the settlements of `_rc_fprofile`'s markets, in (sid, us) order;
    `fallback` (sid, us, open): the marks of settlements without one."""
    if fallback is None:
        return con.sql(settlements_sql("_rc_fprofile", None)).fetchnumpy()
    with registered(con, "_rc_markfb", fallback) as fb:
        return con.sql(settlements_sql("_rc_fprofile", fb)).fetchnumpy()


def locate_exits(con: duckdb.DuckDBPyConnection, rel: Relations, market: Market
                 ) -> locate.Columns:
    """The priceable signals of `rel.todo` with their entry/exit bars and settlements."""
    narrow = con.sql(narrow_sql(rel)).fetchnumpy()
    return locate.exits(narrow, market.bars, market.opens, market.settlements)


_MARKET_CHANGES = """
bars_change AS (
  SELECT coalesce(m.symbol, s.symbol) AS symbol,
    CASE WHEN m.symbol IS NULL AND s.interval_s IS NULL THEN 'same'
         WHEN m.symbol IS NULL OR s.interval_s IS NULL OR m.interval_s <> s.interval_s
           THEN 'changed'
         WHEN m.n = s.bars_n AND m.digest = s.bars_digest THEN 'same'
         WHEN p.prefix_n = s.bars_n AND p.prefix_digest = s.bars_digest THEN 'appended'
         ELSE 'changed' END AS kind
  FROM _rc_markets m
  FULL JOIN ledger_market_state s ON s.symbol = m.symbol
  LEFT JOIN _rc_profile p ON p.symbol = m.symbol AND p.interval_s = m.interval_s
),
funding_change AS (
  SELECT coalesce(f.symbol, s.symbol) AS symbol, s.funding_last AS watermark,
    CASE WHEN f.symbol IS NULL AND coalesce(s.funding_n, 0) = 0 THEN 'same'
         WHEN f.symbol IS NULL THEN 'changed'
         WHEN coalesce(s.funding_n, 0) = 0 THEN 'appended'
         WHEN f.n = s.funding_n AND f.digest = s.funding_digest THEN 'same'
         WHEN f.prefix_n = s.funding_n AND f.prefix_digest = s.funding_digest THEN 'appended'
         ELSE 'changed' END AS kind
  FROM _rc_fprofile f FULL JOIN ledger_market_state s ON s.symbol = f.symbol
)"""

# A leg `l` to re-price (with `sm`, `bc`, `fc` joined on its symbols); see the module docstring.
_STALE_LEG = """(l.status <> 'realized'
   OR (l.bar_interval IS NULL AND l.direction <> 'FLAT')
   OR l.market_symbol IS DISTINCT FROM sm.symbol
   OR bc.kind = 'changed'
   OR (l.include_funding AND l.direction <> 'FLAT'
       AND (fc.kind = 'changed'
            OR (fc.kind = 'appended' AND (fc.watermark IS NULL OR l.exit_ts > fc.watermark)))))"""

_TODO_INCREMENTAL = f"""
WITH {_MARKET_CHANGES}
SELECT a.* FROM alpha a
LEFT JOIN legs l ON l.event_id = a.event_id
LEFT JOIN _rc_symmap sm ON sm.alias = a.symbol
LEFT JOIN bars_change bc ON bc.symbol = l.market_symbol
LEFT JOIN funding_change fc ON fc.symbol = l.market_symbol
WHERE l.event_id IS NULL OR {_STALE_LEG}
"""


def _stale_legs_sql() -> str:
    """The legs to re-price, found in `legs` alone (event_id)."""
    return f"""
WITH {_MARKET_CHANGES}
SELECT l.event_id FROM legs l
LEFT JOIN _rc_symmap sm ON sm.alias = l.symbol
LEFT JOIN bars_change bc ON bc.symbol = l.market_symbol
LEFT JOIN funding_change fc ON fc.symbol = l.market_symbol
WHERE {_STALE_LEG}
"""


def _todo_from_new_files(seen: int) -> str:
    """`_TODO_INCREMENTAL` when every stored leg's signal is still there and every signal
    without a leg came from a file newer than `seen` (the last reconcile's newest file): the
    signals of the stale legs (`_rc_stale`, a table so that the join knows it is small) and
    the new ones, read without comparing all of `alpha` with all of `legs`."""
    return f"""
SELECT * FROM alpha WHERE file_id > {int(seen)}
UNION ALL
SELECT * FROM alpha SEMI JOIN _rc_stale USING (event_id)
"""


def newest_file_id(con: duckdb.DuckDBPyConnection) -> int:
    """The newest ingested or imported file: reconcile records it, the CLI compares against it."""
    parts = ["SELECT max(file_id) AS f FROM ingested_files"]
    if has_table(con, "market_files"):
        parts.append("SELECT max(file_id) FROM market_files")
    return int(one(con, f"SELECT coalesce(max(f), 0) FROM ({' UNION ALL '.join(parts)})")[0])


def reconcile(store: Store, cfg: ReconcileConfig, *, full: bool = False,
              step: Step | None = None) -> ReconcileReport:
    """Bring `legs` and `ledger` up to date with the events, market data and `cfg`."""
    return _reconcile(store, cfg, full, step or (lambda _msg: None))


def _reconcile(store: Store, cfg: ReconcileConfig, full: bool, say: Step) -> ReconcileReport:
    con = store.con
    with store.transaction():
        say("profiling market data")
        market = prepare_market(con, cfg)
        rel = Relations()
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_params AS {params_sql(cfg.policy)}")
        con.execute("CREATE OR REPLACE TEMP TABLE _rc_symmap AS "
                    + resolution_sql("(SELECT DISTINCT symbol FROM alpha)", cfg.aliases))
        con.execute("CREATE OR REPLACE TEMP TABLE _rc_pnlkeys AS " + pnl_keys_sql(
            f"({resolution_sql('(SELECT DISTINCT symbol FROM pnl)', cfg.aliases)})"))
        stale_policy = one(con, "SELECT count(*) FROM legs WHERE policy_hash <> ?",
                           [cfg.hash])[0]
        # Legs priced by other pricing code (e.g. fingerprints of an older form) are re-priced.
        full = full or bool(stale_policy) or _built_by_other_code(con)
        say("selecting signals to price")
        if full:
            con.execute("DELETE FROM legs")
            rel = replace(rel, todo="alpha")
        else:
            seen = _legs_match_old_signals(con)
            if seen is not None:  # the usual case: signals were only added, by ingest
                con.execute("CREATE OR REPLACE TEMP TABLE _rc_stale AS " + _stale_legs_sql())
                con.execute("CREATE OR REPLACE TEMP TABLE _rc_todo AS "
                            + _todo_from_new_files(seen))
                con.execute("CREATE OR REPLACE TEMP TABLE _rc_gone AS "
                            "SELECT event_id, run_id FROM legs WHERE false")
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _rc_todo AS {_TODO_INCREMENTAL}")
                con.execute("CREATE OR REPLACE TEMP TABLE _rc_gone AS "
                            "SELECT event_id, run_id FROM legs ANTI JOIN alpha USING (event_id)")
            con.execute("DELETE FROM legs WHERE event_id IN (SELECT event_id FROM _rc_todo "
                        "UNION ALL SELECT event_id FROM _rc_gone)")
        priced = int(one(con, f"SELECT count(*) FROM {rel.todo}")[0])
        say(f"pricing {priced:,} legs")
        cols = ", ".join(LEG_COLUMNS)
        with registered(con, "_rc_exits", locate_exits(con, rel, market)) as exits:
            legs = with_fingerprints(con.sql(
                priced_legs_sql(rel, cfg.hash, cfg.bar_interval_s, exits)).to_arrow_table())
        with registered(con, "_rc_new_legs", legs) as new:
            con.execute(f"INSERT INTO legs ({cols}) SELECT {cols} FROM {new}")
        say("building the ledger")
        changed = None if full else changed_runs(con, cfg.hash)
        lcols = ", ".join(LEDGER_COLUMNS)
        if changed is None:
            con.execute("DELETE FROM ledger")
        else:
            con.execute(f"DELETE FROM ledger WHERE run_id IN (SELECT run_id FROM {changed})")
        rebuilt = int(one(con, f"INSERT INTO ledger ({lcols}) SELECT {lcols} FROM "
                               f"({ledger_sql(cfg.hash, runs=changed)})")[0])
        _save_state(con)
        legs, realized, open_, unpriced = one(
            con, "SELECT count(*), count(*) FILTER (WHERE status = 'realized'), "
                 "count(*) FILTER (WHERE status = 'open'), "
                 "count(*) FILTER (WHERE status = 'unpriced') FROM legs")
        runs = int(one(con, "SELECT count(*) FROM ledger")[0])
        report = ReconcileReport(int(legs), int(realized), int(open_), int(unpriced), priced,
                                 runs, cfg.hash, full, rebuilt)
        con.execute(
            "INSERT INTO reconcile_log SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, "
            "current_timestamp::TIMESTAMP FROM reconcile_log",
            [cfg.hash, report.legs, report.priced, report.realized, report.open,
             report.unpriced, report.runs, newest_file_id(con)],
        )
        for t in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return report


def _last_seen_file(con: duckdb.DuckDBPyConnection) -> int | None:
    """The newest file the last reconcile saw (None before the first)."""
    last = con.execute("SELECT max_file_id FROM reconcile_log ORDER BY seq DESC LIMIT 1"
                       ).fetchall()
    return int(last[0][0] or 0) if last else None


def _legs_match_old_signals(con: duckdb.DuckDBPyConnection) -> int | None:
    """The last reconcile's newest file, when the signals of files up to it number exactly
    the stored legs (each of those signals got one leg then): nothing was removed or written
    other than by ingest since. None otherwise: the full comparison of `alpha` and `legs`."""
    seen = _last_seen_file(con)
    if seen is None:
        return None
    total, new = one(con, "SELECT count(*), count(*) FILTER (WHERE file_id > ?) FROM alpha",
                     [seen])
    legs = one(con, "SELECT count(*) FROM legs")[0]
    return seen if int(total) == int(legs) + int(new) else None


def ledger_definition() -> str:
    """A hash of the code that prices legs and builds the ledger (their SQL, the fingerprint's
    fields): another version of it means a full re-price and rebuild."""
    pricing = f"{priced_legs_sql(Relations(), 'policy', None, 'exits')}\n{FIELDS}"
    text = f"{LEDGER_COLUMNS}\n{ledger_sql('policy', runs='runs')}\n{pricing}"
    return hashlib.sha256(text.encode()).hexdigest()


def _built_by_other_code(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether there are stored legs and they were priced by a version of the code other than
    this one (or by one from before `ledger_build` recorded it)."""
    built = [r[0] for r in con.execute("SELECT definition FROM ledger_build").fetchall()]
    return built != [ledger_definition()] and bool(one(
        con, "SELECT count(*) FROM (SELECT 1 FROM legs LIMIT 1)")[0])


_KEY_CHANGES = """
SELECT coalesce(n.alias, o.alias) AS alias FROM _rc_pnlkeys n
FULL JOIN ledger_pnl_keys o ON o.alias = n.alias
WHERE n.key IS DISTINCT FROM o.key"""


def changed_runs(con: duckdb.DuckDBPyConnection, policy_hash: str) -> str | None:
    """The temp table (`_rc_runs`) of the runs whose ledger rows must be rebuilt, or None when
    the whole ledger must be (see the module docstring). Runs inside the reconcile's
    transaction, after the legs were priced (`_rc_todo`, `_rc_gone`)."""
    seen = _last_seen_file(con)
    built = con.execute("SELECT definition FROM ledger_build").fetchall()
    if seen is None or [r[0] for r in built] != [ledger_definition()]:
        return None
    if one(con, "SELECT count(*) FROM ledger WHERE policy_hash IS DISTINCT FROM ?",
           [policy_hash])[0]:
        return None
    # Every event of a file the last reconcile saw is counted in the ledger; the rest are new.
    # Anything else (a removed event, a row not written by ingest) rebuilds everything.
    for table, column in (("telemetry", "n_telemetry"), ("pnl", "n_pnl")):
        total, new = one(con, f"SELECT count(*), count(*) FILTER (WHERE file_id > ?) "
                              f"FROM {table}", [seen])
        counted = one(con, f"SELECT coalesce(sum({column}), 0) FROM ledger")[0]
        if int(total) != int(counted) + int(new):
            return None
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _rc_runs AS
SELECT DISTINCT run_id FROM (
  SELECT run_id FROM _rc_todo
  UNION ALL SELECT run_id FROM _rc_gone
  UNION ALL SELECT run_id FROM telemetry WHERE file_id > {seen}
  UNION ALL SELECT run_id FROM pnl WHERE file_id > {seen}
  UNION ALL SELECT run_id FROM alpha WHERE file_id > {seen}
  UNION ALL SELECT run_id FROM pnl SEMI JOIN ({_KEY_CHANGES}) k ON k.alias = pnl.symbol
)""")
    return "_rc_runs"


def _save_state(con: duckdb.DuckDBPyConnection) -> None:
    """The market as priced against, the pnl symbols' keys and the ledger's definition, for
    the next reconcile's change detection."""
    con.execute("DELETE FROM ledger_pnl_keys")
    con.execute("INSERT INTO ledger_pnl_keys SELECT alias, key FROM _rc_pnlkeys "
                "WHERE alias IS NOT NULL")
    con.execute("DELETE FROM ledger_build")
    con.execute("INSERT INTO ledger_build VALUES (?)", [ledger_definition()])
    con.execute("DELETE FROM ledger_market_state")
    con.execute("""
INSERT INTO ledger_market_state
SELECT coalesce(m.symbol, f.symbol), m.interval_s, m.n, make_timestamp(m.last_us), m.digest,
       f.n, make_timestamp(f.last_us), f.digest
FROM _rc_markets m FULL JOIN _rc_fprofile f ON f.symbol = m.symbol""")
