"""The forensics area of the Python API: `Forensics`, an object on a store whose methods
`alphatrace.Database` exposes (`db.explain`, `db.forensics`, `db.exclusions`, ...).

This layer fetches relations (data.py) and hands arrays to the pure modules; the CLI prints
what it returns.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.arrays import floats
from alphatrace.errors import InputError, NotFoundError
from alphatrace.forensics import changepoints as cpmod
from alphatrace.forensics import clusters as clmod
from alphatrace.forensics import data
from alphatrace.forensics import exclusions as exmod
from alphatrace.forensics.config import NUMERIC_FEATURES, ForensicsConfig, default_horizon_s, load
from alphatrace.forensics.explain import explain as explain_doc
from alphatrace.forensics.slices import Categorical, PassesOn
from alphatrace.parse import parse_since
from alphatrace.policy import Policy
from alphatrace.store import Store
from alphatrace.utc import utc_result

PolicyArg = str | Path | Policy | None
Progress = Callable[[int, int], None]


def load_config(policy: PolicyArg) -> tuple[ForensicsConfig, Policy]:
    """The forensics section and the whole policy (both engines read the policy this way)."""
    return load(str(policy) if isinstance(policy, Path) else policy)


def _categorical(col: pa.ChunkedArray) -> Categorical:
    """Dictionary-encode in Arrow: codes stay numeric, labels are the distinct values only."""
    enc = pc.dictionary_encode(col.combine_chunks())
    codes = np.asarray(pc.fill_null(enc.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False))
    return Categorical(codes.astype(np.int64), tuple(enc.dictionary.to_pylist()))


# (frame, feature columns, numeric feature names) of a search population
PopulationFrame = tuple[pa.Table, dict[str, Any], set[str]]
# attr keys per frame query of `Forensics._populations`: its columns are the union of its
# populations' keys, so a store whose agents carry keys of their own takes several queries
_WIDE = 64


def _features(frame: pa.Table, attrs: dict[str, str], cfg: ForensicsConfig) -> PopulationFrame:
    """The search's columns of `frame` (`data.cluster_frame`): numbers as floats, the rest as
    categoricals; `attrs` names the attr columns it keeps (column → key)."""
    cc = cfg.clusters
    names = {c: (k if k not in cc.features else f"attrs.{k}") for c, k in attrs.items()}
    numeric = {*NUMERIC_FEATURES, *names.values()}
    columns: dict[str, Any] = {}
    for c in frame.column_names:
        if c in ("run_id", "ts", "y") or c.startswith("_"):
            continue
        name = names.get(c, c)
        columns[name] = floats(frame[c]) if name in numeric else _categorical(frame[c])
    return frame, columns, numeric


def _chunks(keys: list[list[str]], width: int) -> list[list[int]]:
    """Consecutive indices of `keys`, grouped while their union has at most `width` keys (a
    population with more is a group of its own)."""
    out: list[list[int]] = []
    seen: set[str] = set()
    for i, ks in enumerate(keys):
        if not out or len(seen | set(ks)) > width:
            out.append([])
            seen = set()
        out[-1].append(i)
        seen |= set(ks)
    return out


def _rows_by(col: pa.ChunkedArray) -> dict[str, npt.NDArray[np.int64]]:
    """Each non-NULL value's row indices in `col`, ascending (one stable sort, not a scan
    per value)."""
    cat = _categorical(col)
    order = np.argsort(cat.codes, kind="stable")
    sorted_codes = cat.codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    return {str(cat.labels[g[0]]): order[a:b]
            for a, b in itertools.pairwise([0, *bounds.tolist(), len(order)])
            if (g := sorted_codes[a:b]).size and g[0] >= 0}


class Forensics:
    """Explain a run, search for loss clusters and change points, exclude runs
    (docs/forensics.md)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @utc_result
    def explain(self, run_id: str, *, policy: PolicyArg = None) -> dict[str, Any]:
        """The run's ledger row, dollar waterfall, causes with evidence and a `because`."""
        cfg, pol = load_config(policy)
        con = self.store.con
        row = data.ledger_row(con, run_id)
        if row is None:
            if data.known_run(con, run_id):
                raise NotFoundError(f"run {run_id!r} has events but no ledger row yet: run `alphatrace reconcile`")
            raise NotFoundError(f"unknown run {run_id!r}")
        hist = data.history(con, row, cfg.explain.history_runs)
        legs = data.leg_paths(con, run_id, default_horizon_s(pol), cfg.regime.vol_lookback)
        return explain_doc(row, hist, legs, cfg, data.exclusion_of(con, run_id))

    @utc_result
    def forensics(self, agent: str | None = None, strategy: str | None = None,
                  since: str | dt.datetime | dt.date | None = None, holdout: float | None = None,
                  depth: int | None = None, *, policy: PolicyArg = None,
                  progress: Progress | None = None, changepoints: bool = True) -> dict[str, Any]:
        """Loss clusters, change points and the findings in words (docs/architecture.md §CLI).

        `changepoints=False` skips the change-point part (an empty list), e.g. when looping
        over agents for clusters only."""
        cfg, _ = load_config(policy)
        if holdout is not None and not 0 < holdout < 1:
            raise InputError("--holdout must be a fraction of the runs between 0 and 1, e.g. 0.3")
        if depth is not None and not 1 <= depth <= 4:
            raise InputError("--depth must be 1, 2, 3 or 4")
        f = data.Filters(agent, strategy, parse_since(since))
        cc = cfg.clusters
        store_wide = holdout is None and agent is None and strategy is None
        pops: list[tuple[str | None, PopulationFrame]] = (
            self._populations(f, cfg) if store_wide else [(None, self._population(f, cfg))])
        frame, columns, numeric = pops[0][1]
        y = floats(frame["y"])
        run_ids = [str(r) for r in frame["run_id"].to_pylist()]
        out: dict[str, Any] = {"runs": len(run_ids), "target": cfg.target}
        populations = 1
        if store_wide:
            res, populations = self._store_wide(pops, (columns, sorted(numeric), y, run_ids),
                                                cfg, depth, progress)
        elif holdout is not None:
            split = int(len(run_ids) * (1 - holdout))
            disc = {k: v[:split] for k, v in columns.items()}
            res = clmod.find(disc, sorted(numeric), y[:split], run_ids[:split], cc, depth, progress,
                             self._passes_on())
            clmod.holdout_check(res.clusters, {k: v[split:] for k, v in columns.items()},
                                y[split:], cc.fdr_q)
            ts = frame["ts"].to_pylist()
            out["holdout"] = {"fraction": holdout, "discovery_runs": split,
                              "holdout_runs": len(run_ids) - split,
                              "split_ts": ts[split] if split < len(ts) else None}
        else:
            res = clmod.find(columns, sorted(numeric), y, run_ids, cc, depth, progress,
                             self._passes_on())
        out["clusters"] = [c.to_dict() for c in res.clusters]
        out["search"] = {"features": res.features, "slices_tested": res.tested,
                         "discoveries": res.discoveries, "depth": depth or cc.max_depth,
                         "min_support": cc.support(res.runs), "fdr_q": cc.fdr_q,
                         "populations": populations}
        changes = self._changes(f, cfg) if changepoints else []
        out["changepoints"] = [c.to_dict() for c in changes]
        out["findings"] = [c.sentence for c in res.clusters[:3]] + cpmod.findings(changes)
        return out

    def _population(self, f: data.Filters, cfg: ForensicsConfig) -> PopulationFrame:
        """The runs `f` selects as a search population."""
        con = self.store.con
        cc = cfg.clusters
        keys = data.numeric_attr_keys(con, f, cfg.target, cc.max_attrs) if cc.attrs else []
        frame = data.cluster_frame(con, f, cfg.target, cc.features, keys)
        cols = [data.attr_column(i) for i in range(len(keys))]
        return _features(frame, dict(zip(cols, keys, strict=True)), cfg)

    def _populations(self, f: data.Filters,
                     cfg: ForensicsConfig) -> list[tuple[str | None, PopulationFrame]]:
        """The whole store, each agent and each strategy class (label, population), the
        same as `_population` of each, from one query of attr keys and one frame query per
        `_WIDE` distinct keys: the frame of the store's runs split by agent and strategy."""
        con = self.store.con
        cc = cfg.clusters
        subjects: list[tuple[str, str | None]] = [("store", None)]
        for scope in ("agent", "strategy"):
            where, params = f.where([f"{scope} IS NOT NULL"])
            subjects += [(scope, str(r[0])) for r in con.execute(
                f"SELECT DISTINCT {scope} FROM ledger WHERE {where} ORDER BY 1", params).fetchall()]
        counts: dict[tuple[str, str | None], list[tuple[str, int]]] = {}
        if cc.attrs and cc.max_attrs > 0:
            for agent, strategy, k, n in data.attr_key_counts(con, f, cfg.target):
                for subject in (("store", None), ("agent", agent), ("strategy", strategy)):
                    counts.setdefault(subject, []).append((k, n))
        keys = [data.top_attr_keys(counts.get(s, []), cc.max_attrs) for s in subjects]
        out: list[tuple[str | None, PopulationFrame]] = []
        for chunk in _chunks(keys, _WIDE):
            wide = list(dict.fromkeys(k for i in chunk for k in keys[i]))
            names = {scope: [str(subjects[i][1]) for i in chunk if subjects[i][0] == scope]
                     for scope in ("agent", "strategy")}
            whole = subjects[chunk[0]][0] == "store"
            frame = data.cluster_frame(con, f, cfg.target, cc.features, wide,
                                       None if whole else (names["agent"], names["strategy"]))
            frame = frame.combine_chunks()  # one chunk: a `take` per population reads its rows only
            rows = {"agent": _rows_by(frame["_agent"]), "strategy": _rows_by(frame["_strategy"])}
            attrs = {k: data.attr_column(j) for j, k in enumerate(wide)}
            named = set(attrs.values())
            base = [c for c in frame.column_names if c not in named]
            for i in chunk:
                scope, name = subjects[i]
                cols = [attrs[k] for k in keys[i]]
                part = frame.select([*base, *cols])
                if scope != "store":
                    part = part.take(rows[scope].get(str(name), np.zeros(0, np.int64)))
                out.append((None if scope == "store" else f"{scope} {name}",
                            _features(part, dict(zip(cols, keys[i], strict=True)), cfg)))
        return out

    def _store_wide(self, pops: list[tuple[str | None, PopulationFrame]], whole: clmod.Population,
                    cfg: ForensicsConfig, depth: int | None,
                    progress: Progress | None) -> tuple[clmod.ClusterResult, int]:
        """The whole store (`whole`, the search input of `pops[0]`), each agent and each
        strategy class (`_populations`) searched as one BH family (an agent's loss region is
        diluted in the pool of every agent, so the store alone misses it), the findings merged
        into one ranking. (result, populations searched)."""
        labels = [label for label, _ in pops]
        found = [whole, *((columns, sorted(numeric), floats(frame["y"]),
                           [str(r) for r in frame["run_id"].to_pylist()])
                          for _, (frame, columns, numeric) in pops[1:])]
        results = clmod.find_family(found, cfg.clusters, depth, progress, self._passes_on())
        merged = clmod.merge_ranked(list(zip(labels, results, strict=True)), cfg.clusters.max_clusters)
        first = results[0]
        return clmod.ClusterResult(
            merged, first.runs, sum(r.tested for r in results),
            sum(r.discoveries for r in results), first.features,
            sum(r.combos_read for r in results), sum(r.combos_skipped for r in results)), len(pops)

    def _changes(self, f: data.Filters, cfg: ForensicsConfig) -> list[cpmod.Change]:
        return changes(self.store.con, f, cfg)

    def _passes_on(self) -> PassesOn | None:
        """Where the slice search's histogram passes run: here (None); Spark's executors on
        `engines/spark/forensics.SparkForensics`."""
        return None

    @utc_result
    def apply_exclusions(self, policy: PolicyArg = None) -> dict[str, Any]:
        """Rewrite the excluded-run flags from the policy's `forensics.exclusions` rules."""
        cfg, pol = load_config(policy)
        with self.store.transaction() as con:
            return exmod.apply(con, cfg.exclusions, pol.hash)

    @utc_result
    def exclusions(self) -> list[dict[str, Any]]:
        """Runs excluded from governance, with rule and reason."""
        return exmod.listing(self.store.con)


