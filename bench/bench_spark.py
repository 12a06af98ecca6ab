"""Both engines on the same input, stage by stage (issue #18): wall seconds and CPU-seconds per
million runs, Spark's beside the embedded engine's, measured in the same run.

Input (the issue's scale workload, `gen_events.Universe`): N runs of 2,000 agents with
Zipf(1.1)-sized histories (the largest has ~16% of the runs) in 20 strategy classes, each run a
telemetry event and a signal on one of 500 symbols, one run in ten also an external pnl; hourly
bars and 8-hourly funding for every symbol (`gen_events.write_market`, 2.3M bars), imported
into the store before the stages, so reconcile prices every signal on real-shaped bars.

Stages:
- ingest: `alphatrace ingest` of the files into an empty store, against `ingest --engine spark`
  (each file validated in a Spark task, deduplicated across files on Spark);
- reconcile: the embedded `reconcile(full=True)`, against `reconcile --engine spark` over the
  export (every signal priced, the legs and the ledger built on Spark): the same work;
- gates: one evaluation of the default gates at the newest knowledge time, nothing written
  (`gates evaluate --once --dry-run`), on the store against the export's ledger on Spark;
- forensics: `alphatrace forensics` (loss clusters over the store, each agent and strategy;
  change points per agent) on the store against `--engine spark` over the export.

CPU-seconds: this process's CPU time (DuckDB's threads included), plus, for Spark, the JVM's
and every process under it (the Python workers), read from /proc every 0.2 s (workers exit
unaccounted: pyspark's daemon ignores SIGCHLD, so a before/after reading would lose them), reported apart.
Shuffle bytes, and with --spark-stages each Spark stage's tasks, executor CPU, GC, shuffle and
spill, are Spark's own counts (its UI's REST API). With --jvm-threads, the JVM's CPU of each
stage (and of the session's start) by thread name: the JIT compilers, GC, task threads, the
py4j threads that plan the driver's queries (/proc/<jvm>/task, sampled with the rest).

    python bench/bench_spark.py [--runs 100000] [--files 8] [--stages ingest,reconcile]
        [--repeat 2] [--spark-stages 10] [--jvm-threads] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import machine, record

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> dict[int, tuple[float, float]]:
    """(own CPU-seconds, CPU-seconds of its children that ended and were waited for) of `root`
    and of each of its living descendants, by pid."""
    parents: dict[int, int] = {}
    times: dict[int, tuple[float, float]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(d.name)] = int(fields[1])
        times[int(d.name)] = (sum(int(x) for x in fields[11:13]) / TICK,
                              sum(int(x) for x in fields[13:15]) / TICK)
    keep, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in keep]
        keep.update(kids)
        frontier += kids
    return {p: times[p] for p in keep if p in times}


def tree_cpu(root: int) -> float:
    """CPU-seconds of `root` and its living descendants so far (children that ended and were
    waited for included)."""
    return sum(own + kids for own, kids in _tree(root).values())


def _threads(pid: int) -> dict[int, tuple[str, float]]:
    """(name, CPU-seconds) of each living thread of process `pid`, by thread id. The name is
    the thread's comm (15 characters) without its trailing number, so a pool's threads share
    one ("GC Thread#", "C2 CompilerThre", "Thread-")."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            comm = Path(f"/proc/{pid}/task/{t}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/task/{t}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        name = re.sub(r"\d+$", "", comm).strip()
        out[int(t)] = (name, sum(int(x) for x in fields[11:13]) / TICK)
    return out


class _Sampler(threading.Thread):
    """The JVM's process tree sampled every `every` seconds while a Spark stage runs: the
    Python workers come and go (an idle one exits, and pyspark's daemon ignores SIGCHLD, so their
    CPU is in no parent's cutime), so each process's CPU is its last
    sample. What a process spends after its last sample (< `every` seconds) is missed; the
    sampling's own CPU (`own`) is taken off the driver's."""

    def __init__(self, root: int, every: float = 0.2, threads: bool = False) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.threads = root, every, threads
        self.seen: dict[int, tuple[float, float]] = {}
        self.tids: dict[int, tuple[str, float]] = {}
        self.own = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sample()

    def sample(self) -> None:
        now = _tree(self.root)
        tids = _threads(self.root) if self.threads else {}
        with self.lock:
            self.seen.update(now)
            self.tids.update(tids)

    def run(self) -> None:
        while not self.done.wait(self.every):
            t0 = time.thread_time()
            self.sample()
            self.own += time.thread_time() - t0

    def totals(self) -> tuple[float, float]:
        """(the JVM's own CPU-seconds, every other process's under it) so far."""
        with self.lock:
            jvm = self.seen.get(self.root, (0.0, 0.0))
            rest = sum(a + b for p, (a, b) in self.seen.items() if p != self.root)
        return jvm[0], rest + jvm[1]

    def by_thread(self) -> dict[str, float]:
        """The JVM's CPU-seconds so far by thread name (each thread's last sample; a thread
        that started and ended between two samples is in no name)."""
        with self.lock:
            out: dict[str, float] = {}
            for name, cpu in self.tids.values():
                out[name] = out.get(name, 0.0) + cpu
        return out


