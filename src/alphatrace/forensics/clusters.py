"""Loss clusters: conjunctions of up to `max_depth` predicates where PnL is significantly worse.

Pipeline (pure, arrays in → clusters out):
1. features become predicates: numeric ones one-sided thresholds at quantile cut points
   (rounded to 3 significant digits, so "latency_ms > 912" is the real cut), categorical
   ones equalities (values with at least min_support runs);
2. the lattice search (slices.py) runs in SliceLine's error mode with the per-run loss
   max(0, −pnl_bps) as the error, keeping Σy and Σy² of every evaluated slice;
3. every evaluated slice with at least min_support runs is tested: one-sided Welch t-test of
   its PnL against all other runs; Benjamini–Hochberg over all of them; a discovery has
   q ≤ fdr_q, a lower mean, and a positive SliceLine score (large enough for its loss to
   matter: tiny pure pockets score below 0);
4. discoveries are ranked by the PnL variance they explain, n_in·n_out/n·(mean_out −
   mean_in)² (a regression tree's split criterion: a pure but tiny slice and a large diluted
   one both rank below the slice that matches the loss region), and filtered for redundancy,
   greedily in rank
   order (tests at fdr_q / #examined, Bonferroni):
   - every predicate must earn its place: the slice must be significantly worse than the
     runs its parent (the slice without that predicate) adds; otherwise the simpler slice
     explains the same loss;
   - a slice whose runs overlap a kept cluster's with Jaccard index ≥ 1/3 is a variant of it
     (e.g. the same conjunction at a neighbouring cut point): dropped;
   - a slice inside a kept cluster survives only if it is significantly worse than the rest of
     that cluster (otherwise the simpler, kept slice explains the same loss);
   - any other slice survives only if its runs outside all kept clusters are still
     significantly worse than the runs outside it and them.
With a holdout, the clusters found on the earlier runs are re-tested on the later ones with
the same thresholds (BH over the clusters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alphatrace.errors import InputError
from alphatrace.forensics.config import ClustersConfig
from alphatrace.forensics.slices import (
    Feature,
    PassesOn,
    Predicate,
    SearchParams,
    SliceTable,
    categorical_feature,
    numeric_feature,
    on_grid,
    search,
    slice_mask,
)
from alphatrace.forensics.stats import bh_qvalues, welch_from_sums, welch_samples
from alphatrace.forensics.text import pct, qvalue, signed

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


@dataclass
class Cluster:
    predicates: list[Predicate]
    runs: int
    share: float
    mean_in_bps: float
    mean_out_bps: float
    loss_share: float
    p: float
    q: float
    score: float
    run_ids: list[str]
    mask: BOOL = field(repr=False)
    holdout: dict[str, Any] | None = None
    explained: float = 0.0  # n_in·n_out/n·(mean_out − mean_in)²: the PnL variance it explains
    population: str | None = None  # "agent X" / "strategy S" in a store-wide search

    @property
    def sentence(self) -> str:
        conds = " and ".join(p.text for p in self.predicates)
        who = f"{self.population}: " if self.population else ""
        return (f"{who}Losses cluster when {conds}: {self.runs:,} runs ({pct(self.share)}), mean "
                f"{signed(self.mean_in_bps)} bps vs {signed(self.mean_out_bps)} bps elsewhere, "
                f"{pct(self.loss_share, 0)} of all loss (q = {qvalue(self.q)}).")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "predicates": [p.to_dict() for p in self.predicates], "sentence": self.sentence,
            "runs": self.runs, "share": self.share, "mean_in_bps": self.mean_in_bps,
            "mean_out_bps": self.mean_out_bps, "loss_share": self.loss_share, "q": self.q,
            "p": self.p, "score": self.score, "explained": self.explained,
            "population": self.population, "run_ids": self.run_ids}
        if self.holdout is not None:
            d["holdout"] = self.holdout
        return d


@dataclass
class ClusterResult:
    clusters: list[Cluster]
    runs: int
    tested: int
    discoveries: int
    features: list[str]
    combos_read: int
    combos_skipped: int


def encode(columns: dict[str, Any], numeric: Sequence[str], cfg: ClustersConfig,
           min_support: int) -> list[Feature]:
    """Features for the search; constant or too-rare features are left out."""
    out: list[Feature] = []
    for name, values in columns.items():
        if name in numeric:
            f = numeric_feature(name, values, cfg.quantiles, min_support)
        else:
            f = categorical_feature(name, values, min_support, cfg.max_categories)
        if f is not None:
            out.append(f)
    return out


@dataclass
class Scan:
    """One population's lattice search and the one-sided Welch p-value of every tested slice:
    the part of `find` before FDR control, so several populations can share one BH family."""

    n: int
    feats: list[Feature]
    table: SliceTable | None
    tested: I64
    p: F64
    n_in: F64
    mean_in: F64
    mean_out: F64
    yc: F64
    loss: F64
    run_ids: Sequence[str]


def scan(columns: dict[str, Any], numeric: Sequence[str], y: npt.ArrayLike,
         run_ids: Sequence[str], cfg: ClustersConfig, depth: int | None = None,
         progress: Callable[[int, int], None] | None = None,
         passes_on: PassesOn | None = None) -> Scan:
    ya = np.asarray(y, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(ya))
    if bad.size:
        raise InputError(f"run {run_ids[int(bad[0])]!r}: the target is {ya[bad[0]]}, not a "
                         f"number the loss clusters can use ({bad.size:,} such runs)")
    n = int(ya.size)
    minsup = cfg.support(n)
    feats = encode(columns, numeric, cfg, minsup)
    loss = on_grid(np.maximum(0.0, -ya))  # every sum below is exact: see slices.on_grid
    empty = np.array([], dtype=np.float64)
    if n < 2 * minsup or not feats:
        return Scan(n, feats, None, np.array([], dtype=np.int64), empty, empty, empty, empty,
                    ya, loss, run_ids)
    centre = float(on_grid(ya).sum()) / n
    yc = on_grid(ya - centre)
    table = search(feats, loss, SearchParams(alpha=cfg.alpha, k=cfg.search_k,
                                             max_level=depth or cfg.max_depth,
                                             min_support=minsup, exact_max=False),
                   y=yc, progress=progress, passes_on=passes_on)
    tested = np.flatnonzero((table.size >= minsup) & (n - table.size >= 2))
    tot_s, tot_q = float(yc.sum()), float(on_grid(yc * yc).sum())
    n_in = table.size[tested]
    s_in, q_in = table.y_sum[tested], table.y_sq[tested]
    _, p = welch_from_sums(n_in, s_in, q_in, n - n_in, tot_s - s_in, tot_q - q_in, "less")
    mean_in = s_in / n_in + centre
    mean_out = (tot_s - s_in) / (n - n_in) + centre
    return Scan(n, feats, table, tested, np.asarray(p, np.float64), n_in, mean_in, mean_out,
                yc, loss, run_ids)


def find(columns: dict[str, Any], numeric: Sequence[str], y: npt.ArrayLike,
         run_ids: Sequence[str], cfg: ClustersConfig, depth: int | None = None,
         progress: Callable[[int, int], None] | None = None,
         passes_on: PassesOn | None = None) -> ClusterResult:
    """Loss clusters of target `y` (bps) over the run features in `columns`; `passes_on`:
    where the search's histogram passes run (`slices.PassesOn`; None: here)."""
    sc = scan(columns, numeric, y, run_ids, cfg, depth, progress, passes_on)
    return select(sc, bh_qvalues(sc.p), cfg)