def changes(con: duckdb.DuckDBPyConnection, f: data.Filters, cfg: ForensicsConfig) -> list[cpmod.Change]:
    """Confirmed change points of every agent `f` selects, ordered by (agent, run_index,
    metric): each agent's series in its (ts, run_id) run order, segment metrics from the
    registry over the `ledger` of `con`. Spark runs it per agent on the agent's runs
    (engines/spark/forensics.py), the store on all of them."""
    names: list[str] = list(cfg.changepoints.metrics)
    frame = data.series_frame(con, f, names)
    if frame.num_rows == 0:
        return []
    agents = np.asarray(frame["agent"].to_pylist(), dtype=object)
    run_index = np.asarray(frame["run_index"].to_numpy(), dtype=np.int64)
    run_ids = [str(r) for r in frame["run_id"].to_pylist()]
    ts = frame["ts"].to_pylist()
    cols = {n: floats(frame[n]) for n in names}

    def seg(agent: str, metric: str, lo: int, hi: int) -> float | None:
        return data.segment_metric(con, f, agent, metric, lo, hi)

    out: list[cpmod.Change] = []
    starts = [0, *[i for i in range(1, len(agents)) if agents[i] != agents[i - 1]], len(agents)]
    for a, b in itertools.pairwise(starts):
        agent = agents[a]
        if agent is None:
            continue
        out.extend(cpmod.agent_changes(
            str(agent), run_index[a:b], run_ids[a:b], ts[a:b],
            {n: cols[n][a:b] for n in names}, cfg.changepoints, seg))
    out.sort(key=lambda c: (c.agent, c.run_index, c.metric))
    return out
