"""What `alphatrace ... --engine spark` runs: the ledger (`ledger`), or the legs and the ledger
(`reconcile`), of an export written as Parquet, and the reads of `confidence`, the gates and
`audit verify` (`spark_reads`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from alphatrace.engines.spark.governance import SparkReads
from alphatrace.engines.spark.lake import lake
from alphatrace.engines.spark.ledger import ledger_frame
from alphatrace.engines.spark.reconcile import reconcile_frames
from alphatrace.engines.spark.session import session
from alphatrace.ledger.policy import ReconcileConfig


def _write(df: Any, out: Path, table: str, folder: Path, **counts: Any) -> dict[str, int]:
    """`df` to the table `table` of the namespace `out` names (`lake.lake`), or, when `out`
    is a folder, to the Parquet directory `folder`; replaced either way. `counts` (name: a
    Spark aggregate column) are computed while the rows are written (`DataFrame.observe`) and
    returned: counting afterwards would run the plan a second time (the ledger's is ~50 Spark
    stages, about as much CPU as the write itself)."""
    from pyspark.sql import Observation

    obs = Observation(table)
    df = df.observe(obs, *(c.alias(name) for name, c in counts.items())) if counts else df
    lk = lake(out)
    if lk.namespace is not None:
        lk.write(df, table)
    else:
        df.write.mode("overwrite").parquet(str(folder))
    return {name: int(v) for name, v in obs.get.items()} if counts else {}


def _in_order(df: Any, *key: str) -> Any:
    """`df` with each partition's rows sorted by `key` (unique, so the order is total): each
    file written holds its rows in that order, and which rows share a file is set by the
    plan's partitions, the same for the same input and session settings. Not a global
    `orderBy`: its range partitioning samples every row, then shuffles and sorts them all
    again (the legs' and the ledger's sorts spilled at 1M runs on a 1 GB driver;
    bench/RESULTS.md, sessions "sparkledger" and "sparkprice")."""
    return df.sortWithinPartitions(*key)


def _forget_changes(out: Path) -> None:
    """A ledger Spark wrote where an export's change log sits beside it (the namespace `out`,
    or `ledger.parquet` of an export folder) replaced the rows that log described, and Spark
    records no changes of its own: the log is dropped, so governance over these tables judges
    every marked subject at its mark (`replay.every_mark`) instead of reading the changes of a
    ledger that is gone, and missing the runs this one changed."""
    lk = lake(out)
    if lk.namespace is not None:
        session().sql(f"DROP TABLE IF EXISTS {lk.name('ledger_changes')}")
    elif out.name == "ledger.parquet":
        stale = out.parent / "ledger_changes.parquet"
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)


def ledger_to_parquet(tables: Path, out: Path, cfg: ReconcileConfig) -> int:
    """Build the ledger of the export in `tables` on Spark and write it to the Parquet
    directory `out` (or the table `ledger` of the namespace `out`), replaced, each file's rows
    in (ts, run_id) order; the number of rows."""
    from pyspark.sql import functions as F

    df = _in_order(ledger_frame(session(), tables, cfg), "ts", "run_id")
    rows = _write(df, out, "ledger", out, rows=F.count(F.lit(1)))["rows"]
    _forget_changes(out)
    return rows


def reconcile_to_parquet(tables: Path, out: Path, cfg: ReconcileConfig) -> dict[str, Any]:
    """Price every signal of the export in `tables` on Spark and build the ledger; write the
    legs to the Parquet directory `out/legs` (each file's rows in event_id order) and the
    ledger to `out/ledger` (in (ts, run_id) order), or to the tables `legs` and `ledger` of
    the namespace `out`, replaced. The counts `alphatrace reconcile` reports (legs by status,
    runs) and the policy hash."""
    from pyspark.sql import functions as F

    frames = reconcile_frames(session(), tables, cfg)
    try:
        legs = _write(_in_order(frames.legs, "event_id"), out, "legs", out / "legs",
                      legs=F.count(F.lit(1)),
                      **{s: F.count_if(F.col("status") == s)
                         for s in ("realized", "open", "unpriced")})
        runs = _write(_in_order(frames.ledger, "ts", "run_id"), out, "ledger", out / "ledger",
                      rows=F.count(F.lit(1)))["rows"]
        _forget_changes(out)
    finally:
        frames.release()
    return {"legs": legs["legs"], "realized": legs["realized"], "open": legs["open"],
            "unpriced": legs["unpriced"], "runs": runs, "policy_hash": cfg.hash}


def spark_reads(tables: Path) -> SparkReads:
    """The ledger of the export in `tables`, read on the session (`session()`)."""
    return SparkReads(session(), tables)


def forensics_doc(tables: Path, **kwargs: Any) -> dict[str, Any]:
    """`alphatrace forensics` over the export in `tables`, on the session (`session()`)."""
    from alphatrace.engines.spark.forensics import forensics

    return forensics(session(), tables, **kwargs)


def explain_doc(tables: Path, run_id: str, **kwargs: Any) -> dict[str, Any]:
    """`alphatrace explain RUN_ID` over the export in `tables`, on the session."""
    from alphatrace.engines.spark.forensics import explain

    return explain(session(), tables, run_id, **kwargs)


def ledger_names(tables: Path, scope: str) -> set[str]:
    """The agents or strategies (`scope`) in the ledger of the export in `tables`."""
    from alphatrace.engines.spark.forensics import names

    return names(session(), tables, scope)