Population = tuple[dict[str, Any], Sequence[str], npt.ArrayLike, Sequence[str]]


def find_family(populations: Sequence[Population], cfg: ClustersConfig, depth: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                passes_on: PassesOn | None = None) -> list[ClusterResult]:
    """Loss clusters of several populations (e.g. the whole store, each agent, each strategy
    class) with Benjamini–Hochberg over the whole family of tested slices, so searching more
    populations does not inflate the false discovery rate. One result per population."""
    scans: list[Scan] = []
    total = len(populations)
    for i, (columns, numeric, y, run_ids) in enumerate(populations):
        scans.append(scan(columns, numeric, y, run_ids, cfg, depth, passes_on=passes_on))
        if progress is not None:
            progress(i + 1, total)
    q = bh_qvalues(np.concatenate([s.p for s in scans]) if scans else np.array([]))
    bounds = np.cumsum([0, *(s.p.size for s in scans)])
    return [select(s, q[bounds[i]:bounds[i + 1]], cfg) for i, s in enumerate(scans)]


def select(sc: Scan, q: F64, cfg: ClustersConfig) -> ClusterResult:
    """Discoveries at `q` ≤ fdr_q (q-values from the caller's BH family), ranked and filtered
    for redundancy (see the module docstring)."""
    n, feats, table, tested = sc.n, sc.feats, sc.table, sc.tested
    if table is None:
        return ClusterResult([], n, 0, 0, [f.name for f in feats], 0, 0)
    minsup = cfg.support(n)
    p, n_in, mean_in, mean_out, yc, loss = sc.p, sc.n_in, sc.mean_in, sc.mean_out, sc.yc, sc.loss
    disc = np.flatnonzero((q <= cfg.fdr_q) & (mean_in < mean_out) & (table.score[tested] > 0))
    td = tested[disc]
    # the slice that explains most of the PnL variance first: between-group sum of squares
    # n_in·n_out/n·(mean_out − mean_in)² (rounded: equal slices reached by different
    # contraction orders tie), then the simpler slice, then search order
    ss_between = n_in * (n - n_in) / n * (mean_out - mean_in) ** 2
    order = disc[np.lexsort((td, table.level[td], -np.round(ss_between[disc], 6)))]
    examined = order[: cfg.max_examined]
    p_red = cfg.fdr_q / max(1, examined.size)  # Bonferroni over the slices examined
    sums = _Sums(table, feats, yc)
    total_loss = float(loss.sum())
    rid = np.asarray(sc.run_ids, dtype=object)
    kept: list[Cluster] = []
    for i in examined.tolist():
        if len(kept) >= cfg.max_clusters:
            break
        t = int(tested[i])
        if not sums.beats_parents(t, p_red) or not sums.novel(t, minsup, p_red):
            continue
        mask = slice_mask(feats, table.feats[t].tolist(), table.preds[t].tolist())
        sums.keep(np.flatnonzero(mask))
        kept.append(Cluster(
            predicates=table.predicates(t, feats), runs=int(n_in[i]), share=float(n_in[i] / n),
            mean_in_bps=float(mean_in[i]), mean_out_bps=float(mean_out[i]),
            loss_share=float(loss[mask].sum() / total_loss) if total_loss > 0 else 0.0,
            p=float(p[i]), q=float(q[i]), score=float(table.score[t]),
            run_ids=[str(r) for r in rid[mask]], mask=mask,
            explained=float(ss_between[i])))
    return ClusterResult(kept, n, int(tested.size), int(disc.size), [f.name for f in feats],
                         table.combos_read, table.combos_skipped)


