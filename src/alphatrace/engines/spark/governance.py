"""Confidence and the gates on Spark, over an export (`alphatrace export --to parquet DIR`).

Spark selects the runs (eligibility, each subject's window, the runs a catch-up needs) with
the same conditions the embedded engine uses (`governance.runs`), puts each subject's runs in
one partition and runs the embedded engine's own computation once per partition, over all of
its subjects (`by_partition`): `confidence.from_runs` (the sequential numpy kernel: Java's
`pow` differs from numpy's, so no factor is computed in Spark SQL), `gates.assess_window` and
`replay.assess_runs` (the metric registry's aggregates and the numpy path columns, on an
in-memory DuckDB connection in the Python worker). Each of those computes many subjects at
once, as the embedded engine calls it, and a subject's result depends on its own runs only.
The driver collects one row per subject (or per subject and point, a partition at a time:
`collect.to_driver`), and the lifecycle, the verdicts (`gates.judge`, `replay.walk`), the
decision log and its signature stay where they are for the embedded engine: `api.Gates` on
the store, the one writer.

Timestamps cross between Spark and Python as epoch microseconds (`unix_micros`,
`timestamp_micros`), never as Python datetimes, which pyspark would read in the local zone.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.engines.spark.collect import to_driver
from alphatrace.engines.spark.dialect import SPARK
from alphatrace.engines.spark.lake import Lake, lake
from alphatrace.governance import confidence, replay
from alphatrace.governance.gates import Assessment, Members, assess_window
from alphatrace.governance.lifecycle import SubjectKey
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import KNOWN_TS, columns_for, eligible_where, subjects_sql

LEDGER_VIEW = "_alphatrace_gov_ledger"
MARKS_VIEW = "_alphatrace_gov_marks"
CHANGED_VIEW = "_alphatrace_gov_changed"
EXCLUSIONS_VIEW = "run_exclusions"  # the name `forensics.exclusions.included_sql` reads
_EPOCH = dt.datetime(1970, 1, 1)
_SORT = [("known_ts", "ascending"), ("ts", "ascending"), ("run_id", "ascending")]

# One row per assessed subject (and point, in a catch-up): `at_us` NULL marks a subject whose
# runs were read but which has no point (it still counts as evaluated).
ASSESSED = ("scope string, subject string, at_us bigint, run_ids array<string>, "
            "metrics string, conclusive boolean, kill string, promote string, "
            "fired array<string>, error string")
_ASSESSED = pa.schema([
    ("scope", pa.string()), ("subject", pa.string()), ("at_us", pa.int64()),
    ("run_ids", pa.list_(pa.string())), ("metrics", pa.string()), ("conclusive", pa.bool_()),
    ("kill", pa.string()), ("promote", pa.string()), ("fired", pa.list_(pa.string())),
    ("error", pa.string())])
SUMMARY = ("agent string, multiplier double, runs bigint, last_us bigint, "
           "min_multiplier double, warning boolean")
HISTORY = ("agent string, _i bigint, run_id string, ts_us bigint, pnl double, factor double, "
           "multiplier_after double")


def micros(t: dt.datetime) -> int:
    """A naive-UTC (or aware) datetime as epoch microseconds, exactly."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return (t - _EPOCH) // dt.timedelta(microseconds=1)