def _thread_report(before: dict[str, float], after: dict[str, float], jvm: float) -> str:
    """The JVM's CPU-seconds of one stage by thread name, heaviest first, and what no sampled
    thread accounts for (threads that lived less than a sampling period)."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    named = sum(delta.values())
    lines = [f"    JVM by thread: {jvm:.2f} CPU-s, unaccounted {jvm - named:.2f}"]
    for k, v in sorted(delta.items(), key=lambda kv: -kv[1]):
        if v >= 0.05:
            lines.append(f"    {v:8.2f}  {k}")
    return "\n".join(lines)


def reset_peak(pid: int) -> None:
    """Start `pid`'s peak resident set (VmHWM) again from its current one (Linux: writing 5 to
    clear_refs), so a stage's peak is its own, not an earlier stage's."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mib(pid: int) -> float:
    """`pid`'s peak resident set (VmHWM) in MiB since its last `reset_peak`."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return float("nan") if m is None else int(m.group(1)) / 1024


@dataclass
class Cost:
    """A stage's wall seconds and CPU-seconds: this process's (the driver: DuckDB's threads
    included), the JVM's own, and its Python workers'."""

    wall: float
    driver: float
    jvm: float = 0.0
    workers: float = 0.0
    peaks: tuple[float, float] | None = None  # peak RSS (MiB) of the driver and the JVM

    @property
    def cpu(self) -> float:
        return self.driver + self.jvm + self.workers


class Meter:
    """Wall and CPU seconds of a stage; with `jvm`, the Spark JVM's process tree too."""

    def __init__(self, jvm: int | None = None, threads: bool = False) -> None:
        self.jvm, self.threads = jvm, threads

    def __call__(self, fn: Callable[[], Any]) -> tuple[Cost, Any]:
        sampler = _Sampler(self.jvm, threads=self.threads) if self.jvm else None
        j0, w0 = sampler.totals() if sampler else (0.0, 0.0)
        t0s = sampler.by_thread() if sampler else {}
        if sampler:
            sampler.start()
            reset_peak(os.getpid())
            reset_peak(sampler.root)
        d0 = time.process_time()
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        if sampler is None:
            return Cost(wall, time.process_time() - d0), out
        sampler.done.set()
        sampler.join()
        d1 = time.process_time() - sampler.own
        peaks = (peak_mib(os.getpid()), peak_mib(sampler.root))
        sampler.sample()
        j1, w1 = sampler.totals()
        if self.threads:
            print(_thread_report(t0s, sampler.by_thread(), j1 - j0), file=sys.stderr)
        return Cost(wall, d1 - d0, j1 - j0, w1 - w0, peaks), out