Stat = tuple[float, float, float]  # n, Σy, Σy² of the centred target


def _stat(v: F64, sq: F64) -> Stat:
    """n, Σv, Σ of the squares `sq` (the on-grid squares SliceLine summed, so every sum is
    exact)."""
    return float(v.size), float(v.sum()), float(sq.sum())


def _less(a: Stat, b: Stat) -> float:
    """One-sided Welch p of side a's mean below side b's, from sums."""
    _, p = welch_from_sums(a[0], a[1], a[2], b[0], b[1], b[2], "less")
    return float(p)


def _minus(a: Stat, b: Stat) -> Stat:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


class _Sums:
    """Redundancy tests from sufficient statistics. Parents come from the slice table (a slice
    is only evaluated when all its parents were), overlaps from the kept clusters' rows, so no
    test reads every row."""

    def __init__(self, table: SliceTable, feats: Sequence[Feature], yc: F64) -> None:
        self.table, self.feats, self.yc = table, feats, yc
        self.sq = on_grid(yc * yc)  # the squares SliceLine summed
        self.offsets = np.cumsum([0] + [f.n_predicates for f in feats]).astype(np.int64)
        self.base = int(self.offsets[-1]) + 1
        gid = np.where(table.feats >= 0,
                       self.offsets[np.maximum(table.feats, 0)] + table.preds + 1, 0)
        keys = self._key(np.sort(gid, axis=1))
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.total = _stat(yc, self.sq)
        self.kept: list[tuple[I64, Stat]] = []
        self.union = np.zeros(yc.size, np.bool_)
        self.union_rows = np.zeros(0, np.int64)
        self.union_stat: Stat = (0.0, 0.0, 0.0)

    def _key(self, gid: npt.NDArray[np.integer[Any]]) -> I64:
        """A slice as one integer: its sorted global predicate ids (0 = unused position)."""
        key = np.zeros(gid.shape[0], np.int64)
        for j in range(gid.shape[1]):
            key = key * self.base + gid[:, j].astype(np.int64)
        return key

    def stat(self, t: int) -> Stat:
        tb = self.table
        return float(tb.size[t]), float(tb.y_sum[t]), float(tb.y_sq[t])

    def on_rows(self, t: int, rows: I64) -> Stat:
        """Sums over those of `rows` that are in slice t."""
        m = np.ones(rows.size, np.bool_)
        for f, p in zip(self.table.feats[t].tolist(), self.table.preds[t].tolist(), strict=True):
            if f >= 0:
                feat = self.feats[f]
                m &= feat.masks[p][feat.codes[rows]]
        return _stat(self.yc[rows[m]], self.sq[rows[m]])

    def beats_parents(self, t: int, p_max: float) -> bool:
        """Every predicate earns its place: the slice is significantly worse than the runs its
        parent (the slice without that predicate) adds."""
        tb = self.table
        level = int(tb.level[t])
        if level < 2:
            return True
        gid = [int(self.offsets[f]) + int(p) + 1 for f, p in
               zip(tb.feats[t].tolist(), tb.preds[t].tolist(), strict=True) if f >= 0]
        width = tb.feats.shape[1]
        me = self.stat(t)
        for drop in range(level):
            ids = sorted([0] * (width - level + 1) + [g for j, g in enumerate(gid) if j != drop])
            key = int(self._key(np.asarray([ids]))[0])
            pos = int(np.searchsorted(self.sorted_keys, key))
            if pos >= self.sorted_keys.size or self.sorted_keys[pos] != key:
                continue  # never happens for searched slices: all parents were evaluated
            rest = _minus(self.stat(int(self.order[pos])), me)
            if rest[0] < 2 or _less(me, rest) > p_max:
                return False  # the predicate removes (almost) nothing, or nothing better
        return True

    def keep(self, rows: I64) -> None:
        """Add a kept cluster (its row indices) to the reference set."""
        self.kept.append((rows, _stat(self.yc[rows], self.sq[rows])))
        self.union[rows] = True
        self.union_rows = np.flatnonzero(self.union)
        self.union_stat = _stat(self.yc[self.union_rows], self.sq[self.union_rows])

    def novel(self, t: int, minsup: int, p_max: float) -> bool:
        """Against the kept clusters; the rules are in the module doc."""
        if not self.kept:
            return True
        me = self.stat(t)
        inside: list[tuple[Stat, Stat]] = []
        for rows, k_stat in self.kept:
            inter = self.on_rows(t, rows)
            if inter[0] >= (me[0] + k_stat[0] - inter[0]) / 3:
                return False  # a variant: Jaccard overlap with a better-ranked cluster ≥ 1/3
            if inter[0] == me[0]:
                inside.append((k_stat, inter))
        if inside:  # a pocket of a kept cluster: must be worse than the rest of it
            for k_stat, inter in inside:
                rest = _minus(k_stat, inter)
                if rest[0] < 2 or _less(me, rest) > p_max:
                    return False
            return True
        own = _minus(me, self.on_rows(t, self.union_rows))
        if own[0] < minsup:
            return False
        outside = _minus(_minus(self.total, self.union_stat), own)
        return _less(own, outside) <= p_max