def from_micros(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _ts_sql(t: dt.datetime) -> str:
    return f"timestamp_micros({micros(t)})"


class SparkReads:
    """The ledger of an export, read on Spark: `governance.reads.Reads` for `api.Gates`
    (evaluations and the backtest) and the audit's re-computation, and confidence."""

    dialect = SPARK

    def __init__(self, spark: Any, tables: Path | Lake) -> None:
        lk = lake(tables)
        self.spark = spark
        self.view = f"{LEDGER_VIEW}_{uuid.uuid4().hex}"  # two exports in one session: two views
        df = lk.require(spark, "ledger")
        self.columns = [c for c in df.columns if c != "known_ts"] + ["known_ts"]
        known = KNOWN_TS if "known_ts" in df.columns else "ts"
        keep = ", ".join(c for c in df.columns if c != "known_ts")
        df.createOrReplaceTempView(f"{self.view}_raw")
        spark.sql(f"SELECT {keep}, {known} AS known_ts FROM {self.view}_raw"
                  ).createOrReplaceTempView(self.view)
        exclusions = lk.read(spark, "run_exclusions")
        self.has_exclusions = exclusions is not None
        if exclusions is not None:
            exclusions.createOrReplaceTempView(EXCLUSIONS_VIEW)
        # which reconcile changed which ledger rows, with the subjects they entered or left
        # (a ledger Spark built, or an export from before migration 0023, has none: a
        # catch-up judges every marked subject again at its mark, `replay.every_mark`; one
        # from before 0028 has run_ids only, read with this ledger's rows as the new side)
        changes = lk.read(spark, "ledger_changes")
        self.changes = None if changes is None else f"{self.view}_changes"
        if changes is not None:
            changes.createOrReplaceTempView(f"{self.view}_changes")
        self._membership: dict[dt.datetime, replay.Membership] = {}

    # -- which runs count ---------------------------------------------------------------------

    def eligible_sql(self, gp: GovernancePolicy, columns: list[str],
                     as_of: dt.datetime | None) -> str:
        """`runs.eligible_sql` over the export's ledger."""
        cols = ", ".join(f"l.{c}" for c in columns)
        where = eligible_where("l", None if as_of is None else _ts_sql(as_of),
                               gp.eligibility.exclude_flagged and self.has_exclusions)
        return f"SELECT {cols} FROM {self.view} l WHERE {where}"

    def runs_sql(self, gp: GovernancePolicy, metric_names: list[str]) -> str:
        return self.eligible_sql(gp, columns_for(self.columns, metric_names), None)

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        """`sql` on Spark, each of `tables` a temporary view; the rows collected, timestamps
        as the store's naive UTC ones."""
        for name, tbl in tables.items():
            self.spark.createDataFrame(tbl).createOrReplaceTempView(name)
        return naive_utc(self.spark.sql(sql).toArrow())

    def as_of(self, at_least: dt.datetime | None = None) -> dt.datetime | None:
        v = self.spark.sql(f"SELECT unix_micros(max(known_ts)) AS t FROM {self.view}"
                           ).collect()[0]["t"]
        return None if v is None else from_micros(int(v))

    def has_agent(self, agent: str) -> bool:
        from pyspark.sql import functions as F

        return bool(self.spark.table(self.view).where(F.col("agent") == agent).limit(1)
                    .count())

    # -- confidence ---------------------------------------------------------------------------

    def confidence(self, gp: GovernancePolicy, agent: str | None, as_of: dt.datetime | None,
                   history: bool) -> pa.Table:
        """`confidence.compute(...).summary(warn_below)` (or `.history()` with `history`):
        each agent's runs go to one group, where `confidence.from_runs` runs on them."""
        from pyspark.sql import functions as F

        base = self.eligible_sql(gp, confidence.ledger_columns(gp), as_of)
        df = self.spark.sql(f"SELECT {confidence.select_list(gp)}, known_ts FROM ({base}) b "
                            "WHERE agent IS NOT NULL")
        if agent is not None:
            df = df.where(F.col("agent") == agent)
        kernel = partial(_confidence_partition, gp, history)
        rows = by_partition(df, ["agent"], kernel, HISTORY if history else SUMMARY)
        if not history:  # one row per agent
            got = rows.toArrow()
        else:  # one row per run: a partition at a time
            got = to_driver(rows, "the confidence history (one row per run)",
                            "select one agent (--agent)")
        if history:
            got = got.take(pc.sort_indices(got, [("agent", "ascending"), ("_i", "ascending")]))
            return pa.table([got.column("agent"), got.column("run_id"),
                             _ts_column(got.column("ts_us")), got.column("pnl"),
                             got.column("factor"), got.column("multiplier_after")],
                            names=confidence.HISTORY_SCHEMA.names
                            ).cast(confidence.HISTORY_SCHEMA)
        got = got.take(pc.sort_indices(got, [("agent", "ascending")]))
        return pa.table({"agent": got.column("agent").cast(pa.string()),
                         "multiplier": got.column("multiplier"), "runs": got.column("runs"),
                         "last_ts": _ts_column(got.column("last_us")),
                         "min_multiplier": got.column("min_multiplier"),
                         "warning": got.column("warning")})

    # -- gates --------------------------------------------------------------------------------

    def assess(self, gp: GovernancePolicy, as_of: dt.datetime,
               only: list[SubjectKey] | None = None) -> list[Assessment]:
        """`gates.assess`: each subject's window (its newest `window.runs` eligible runs,
        known inside the time window) selected on Spark, assessed in its group."""
        names = gp.gate_metrics()
        base = self.eligible_sql(gp, columns_for(self.columns, names), as_of)
        secs = gp.gates.window.seconds
        if secs is not None:
            base = (f"SELECT * FROM ({base}) b WHERE known_ts > "
                    f"{_ts_sql(as_of - dt.timedelta(seconds=secs))}")
        subjects = self.spark.sql(subjects_sql(base, list(gp.gates.scope)))
        if only is not None:
            keys = self.spark.createDataFrame([list(k) for k in only],
                                              "scope string, subject string")
            subjects = subjects.join(keys, ["scope", "subject"], "left_semi")
        n = gp.gates.window.runs
        if n is not None:
            subjects.createOrReplaceTempView("_alphatrace_gov_subjects")
            subjects = self.spark.sql(
                "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY scope, subject "
                "ORDER BY known_ts DESC, ts DESC, run_id DESC) AS _rk "
                f"FROM _alphatrace_gov_subjects) w WHERE _rk <= {int(n)}").drop("_rk")
        kernel = partial(_window_partition, gp, names)
        rows = by_partition(subjects, ["scope", "subject"], kernel, ASSESSED)
        return [a for _, a in _assessments(rows.toArrow())]

    def plan(self, gp: GovernancePolicy, marks: Mapping[SubjectKey, dt.datetime],
             target: dt.datetime, after: int | None = None) -> replay.Plan:
        """`replay.plan`: the runs of the subjects with news (`replay.runs_sql` in Spark SQL:
        new runs, runs changed after `after` by the export's `ledger_changes` (with none,
        every marked subject at its mark: `replay.every_mark`), and the newest
        `window.runs` before the mark) selected on Spark, each subject's points and
        assessments computed in its group (`replay.assess_runs`)."""
        columns = columns_for(self.columns, gp.gate_metrics())
        base = self.eligible_sql(gp, columns, target)
        self.spark.createDataFrame(
            [(sc, s, micros(t)) for (sc, s), t in marks.items()],
            "scope string, subject string, mark_us bigint").createOrReplaceTempView(
            f"{MARKS_VIEW}_us")
        self.spark.sql(f"SELECT scope, subject, timestamp_micros(mark_us) AS mark "
                       f"FROM {MARKS_VIEW}_us").createOrReplaceTempView(MARKS_VIEW)
        changed, seen = None, None
        if after is not None and self.changes is not None:
            changed, seen = replay.changes(lambda q: self.query(q, {}), self.changes, after,
                                           bool(marks), lambda: self.view)
        elif after is not None:  # no `ledger_changes` (a ledger Spark built): all may have
            changed = replay.every_mark(marks)
        if changed is not None:
            self.spark.createDataFrame(
                [(r["scope"], r["subject"], micros(r["known_ts"])) for r in changed.to_pylist()],
                "scope string, subject string, known_us bigint").createOrReplaceTempView(
                f"{CHANGED_VIEW}_us")
            self.spark.sql(f"SELECT scope, subject, timestamp_micros(known_us) AS known_ts "
                           f"FROM {CHANGED_VIEW}_us").createOrReplaceTempView(CHANGED_VIEW)
        runs = newest_before_mark(self.spark.sql(replay.runs_sql(
            gp, base, columns, MARKS_VIEW, SPARK, target,
            None if changed is None else CHANGED_VIEW)), gp.gates.window.runs)
        kernel = partial(_runs_partition, gp, target)
        # one row per subject and point (a catch-up over many new runs has about as many
        # points, each with its window's run ids): a partition at a time
        got = _assessments(to_driver(
            by_partition(runs, ["scope", "subject"], kernel, ASSESSED),
            "the catch-up's assessments (one per subject and point)",
            "evaluate once (gates evaluate --once) instead of catching up over every "
            "knowledge time"))
        subjects = {a.key for _, a in got}
        return replay.plan_of([(t, a) for t, a in got if t is not None], subjects, seen)

    def membership(self, target: dt.datetime) -> replay.Membership:
        """`replay.Membership.load`: each agent's first signal in each strategy by `target`
        (read once per target: a few rows per agent)."""
        if target not in self._membership:
            rows = self.spark.sql(
                f"SELECT agent, strategy, unix_micros(min(ts)) AS t FROM {self.view} "
                f"WHERE ts <= {_ts_sql(target)} AND agent IS NOT NULL AND strategy IS NOT NULL "
                "GROUP BY agent, strategy").collect()
            self._membership[target] = replay.Membership.of_rows(
                (r["agent"], r["strategy"], from_micros(int(r["t"]))) for r in rows)
        return self._membership[target]

    def members(self, as_of: dt.datetime) -> Members:
        """`gates.members`: agent → the first (by name) killed strategy it has a run in."""
        def targets(strategies: list[str]) -> dict[str, str]:
            m = self.membership(as_of)
            out = {}
            for agent in sorted(m.first):
                s = m.target(agent, strategies, as_of)
                if s is not None:
                    out[agent] = s
            return out

        return targets


# -- what runs in the Python workers, one call per partition -----------------------------------

_CON: list[duckdb.DuckDBPyConnection] = []


def _con() -> duckdb.DuckDBPyConnection:
    """The worker's in-memory DuckDB connection (one per Python worker, reused across groups):
    it only computes the metrics of the rows handed to it."""
    if not _CON:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")  # Spark runs the groups in parallel
        _CON.append(con)
    return _CON[0]


def by_partition(df: Any, keys: list[str], kernel: Callable[[pa.Table], pa.Table],
                 schema: str) -> Any:
    """`kernel` once per partition of `df` hash-partitioned on `keys` (so all rows of a key are
    in one partition), on all of the partition's rows; `kernel` must order them itself.

    Why not `groupBy(keys).applyInArrow`: that calls the kernel once per key, and each call
    here is an in-memory DuckDB query whose planning costs milliseconds. With 2,000 agents one
    gates evaluation took 36 CPU-s of Python workers at 40k runs (bench/RESULTS.md, 2026-12-05);
    per partition it is one query for all the partition's subjects, as the embedded engine
    makes it."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        got = list(batches)
        if got:
            yield from kernel(pa.Table.from_batches(got)).to_batches()

    return df.repartition(*keys).mapInArrow(run, schema)


def naive_utc(tbl: pa.Table) -> pa.Table:
    """Spark's UTC timestamps as the store's naive UTC ones (same instants), and its large
    strings as strings."""
    fields = []
    for f in tbl.schema:
        if pa.types.is_timestamp(f.type):
            f = pa.field(f.name, pa.timestamp("us"), f.nullable)
        elif pa.types.is_large_string(f.type):
            f = pa.field(f.name, pa.string(), f.nullable)
        fields.append(f)
    return tbl.cast(pa.schema(fields))


def _in_order(tbl: pa.Table, *keys: str) -> pa.Table:
    """The rows by `keys`, then in (known_ts, ts, run_id) order (`runs.ORDER`: a total order,
    byte order on run_id and on the keys, as DuckDB's)."""
    tbl = naive_utc(tbl)
    return tbl.take(pc.sort_indices(tbl, [(k, "ascending") for k in keys] + _SORT))


def _us(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.cast(values, pa.timestamp("us")).cast(pa.int64())


def _ts_column(us: pa.ChunkedArray) -> pa.ChunkedArray:
    return us.cast(pa.timestamp("us"))


def _confidence_partition(gp: GovernancePolicy, history: bool, tbl: pa.Table) -> pa.Table:
    conf = confidence.from_runs(gp, _in_order(tbl))
    if history:
        h = conf.history()
        # `_i`: the row's place in this partition's history, which lists each agent's runs
        # together in run order, so the driver's sort by (agent, _i) restores that order
        return pa.table({"agent": h.column("agent"), "_i": pa.array(range(h.num_rows),
                                                                    pa.int64()),
                         "run_id": h.column("run_id"), "ts_us": _us(h.column("ts")),
                         "pnl": h.column("pnl"), "factor": h.column("factor"),
                         "multiplier_after": h.column("multiplier_after")})
    s = conf.summary(gp.confidence.warn_below)
    return pa.table({"agent": s.column("agent"), "multiplier": s.column("multiplier"),
                     "runs": s.column("runs"), "last_us": _us(s.column("last_ts")),
                     "min_multiplier": s.column("min_multiplier"),
                     "warning": s.column("warning")})


def _encode(rows: list[tuple[int | None, Assessment]], keys: list[SubjectKey]) -> pa.Table:
    """One row per (point, assessment), and for each subject of `keys` with none, one row whose
    fields are NULL but its key."""
    seen = {a.key for _, a in rows}
    out = [{"scope": a.key[0], "subject": a.key[1], "at_us": at, "run_ids": a.run_ids,
            "metrics": json.dumps(a.metrics), "conclusive": a.conclusive, "kill": a.kill,
            "promote": a.promote, "fired": list(a.fired), "error": a.error} for at, a in rows]
    out += [{"scope": k[0], "subject": k[1]} for k in keys if k not in seen]
    return pa.Table.from_pylist(out, schema=_ASSESSED)


def _subject_keys(tbl: pa.Table) -> list[SubjectKey]:
    """The (scope, subject) keys of a partition's rows, each once."""
    pairs = zip(tbl.column("scope").to_pylist(), tbl.column("subject").to_pylist(), strict=True)
    return [(str(sc), str(s)) for sc, s in dict.fromkeys(pairs)]


def _window_partition(gp: GovernancePolicy, names: list[str], tbl: pa.Table) -> pa.Table:
    win = _in_order(tbl, "scope", "subject")
    return _encode([(None, a) for a in assess_window(_con(), gp, win, names)],
                   _subject_keys(win))


def newest_before_mark(runs: Any, n: int | None) -> Any:
    """`replay.runs_sql`'s rows with only the newest `n` runs before each subject's mark
    kept: the cut `replay.window_rows` defines, made before the rows leave the executors
    (Spark's read has no knowledge-time bound, so a subject's whole history would ship)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if n is None:
        return runs
    newest = Window.partitionBy("scope", "subject", "_new").orderBy(
        F.col("known_ts").desc(), F.col("ts").desc(), F.col("run_id").desc())
    return (runs.withColumn("_rk", F.row_number().over(newest))
            .where(F.col("_new") | (F.col("_rk") <= int(n))).drop("_rk"))


def _runs_partition(gp: GovernancePolicy, target: dt.datetime, tbl: pa.Table) -> pa.Table:
    runs = replay.window_rows(_in_order(tbl, "scope", "subject"), gp.gates.window.runs)
    got = replay.assess_runs(_con(), gp, runs, target)
    return _encode([(micros(t), a) for t, a in got], _subject_keys(runs))


def _assessments(tbl: pa.Table) -> list[tuple[dt.datetime | None, Assessment]]:
    """The collected rows as (point, assessment), in (scope, subject, point) order (a subject
    with no point: None and an assessment with no run)."""
    rows = sorted(tbl.to_pylist(), key=lambda r: (r["scope"], r["subject"],
                                                  -1 if r["at_us"] is None else r["at_us"]))
    out: list[tuple[dt.datetime | None, Assessment]] = []
    for r in rows:
        key = (str(r["scope"]), str(r["subject"]))
        if r["run_ids"] is None:
            out.append((None, Assessment(key, [], {})))
            continue
        out.append((None if r["at_us"] is None else from_micros(int(r["at_us"])),
                    Assessment(key, [str(x) for x in r["run_ids"]], json.loads(r["metrics"]),
                               bool(r["conclusive"]), r["kill"], r["promote"],
                               tuple(r["fired"]), r["error"])))
    return out

