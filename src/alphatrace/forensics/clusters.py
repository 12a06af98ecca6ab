"""Loss clusters: conjunctions of up to `max_depth` predicates where PnL is significantly worse.

Pipeline (pure, arrays in → clusters out):
1. features become predicates: numeric ones one-sided thresholds at quantile cut points
   (rounded to 3 significant digits, so "latency_ms > 912" is the real cut), categorical
   ones equalities (values with at least min_support runs);
2. the lattice search (slices.py) runs in SliceLine's error mode with the per-run loss
   max(0, −pnl_bps) as the error, keeping Σy and Σy² of every evaluated slice;
3. every evaluated slice with at least min_support runs is tested: one-sided Welch t-test of
   its PnL against all other runs; Benjamini–Hochberg over all of them; a discovery has
   q ≤ fdr_q and a lower mean;
4. discoveries are ranked by SliceLine score and filtered for redundancy, greedily in rank
   order (tests at fdr_q / #examined, Bonferroni):
   - every predicate must earn its place: the slice must be significantly worse than the
     runs its parent (the slice without that predicate) adds; otherwise the simpler slice
     explains the same loss;
   - a slice inside a kept cluster survives only if it is significantly worse than the rest of
     that cluster (otherwise the simpler, kept slice explains the same loss);
   - a slice sharing at least half its runs with a kept cluster is a variant of it: dropped;
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

from alphatrace.forensics.config import ClustersConfig
from alphatrace.forensics.slices import (
    Feature,
    Predicate,
    SearchParams,
    SliceTable,
    categorical_feature,
    numeric_feature,
    search,
    slice_mask,
)
from alphatrace.forensics.stats import bh_qvalues, welch_from_sums, welch_samples
from alphatrace.forensics.text import pct, qvalue, signed

F64 = npt.NDArray[np.float64]
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

    @property
    def sentence(self) -> str:
        conds = " and ".join(p.text for p in self.predicates)
        return (f"Losses cluster when {conds}: {self.runs:,} runs ({pct(self.share)}), mean "
                f"{signed(self.mean_in_bps)} bps vs {signed(self.mean_out_bps)} bps elsewhere, "
                f"{pct(self.loss_share, 0)} of all loss (q = {qvalue(self.q)}).")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "predicates": [p.to_dict() for p in self.predicates], "sentence": self.sentence,
            "runs": self.runs, "share": self.share, "mean_in_bps": self.mean_in_bps,
            "mean_out_bps": self.mean_out_bps, "loss_share": self.loss_share, "q": self.q,
            "p": self.p, "score": self.score, "run_ids": self.run_ids}
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


def find(columns: dict[str, Any], numeric: Sequence[str], y: npt.ArrayLike,
         run_ids: Sequence[str], cfg: ClustersConfig, depth: int | None = None,
         progress: Callable[[int, int], None] | None = None) -> ClusterResult:
    """Loss clusters of target `y` (bps) over the run features in `columns`."""
    ya = np.asarray(y, dtype=np.float64)
    n = int(ya.size)
    minsup = cfg.support(n)
    feats = encode(columns, numeric, cfg, minsup)
    if n < 2 * minsup or not feats:
        return ClusterResult([], n, 0, 0, [f.name for f in feats], 0, 0)
    loss = np.maximum(0.0, -ya)
    centre = float(ya.mean())
    yc = ya - centre
    table = search(feats, loss, SearchParams(alpha=cfg.alpha, k=cfg.search_k,
                                             max_level=depth or cfg.max_depth,
                                             min_support=minsup), y=yc, progress=progress)
    tested = np.flatnonzero((table.size >= minsup) & (n - table.size >= 2))
    tot_s, tot_q = float(yc.sum()), float((yc * yc).sum())
    n_in = table.size[tested]
    s_in, q_in = table.y_sum[tested], table.y_sq[tested]
    _, p = welch_from_sums(n_in, s_in, q_in, n - n_in, tot_s - s_in, tot_q - q_in, "less")
    q = bh_qvalues(p)
    mean_in = s_in / n_in + centre
    mean_out = (tot_s - s_in) / (n - n_in) + centre
    disc = np.flatnonzero((q <= cfg.fdr_q) & (mean_in < mean_out))
    order = sorted(disc.tolist(), key=lambda i: (-table.score[tested[i]], int(table.level[tested[i]]),
                                                 _key(table, int(tested[i]), feats)))
    total_loss = float(loss.sum())
    rid = np.asarray(run_ids, dtype=object)
    kept: list[Cluster] = []
    examined = order[: cfg.max_examined]
    p_red = cfg.fdr_q / max(1, len(examined))  # Bonferroni over the slices examined
    for i in examined:
        if len(kept) >= cfg.max_clusters:
            break
        t = int(tested[i])
        parts = [slice_mask(feats, [f], [p_]) for f, p_ in
                 zip(table.feats[t].tolist(), table.preds[t].tolist(), strict=True) if f >= 0]
        mask = parts[0].copy()
        for m in parts[1:]:
            mask &= m
        if not _beats_parents(parts, mask, ya, p_red) or not _novel(mask, kept, ya, minsup, p_red):
            continue
        kept.append(Cluster(
            predicates=table.predicates(t, feats), runs=int(n_in[i]), share=float(n_in[i] / n),
            mean_in_bps=float(mean_in[i]), mean_out_bps=float(mean_out[i]),
            loss_share=float(loss[mask].sum() / total_loss) if total_loss > 0 else 0.0,
            p=float(p[i]), q=float(q[i]), score=float(table.score[t]),
            run_ids=[str(r) for r in rid[mask]], mask=mask))
    return ClusterResult(kept, n, int(tested.size), int(disc.size), [f.name for f in feats],
                         table.combos_read, table.combos_skipped)


def _key(table: SliceTable, t: int, feats: Sequence[Feature]) -> str:
    return " and ".join(p.text for p in table.predicates(t, feats))


def _beats_parents(parts: Sequence[BOOL], mask: BOOL, y: F64, p_max: float) -> bool:
    """Each predicate must earn its place: the slice is significantly worse than the runs its
    parent (the slice without that predicate) adds."""
    if len(parts) < 2:
        return True
    for drop in range(len(parts)):
        parent = np.ones(mask.size, np.bool_)
        for j, m in enumerate(parts):
            if j != drop:
                parent &= m
        rest = parent & ~mask
        if int(rest.sum()) >= 2 and welch_samples(y[mask], y[rest], "less") > p_max:
            return False
    return True


def _novel(mask: BOOL, kept: Sequence[Cluster], y: F64, minsup: int, p_max: float) -> bool:
    """The redundancy rule of the module doc, against the clusters kept so far."""
    if not kept:
        return True
    idx = np.flatnonzero(mask)
    union = np.zeros(mask.size, np.bool_)
    inside: list[Cluster] = []
    for k in kept:
        inter = int(k.mask[idx].sum())
        if inter == idx.size:
            inside.append(k)
        elif inter >= 0.5 * idx.size:
            return False  # mostly the same runs as a better-ranked cluster
        union |= k.mask
    if inside:  # a pocket of a kept cluster: must be worse than the rest of it
        for k in inside:
            rest = k.mask & ~mask
            if int(rest.sum()) < 2 or welch_samples(y[mask], y[rest], "less") > p_max:
                return False
        return True
    own = idx[~union[idx]]
    if own.size < minsup:
        return False
    return welch_samples(y[own], y[~(mask | union)], "less") <= p_max


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