def _stages(spark: Any) -> list[dict[str, Any]]:
    """Every Spark stage so far with its metrics (tasks, executor CPU and run time, GC,
    shuffle, spill): Spark's own counts, from its UI's REST API on this machine (the local
    session's UI is on by default)."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
    with urllib.request.urlopen(url, timeout=300) as r:  # slow on a loaded machine
        return list(json.load(r))


def _stage_report(before: list[dict[str, Any]], after: list[dict[str, Any]], top: int) -> str:
    """The stages `after` has that `before` had not, heaviest executor CPU first."""
    seen = {(st["stageId"], st["attemptId"]) for st in before}
    new = [st for st in after if (st["stageId"], st["attemptId"]) not in seen]
    new.sort(key=lambda st: -int(st.get("executorCpuTime", 0)))
    out = []
    for st in new[:top]:
        out.append(
            f"    stage {st['stageId']:>4} tasks {st.get('numTasks', 0):>3} "
            f"cpu {int(st.get('executorCpuTime', 0)) / 1e9:6.2f}s "
            f"run {int(st.get('executorRunTime', 0)) / 1e3:6.2f}s "
            f"gc {int(st.get('jvmGcTime', 0)) / 1e3:5.2f}s "
            f"shw {int(st.get('shuffleWriteBytes', 0)) / 1e6:6.1f}MB "
            f"shr {int(st.get('shuffleReadBytes', 0)) / 1e6:6.1f}MB "
            f"spill {int(st.get('diskBytesSpilled', 0)) / 1e6:5.1f}MB "
            f"in {int(st.get('inputBytes', 0)) / 1e6:6.1f}MB "
            f"out {int(st.get('outputBytes', 0)) / 1e6:6.1f}MB  {st.get('name', '')[:60]}")
    rest = new[top:]
    if rest:
        out.append(f"    ... {len(rest)} more stages, cpu "
                   f"{sum(int(st.get('executorCpuTime', 0)) for st in rest) / 1e9:.2f}s")
    out.append(f"    {len(new)} stages, {sum(int(st.get('numTasks', 0)) for st in new)} tasks, "
               f"executor cpu {sum(int(st.get('executorCpuTime', 0)) for st in new) / 1e9:.2f}s")
    return "\n".join(out)


STAGES = ("ingest", "reconcile", "gates", "forensics")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=4,
                    help="spark.sql.shuffle.partitions (Spark's default, 200, is sized for a "
                         "cluster: on local[2] its per-task cost dominates small stages)")
    ap.add_argument("--agents", type=int, default=2000,
                    help="agents, with Zipf(1.1)-sized histories in 20 strategy classes")
    ap.add_argument("--symbols", type=int, default=500,
                    help="symbols, each with hourly bars and 8-hourly funding over the runs")
    ap.add_argument("--duckdb-memory", default="8GB",
                    help="the embedded store's DuckDB memory_limit (the JVM shares the machine)")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"which stages, comma-separated ({', '.join(STAGES)}); the embedded "
                         "ingest always runs (the others read its store)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each Spark stage this many times in the same session: the "
                         "first pays the fixed costs (JIT, worker start-up), the later ones not")
    ap.add_argument("--spark-stages", type=int, default=0, metavar="N",
                    help="print the N heaviest Spark stages (executor CPU) of each stage")
    ap.add_argument("--jvm-threads", action="store_true",
                    help="print the JVM's CPU of each Spark stage by thread name (JIT "
                         "compilers, GC, task workers, scheduler, ...), sampled from /proc")
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args(argv)
    chosen = [x.strip() for x in args.stages.split(",") if x.strip()]
    unknown = set(chosen) - set(STAGES)
    if unknown:
        ap.error(f"unknown stages: {', '.join(sorted(unknown))}")

    import gen_events
    from alphatrace.engines.spark.forensics import forensics as spark_forensics
    from alphatrace.engines.spark.ingest import ingest_sharded
    from alphatrace.engines.spark.run import reconcile_to_parquet, spark_reads
    from alphatrace.engines.spark.session import session
    from alphatrace.forensics.api import Forensics
    from alphatrace.governance.api import Gates
    from alphatrace.governance.policy import load_governance
    from alphatrace.ledger.policy import load as load_reconcile
    from alphatrace.ledger.reconcile import reconcile
    from alphatrace.market.importer import import_files
    from alphatrace.store import Store
    from alphatrace.store.export import export_parquet
    from alphatrace.store.ingest import ingest_paths

    (HERE / "out").mkdir(exist_ok=True)  # a fresh clone has none (it is not tracked)
    where = Path(tempfile.mkdtemp(prefix="bench_spark_", dir=HERE / "out"))
    header = machine("duckdb", "pyspark", "pyarrow")
    rows: list[tuple[str, Cost, Cost, str]] = []
    try:
        per = args.runs // args.files
        universe = gen_events.Universe(agents=args.agents, symbols=args.symbols)
        files = []
        for k in range(args.files):
            p = where / f"events{k:02d}.jsonl"
            gen_events.generate(p, per, seed=k, shape="typed", first_run=k * per,
                                universe=universe)
            files.append(str(p))
        runs = per * args.files
        market = where / "market" / "bars.parquet"
        market.parent.mkdir()
        gen_events.write_market(market, universe)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = session()
        spark.sparkContext.setLogLevel("ERROR")
        spark.conf.set("spark.sql.shuffle.partitions", str(args.partitions))
        jvm = spark.sparkContext._gateway.proc.pid
        duck, sprk = Meter(), Meter(jvm, threads=args.jvm_threads)
        if args.jvm_threads:  # the session's start, before any stage
            up = _Sampler(jvm, threads=True)
            print(f"session start: {args.partitions} shuffle partitions\n"
                  + _thread_report({}, up.by_thread(), up.totals()[0]), file=sys.stderr)
        cfg = load_reconcile()

        db = where / "store.duckdb"
        lake = where / "export"

        def stage(name: str, embedded: Callable[[], Any], on_spark: Callable[[], Any],
                  note: str = "") -> None:
            d, _ = duck(embedded)
            for k in range(args.repeat):
                s0 = _stages(spark)
                c, _ = sprk(on_spark)
                s1 = _stages(spark)
                shuffle = sum(int(st.get("shuffleWriteBytes", 0)) for st in s1) - sum(
                    int(st.get("shuffleWriteBytes", 0)) for st in s0)
                label = name if args.repeat == 1 else f"{name} #{k + 1}"
                peaks = ("" if c.peaks is None else
                         f"; peak RSS driver {c.peaks[0]:.0f} MiB, JVM {c.peaks[1]:.0f} MiB")
                rows.append((label, d, c, f"shuffle {shuffle / 1e6:.1f} MB{peaks}"
                             f"{'; ' + note if note else ''}"))
                print(rows[-1], file=sys.stderr)
                if args.spark_stages:
                    print(_stage_report(s0, s1, args.spark_stages), file=sys.stderr)

        with Store(db) as store:
            # The embedded engine shares this machine with Spark's JVM and Python workers.
            # DuckDB's default (80% of RAM) let this process reach 15.8 GB at 10M runs, with
            # the JVM's 7 GB beside it: 0.9 GB short of the 24 GB machine (RESULTS.md,
            # 2026-12-05). Its operators spill beyond the limit instead.
            store.con.execute(f"SET memory_limit = '{args.duckdb_memory}'")
            import_files(store, [str(market.parent)])  # the bars every signal is priced on
            if "ingest" in chosen:
                stage("ingest", lambda: ingest_paths(store, files),
                      lambda: ingest_sharded(files, where / "lake"))
            else:
                ingest_paths(store, files)
            export_parquet(store.con, lake)  # the events, for Spark's reconcile
            if "reconcile" in chosen:
                stage("reconcile (legs + ledger)", lambda: reconcile(store, cfg, full=True),
                      lambda: reconcile_to_parquet(lake, where / "spark_rc", cfg))
            else:
                reconcile(store, cfg, full=True)
            export_parquet(store.con, lake)  # now with the ledger
            gp = load_governance(None)
            log = Store(where / "log.duckdb")  # the Spark side's decision log: empty
            if "gates" in chosen:
                stage("gates (one evaluation, dry run)",
                      lambda: Gates(store).evaluation(policy=gp, record=False, once=True),
                      lambda: Gates(log, spark_reads(lake)).evaluation(
                          policy=gp, record=False, once=True))
            log.close()
            if "forensics" in chosen:
                stage("forensics (clusters + change points)",
                      lambda: Forensics(store).forensics(),
                      lambda: spark_forensics(spark, lake),
                      "Spark: selection and change points on Spark, slice search on the driver")
    finally:
        shutil.rmtree(where, ignore_errors=True)

    m = runs / 1e6
    lines = [f"## bench_spark.py: {runs:,} runs of {args.agents:,} agents on {args.symbols} "
             f"symbols in {args.files} files (`--runs {args.runs} --files {args.files} "
             f"--partitions {args.partitions}`)", "", header, "",
             "| stage | DuckDB wall s | DuckDB CPU-s / M runs | Spark wall s | Spark CPU-s / M runs "
             "| of which driver / JVM / Python workers | Spark/DuckDB CPU | note |",
             "|---|---|---|---|---|---|---|---|"]
    for name, d, c, note in rows:
        lines.append(f"| {name} | {d.wall:.2f} | {d.cpu / m:.1f} | {c.wall:.2f} | {c.cpu / m:.1f} "
                     f"| {c.driver / m:.0f} / {c.jvm / m:.0f} / {c.workers / m:.0f} "
                     f"| {c.cpu / d.cpu:.2f}× | {note} |")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