def holdout_check(clusters: Sequence[Cluster], columns: dict[str, Any],
                  y: npt.ArrayLike, fdr_q: float) -> None:
    """Re-test each cluster's predicates on later runs; sets `cluster.holdout` in place."""
    ya = np.asarray(y, dtype=np.float64)
    ps: list[float] = []
    rows: list[dict[str, Any]] = []
    for c in clusters:
        m = np.ones(ya.size, np.bool_)
        for pr in c.predicates:
            m &= pr.mask(columns[pr.feature])
        n_in = int(m.sum())
        p = welch_samples(ya[m], ya[~m], "less") if n_in >= 2 and ya.size - n_in >= 2 else 1.0
        ps.append(p)
        rows.append({"runs": n_in, "share": n_in / ya.size if ya.size else 0.0,
                     "mean_in_bps": float(ya[m].mean()) if n_in else None,
                     "mean_out_bps": float(ya[~m].mean()) if ya.size - n_in else None, "p": p})
    qs = bh_qvalues(ps)
    for c, r, q in zip(clusters, rows, qs.tolist(), strict=True):
        worse = r["mean_in_bps"] is not None and r["mean_out_bps"] is not None and \
            r["mean_in_bps"] < r["mean_out_bps"]
        c.holdout = {**r, "q": q, "confirmed": bool(worse and q <= fdr_q)}


def merge_ranked(results: Sequence[tuple[str | None, ClusterResult]],
                 max_clusters: int) -> list[Cluster]:
    """The clusters of several populations as one ranked list: most PnL variance explained
    first (ties: the smaller population label order given), a cluster whose runs overlap a
    better-ranked one's with Jaccard ≥ 1/3 dropped as the same finding seen from a wider or
    narrower population. Each cluster is labelled with its population."""
    pool = [(c, label, k) for k, (label, r) in enumerate(results) for c in r.clusters]
    pool.sort(key=lambda t: (-round(t[0].explained, 6), t[2]))
    kept: list[Cluster] = []
    sets: list[set[str]] = []
    for c, label, _ in pool:
        runs = set(c.run_ids)
        if any(len(runs & s) * 3 >= len(runs | s) for s in sets):
            continue
        c.population = label
        kept.append(c)
        sets.append(runs)
        if len(kept) >= max_clusters:
            break
    return kept
