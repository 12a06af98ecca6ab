"""Exact slice search over run features: SliceLine's lattice, scores and pruning, on histograms.

A slice is a conjunction of predicates on distinct features ("latency_ms > 912 and tokens_in
> 2,380"). SliceLine (Sagadeeva & Boehm, SIGMOD 2021) enumerates the lattice level by level and
prunes with upper bounds on a slice's size, total error and maximum error derived from its
parents. We keep its lattice, score and bounds exactly, but evaluate a level differently: for
each combination of features, one pass over the rows builds the joint histogram of the
features' bin codes (count, Σerror, max error, Σy, Σy²), and every candidate slice over that
combination is a contraction of the histogram with the predicates' code masks. That makes
one-sided thresholds ("x > c" covers many bins) as cheap as equality predicates, and a whole
level costs one `bincount` per feature combination instead of a sparse product per slice.

Pruning is SliceLine's: a candidate is evaluated only when all its parents are valid (size ≥
min_support, error > 0) and its score upper bound beats the current top-K threshold and 0.
Feature combinations with no surviving candidate are never read. With `reference=True` the
two quirks of the SystemDS/`sliceline` implementation are reproduced (the pruning threshold is
the current top-K minimum even before K slices are known, and the bound's size term uses the
number of encoded columns instead of rows), so results can be checked against their tests;
the default uses the exact bound, which is lossless.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from alphatrace.forensics.text import num, round_sig
from alphatrace.quantiles import quantiles as quantile_points

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

MAX_CELLS = 1 << 25  # a joint histogram larger than this is refused (memory), with advice
QUANTILE_SAMPLE = 250_000
BLOCK_CELLS = 1 << 20  # largest 4-feature histogram built to serve several pairs at once


@dataclass(frozen=True)
class Predicate:
    """One condition in the data's own units; `value` is exactly what is shown."""

    feature: str
    op: str  # ">" | "<=" | "=="
    value: Any

    @property
    def text(self) -> str:
        v = num(float(self.value)) if isinstance(self.value, int | float) and not isinstance(
            self.value, bool) else str(self.value)
        op = "=" if self.op == "==" else self.op
        return f"{self.feature} {op} {v}"

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "op": self.op, "value": self.value, "text": self.text}

    def mask(self, values: Any) -> BOOL:
        """Rows of raw `values` (floats with NaN, a Categorical, or objects) where it holds."""
        if self.op == "==":
            if isinstance(values, Categorical):
                return values.equals(self.value)
            return np.asarray(values == self.value, dtype=np.bool_)
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return v > self.value if self.op == ">" else v <= self.value


@dataclass
class Feature:
    """A feature as bin codes plus one boolean code mask per predicate.

    `codes[i]` in [0, n_codes); a code no mask selects (missing values, rare categories) puts
    the row in no slice of this feature. `single[j]` is the one code predicate j selects when
    it is an equality, which lets contractions index instead of multiply. Threshold features
    carry `cut[j]` (the cut's index: "≤" selects codes 0..cut, ">" codes cut+1..n_codes−2) and
    `gt[j]`, which lets contractions use cumulative sums and maxima instead of products.
    """

    name: str
    codes: npt.NDArray[np.integer[Any]]
    n_codes: int
    masks: BOOL  # (P, n_codes)
    predicates: tuple[Predicate, ...]
    single: I64 | None = None
    cut: I64 | None = None
    gt: BOOL | None = None

    @property
    def n_predicates(self) -> int:
        return len(self.predicates)


def on_grid(x: npt.ArrayLike) -> F64:
    """`x` rounded to the nearest multiple of 2^g, g = e + b − 52 where max|x| < 2^e and
    n < 2^b (n the number of values), so n·max|x| stays under 2^52 units. Then the sum of any
    subset of the values, added in any order and grouping, is exact: every partial sum is a
    multiple of 2^g under 2^53 units. So a histogram's sums are the same bits whether one
    `bincount` adds the rows in order or partial histograms of any split are added up
    (Spark's partitions), and so are the cumulative sums and differences the contractions
    take of them. The rounding moves a value by at most 2^(g−1) ≤ 2^−51·n·max|x|: the order
    of the error a plain float sum of the same values makes anyway."""
    v = np.asarray(x, dtype=np.float64)
    if v.size == 0:
        return v
    top = float(np.max(np.abs(v)))
    if not math.isfinite(top):
        raise ValueError("values must be finite")
    if top == 0.0:
        return v + 0.0  # −0.0 as 0.0, as the sums would give
    g = max(math.frexp(top)[1] + int(v.size).bit_length() - 52, -1074)
    return np.ldexp(np.rint(np.ldexp(v, -g)), g)


def _codes_dtype(n_codes: int) -> type[np.integer[Any]]:
    return np.uint8 if n_codes <= 255 else np.int32


def numeric_feature(name: str, values: npt.ArrayLike, quantiles: Sequence[float],
                    min_support: int = 1, sig: int = 3) -> Feature | None:
    """One-sided thresholds at quantile cut points, rounded so the shown value is the real cut.

    Cuts c₁ < … < c_m give predicates `x > c_j` and `x <= c_j`; code k = #(c_j < x), missing
    values get code m+1. Predicates holding for fewer than `min_support` rows (or for every
    non-missing row) are dropped: they can never be a valid slice.
    """
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    if finite.sum() == 0:
        return None
    xs = x[finite]
    if xs.size > QUANTILE_SAMPLE:  # cut points from an evenly strided sample: same to 3 digits
        xs = xs[:: xs.size // QUANTILE_SAMPLE]
    qs = quantile_points(xs, quantiles)
    cuts = np.unique(np.array([round_sig(float(q), sig) for q in qs], dtype=np.float64))
    m = cuts.size
    codes = np.where(finite, np.searchsorted(cuts, np.where(finite, x, 0.0), side="left"), m + 1)
    n_codes = m + 2
    counts = np.bincount(codes, minlength=n_codes)
    n_ok = int(finite.sum())
    masks: list[BOOL] = []
    preds: list[Predicate] = []
    cut_ix: list[int] = []
    gt: list[bool] = []
    k = np.arange(n_codes)
    for j, c in enumerate(cuts.tolist()):
        for op, sel in ((">", (k >= j + 1) & (k <= m)), ("<=", k <= j)):
            support = int(counts[sel].sum())
            if support < min_support or support == n_ok:
                continue
            value: float | int = int(c) if float(c).is_integer() else float(c)
            masks.append(sel)
            preds.append(Predicate(name, op, value))
            cut_ix.append(j)
            gt.append(op == ">")
    if not preds:
        return None
    return Feature(name, codes.astype(_codes_dtype(n_codes)), n_codes, np.array(masks), tuple(preds),
                   cut=np.asarray(cut_ix, np.int64), gt=np.asarray(gt, np.bool_))


@dataclass(frozen=True)
class Categorical:
    """A categorical column as codes into `labels` (−1: missing), so 1M rows never become
    Python objects."""

    codes: I64
    labels: tuple[Any, ...]

    @staticmethod
    def from_values(values: Sequence[Any] | npt.NDArray[Any]) -> Categorical:
        index: dict[Any, int] = {}
        codes = np.empty(len(values), np.int64)
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                codes[i] = -1
            else:
                codes[i] = index.setdefault(_plain(v), len(index))
        return Categorical(codes, tuple(index))

    def __len__(self) -> int:
        return int(self.codes.size)

    def __getitem__(self, sl: slice) -> Categorical:
        return Categorical(self.codes[sl], self.labels)

    def equals(self, value: Any) -> BOOL:
        try:
            j = self.labels.index(value)
        except ValueError:
            return np.zeros(self.codes.size, np.bool_)
        return np.asarray(self.codes == j)


def categorical_feature(name: str, values: Categorical | npt.ArrayLike, min_support: int = 1,
                        max_categories: int | None = None) -> Feature | None:
    """Equality predicates for values seen at least `min_support` times (most frequent first,
    at most `max_categories`, shown in label order); other values and missing ones get an
    unselected code."""
    cat = values if isinstance(values, Categorical) else Categorical.from_values(
        np.asarray(values, dtype=object))
    n = cat.codes.size
    present = cat.codes >= 0
    if not present.any():
        return None
    cnt = np.bincount(cat.codes[present], minlength=len(cat.labels))
    order = sorted(range(len(cat.labels)), key=lambda i: (-int(cnt[i]), str(cat.labels[i])))
    keep = [i for i in order if min_support <= cnt[i] < n]
    if max_categories is not None:
        keep = keep[:max_categories]
    if not keep:
        return None
    keep.sort(key=lambda i: str(cat.labels[i]))
    remap = np.full(len(cat.labels) + 1, len(keep), dtype=np.int64)  # last slot: missing
    remap[keep] = np.arange(len(keep))
    codes = remap[np.where(present, cat.codes, len(cat.labels))]
    n_codes = len(keep) + 1
    preds = tuple(Predicate(name, "==", _plain(cat.labels[i])) for i in keep)
    masks = np.eye(len(keep), n_codes, dtype=np.bool_)
    return Feature(name, codes.astype(_codes_dtype(n_codes)), n_codes, masks, preds,
                   single=np.arange(len(keep), dtype=np.int64))


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def equality_features(X: npt.ArrayLike, names: Sequence[str] | None = None) -> list[Feature]:
    """SliceLine's encoding: one equality predicate per distinct value of every column."""
    Xa = np.asarray(X)
    out: list[Feature] = []
    for j in range(Xa.shape[1]):
        col = Xa[:, j]
        name = names[j] if names else f"x{j}"
        if col.dtype.kind in "iu" and col.size and int(col.min()) >= 0 and int(col.max()) < 1 << 20:
            present = np.bincount(col) > 0  # small non-negative ints: a lookup, no sort
            lookup = np.cumsum(present) - 1
            uniq: list[Any] = np.flatnonzero(present).tolist()
            codes = lookup[col].astype(np.int64)
        elif col.dtype != object:  # other numeric columns: vectorised
            u, inv = np.unique(col, return_inverse=True)
            uniq = [_plain(v) for v in u]
            codes = inv.astype(np.int64).reshape(-1)
        else:
            uniq = sorted({_plain(v) for v in col}, key=lambda v: (str(type(v)), v))
            index = {v: i for i, v in enumerate(uniq)}
            codes = np.array([index[_plain(v)] for v in col], dtype=np.int64)
        out.append(Feature(name, codes.astype(_codes_dtype(len(uniq))), len(uniq),
                           np.eye(len(uniq), dtype=np.bool_),
                           tuple(Predicate(name, "==", v) for v in uniq),
                           single=np.arange(len(uniq), dtype=np.int64)))
    return out


@dataclass(frozen=True)
class SearchParams:
    alpha: float = 0.95
    k: int = 10
    max_level: int = 2
    min_support: int = 1
    reference: bool = False  # reproduce SystemDS/sliceline pruning quirks (see module doc)
    # False: the last level's err_max is the parents' bound, not the exact maximum (it only
    # feeds the next level's pruning, and there is none), saving a pass per combination
    exact_max: bool = True


@dataclass
class SliceTable:
    """Every evaluated slice, one row each (levels concatenated in order).

    `feats`/`preds` hold feature and predicate indices per position (−1 past the level).
    Sums of y are of the centred target the caller passed. `top` indexes the top-K (ties at
    the K-th score included), best first.
    """

    feats: npt.NDArray[np.int16]
    preds: npt.NDArray[np.int16]
    level: npt.NDArray[np.int8]
    size: F64
    err: F64
    err_max: F64
    y_sum: F64
    y_sq: F64
    score: F64
    top: I64
    n: int
    average_error: float
    combos_read: int = 0
    combos_skipped: int = 0

    def __len__(self) -> int:
        return int(self.size.size)

    def predicates(self, i: int, features: Sequence[Feature]) -> list[Predicate]:
        return [features[int(f)].predicates[int(p)]
                for f, p in zip(self.feats[i], self.preds[i], strict=True) if f >= 0]


def slice_mask(features: Sequence[Feature], feats: Sequence[int], preds: Sequence[int]) -> BOOL:
    """Rows in the slice, from the features' codes (no raw values needed)."""
    mask: BOOL | None = None
    for f, p in zip(feats, preds, strict=True):
        if f < 0:
            continue
        feat = features[int(f)]
        m = feat.masks[int(p)][feat.codes]
        mask = m if mask is None else (mask & m)
    if mask is None:
        raise ValueError("empty slice")
    return mask


def score(alpha: float, ebar: float, n: int, size: F64, err: F64) -> F64:
    """SliceLine's score: α·(mean error in slice / mean error − 1) − (1−α)·(n / size − 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = alpha * ((err / size) / ebar - 1) - (1 - alpha) * (n / size - 1)
    return np.nan_to_num(sc, nan=-np.inf)


def score_ub(alpha: float, ebar: float, n: float, min_support: float,
             ss: F64, se: F64, sm: F64) -> F64:
    """SliceLine's upper bound on any descendant's score, given bounds on its size, total error
    and maximum error: the score is monotone between the probe points min_support, se/sm and ss."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.stack([np.full(ss.shape, float(min_support)), np.maximum(se / sm, min_support), ss])
        ub = (alpha * (np.minimum(s * sm, se) / ebar - s) - (1 - alpha) * (n - s)) / s
        out = np.max(ub, axis=0)
    return np.nan_to_num(out, nan=-np.inf)


@dataclass
class _Level:
    """Per feature combination of one level: evaluated stats as dense predicate tensors."""

    valid: dict[tuple[int, ...], BOOL] = field(default_factory=dict)
    size: dict[tuple[int, ...], F64] = field(default_factory=dict)
    err: dict[tuple[int, ...], F64] = field(default_factory=dict)
    err_max: dict[tuple[int, ...], F64] = field(default_factory=dict)


def histogram(codes: Sequence[npt.NDArray[np.integer[Any]]], dims: Sequence[int],
              weights: Sequence[F64], e: F64 | None = None) -> tuple[F64, F64 | None]:
    """The joint histogram of rows given by their bin `codes` (one array per feature, code <
    dim): per cell (row-major over `dims`), the sums of each of `weights` (cells × weights)
    and, with `e`, the maximum of e (0 where empty; e ≥ 0). The kernel the slice search runs
    over all rows, and Spark over each partition's rows (`engines/spark/slices.py`): the
    histograms of a split add up (sums, `np.add`) and combine (`np.maximum`) to the
    histogram of all rows, bit for bit when the weights are on their grids (`on_grid`)."""
    cells = math.prod(dims)
    wide = np.int64 if cells >= 2**31 else np.int32
    flat: npt.NDArray[np.signedinteger[Any]] = np.asarray(codes[0]).astype(wide)
    for c, d in zip(codes[1:], dims[1:], strict=True):
        flat *= d
        flat += c
    sums = np.stack([np.asarray(np.bincount(flat, weights=w, minlength=cells), dtype=np.float64)
                     for w in weights], axis=-1)
    if e is None:
        return sums, None
    sm = np.zeros(cells, np.float64)
    np.maximum.at(sm, flat, e)
    return sums, sm


def _dims(features: Sequence[Feature], combo: tuple[int, ...]) -> tuple[int, ...]:
    """The combo's histogram shape (codes per feature); refused past MAX_CELLS cells."""
    dims = tuple(features[f].n_codes for f in combo)
    cells = math.prod(dims)
    if cells > MAX_CELLS:
        names = ", ".join(features[f].name for f in combo)
        raise MemoryError(f"too many value combinations for {names} ({cells:,}); "
                          "lower max_categories or the depth")
    return dims


def _hist(features: Sequence[Feature], combo: tuple[int, ...], e: F64,
          weights: Sequence[F64], with_max: bool = True) -> tuple[F64, F64 | None]:
    """Joint histogram of the combo's codes: the sums of `weights` (1, e[, y, y²]) on a
    trailing axis, and max e, per cell."""
    dims = _dims(features, combo)
    sums, sm = histogram([features[f].codes for f in combo], dims, weights,
                         e if with_max else None)
    return sums.reshape((*dims, len(weights))), None if sm is None else sm.reshape(dims)


class Passes(Protocol):
    """Histogram passes run elsewhere (Spark's executors: `engines/spark/slices.py`): for each
    combo, `histogram` of the search's rows (its features' codes, its weights, e's maxima with
    `with_max`), flat as `histogram` returns them; the same bits as over the rows here."""

    def __call__(self, combos: Sequence[tuple[int, ...]], with_max: bool
                 ) -> list[tuple[F64, F64 | None]]: ...


# Where a search's histogram passes run: given its features, weights (1, e[, y, y²]) and e,
# the passes over those rows, or None to run them here, over the in-memory codes.
PassesOn = Callable[[Sequence[Feature], Sequence[F64], F64], "Passes | None"]


def _pair_hists(features: Sequence[Feature], pairs: Sequence[tuple[int, ...]], e: F64,
                weights: Sequence[F64], with_max: bool) -> dict[tuple[int, ...], tuple[F64, F64 | None]]:
    """Pair histograms as marginals of 4-feature block histograms: features are taken two by
    two, and one pass over the rows per pair of those groups serves up to six pairs, instead
    of one pass per pair. Blocks too large to hold stay per pair (absent from the result)."""
    n = len(features)
    needed = set(pairs)
    groups = [tuple(range(i, min(i + 2, n))) for i in range(0, n, 2)]
    blocks = [groups[a] + groups[b] for a, b in combinations(range(len(groups)), 2)] or groups
    out: dict[tuple[int, ...], tuple[F64, F64 | None]] = {}
    for block in blocks:
        want = [p for p in combinations(block, 2) if p in needed and p not in out]
        cells = math.prod(features[f].n_codes for f in block)
        if len(want) < 2 or cells > BLOCK_CELLS:
            continue
        hs, hm = _hist(features, block, e, weights, with_max)
        for p in want:
            drop = tuple(i for i, f in enumerate(block) if f not in p)
            out[p] = (hs.sum(axis=drop), None if hm is None else hm.max(axis=drop))
    return out


def _contract_sum(h: F64, feats: Sequence[Feature]) -> F64:
    """Cell sums → predicate sums along each feature axis (trailing axes are carried along)."""
    out = h
    for axis, f in enumerate(feats):
        if f.single is not None:
            out = np.take(out, f.single, axis=axis)
        elif f.cut is not None and f.gt is not None:
            moved = np.moveaxis(out, axis, 0)
            m = f.n_codes - 2  # number of cuts; code m+1 is "missing"
            prefix = np.cumsum(moved[: m + 1], axis=0)  # prefix[j] = Σ codes 0..j
            le = prefix[f.cut]
            gt = prefix[m][None, ...] - le
            red = np.where(f.gt.reshape((-1,) + (1,) * (moved.ndim - 1)), gt, le)
            out = np.moveaxis(red, 0, axis)
        else:
            out = np.moveaxis(np.tensordot(f.masks.astype(np.float64), out, axes=([1], [axis])), 0, axis)
    return out


def _contract_max(h: F64, feats: Sequence[Feature]) -> F64:
    """Cell maxima → predicate maxima (e ≥ 0, so an empty selection gives 0)."""
    out = h
    for axis, f in enumerate(feats):
        if f.single is not None:
            out = np.take(out, f.single, axis=axis)
            continue
        moved = np.moveaxis(out, axis, 0)  # (B, rest...)
        if f.cut is not None and f.gt is not None:
            m = f.n_codes - 2
            body = moved[: m + 1]
            pmax = np.maximum.accumulate(body, axis=0)  # max over codes 0..j
            smax = np.maximum.accumulate(body[::-1], axis=0)[::-1]  # max over codes j..m
            smax = np.concatenate([smax, np.zeros((1, *body.shape[1:]))], axis=0)
            red = np.where(f.gt.reshape((-1,) + (1,) * (moved.ndim - 1)), smax[f.cut + 1], pmax[f.cut])
        else:
            sel = f.masks.reshape(f.masks.shape + (1,) * (moved.ndim - 1))
            red = np.where(sel, moved[None, ...], -np.inf).max(axis=1)  # (P, rest...)
        out = np.moveaxis(red, 0, axis)
    return np.maximum(out, 0.0)


class _TopK:
    """Top-K by score with ties at the K-th score kept (SliceLine's `rankdata(min) <= K`)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.ids = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float64)

    def add(self, ids: I64, scores: F64) -> None:
        if ids.size == 0:
            return
        from scipy.stats import rankdata  # lazily: see forensics.stats

        all_ids = np.concatenate([self.ids, ids])
        all_sc = np.concatenate([self.scores, scores])
        keep = rankdata(-all_sc, method="min") <= self.k
        all_ids, all_sc = all_ids[keep], all_sc[keep]
        order = np.lexsort((all_ids, -all_sc))
        self.ids, self.scores = all_ids[order], all_sc[order]

    @property
    def full(self) -> bool:
        return self.scores.size >= self.k

    @property
    def lowest(self) -> float:
        return float(self.scores[-1]) if self.scores.size else -np.inf


class _Rows:
    """The evaluated slices, appended level by level, concatenated once at the end."""

    KEYS = ("feats", "preds", "size", "err", "err_max", "y_sum", "y_sq")

    def __init__(self, max_level: int) -> None:
        self.max_level = max_level
        self.parts: dict[str, list[Any]] = {k: [] for k in self.KEYS}
        self.n = 0

    def add(self, combo: tuple[int, ...], idx: tuple[I64, ...], stats: dict[str, F64]) -> I64:
        """Append the slices at `idx` of the combo's predicate tensor; their row ids."""
        m = idx[0].size
        fe = np.full((m, self.max_level), -1, np.int16)
        pr = np.full((m, self.max_level), -1, np.int16)
        for pos, f in enumerate(combo):
            fe[:, pos] = f
            pr[:, pos] = idx[pos]
        self.parts["feats"].append(fe)
        self.parts["preds"].append(pr)
        for key in ("size", "err", "err_max", "y_sum", "y_sq"):
            self.parts[key].append(stats[key] if key in stats else np.zeros(m))
        ids = np.arange(self.n, self.n + m, dtype=np.int64)
        self.n += m
        return ids

    def column(self, key: str, dtype: Any, shape: tuple[int, ...] = (0,)) -> Any:
        parts = self.parts[key]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)


class SliceLine:
    """One search: SliceLine's lattice over `features`, level by level, with its exact bound.

    A level is a set of feature combinations; `first_level` evaluates every feature alone,
    `next_level` the combinations whose parents all survived and whose bound beats the top-K
    threshold. `ReferenceSliceLine` changes only the two pruning quirks (see the module doc).
    """

    def __init__(self, features: Sequence[Feature], errors: npt.ArrayLike, params: SearchParams,
                 y: npt.ArrayLike | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 passes_on: PassesOn | None = None) -> None:
        e = np.asarray(errors, dtype=np.float64)
        if e.ndim != 1 or (e.size and float(e.min()) < 0):
            raise ValueError("errors must be a non-negative vector")
        self.e = e
        self.n = int(e.size)
        self.ya = None if y is None else np.asarray(y, dtype=np.float64)
        # a weighted bincount counts faster than a plain one
        self.weights = [np.ones(e.size, np.float64), e]
        if self.ya is not None:  # y², on its grid: its sums exact when e's and y's are
            self.weights += [self.ya, on_grid(self.ya * self.ya)]
        self.ebar = float(np.mean(e)) if self.n else 0.0
        self.feats = list(features)
        self.params = params
        self.top = _TopK(params.k)
        self.max_level = min(params.max_level, len(self.feats))
        self.rows = _Rows(self.max_level)
        self.combos_read = self.combos_skipped = 0
        self.progress = progress
        self.done = 0
        self.total = len(self.feats) + sum(math.comb(len(self.feats), lv)
                                           for lv in range(2, self.max_level + 1))
        self.passes = None if passes_on is None else passes_on(self.feats, self.weights, e)

    # -- the two pruning choices a reference run replaces ------------------------------------
    @property
    def bound_rows(self) -> float:
        """The `n` of the score bound's size term: the rows."""
        return float(self.n)

    def threshold(self) -> float:
        """Candidates must beat this bound: the K-th best score once K slices are known."""
        return self.top.lowest if self.top.full else -np.inf

    # -- the lattice -------------------------------------------------------------------------
    def run(self) -> SliceTable:
        """Every slice SliceLine would evaluate, with its statistics, and the top-K."""
        prev = self.first_level()
        for level in range(2, self.max_level + 1):
            if not any(v.any() for v in prev.valid.values()):
                break
            prev = self.next_level(level, prev)
        return self.table()

    def first_level(self) -> _Level:
        out = _Level()
        combos = [(f,) for f in range(len(self.feats))]
        got = self.elsewhere(combos, True)
        for (f,) in combos:
            out.valid[(f,)], out.size[(f,)], out.err[(f,)], out.err_max[(f,)] = (
                self.evaluate((f,), None, hist=got.get((f,))))
            self.combos_read += 1
            self._step()
        return out

    def next_level(self, level: int, prev: _Level) -> _Level:
        thr = self.threshold()
        pending: list[tuple[tuple[int, ...], BOOL, F64]] = []
        for combo in combinations(range(len(self.feats)), level):
            alive, sm = self.candidates(combo, prev, thr)
            if alive is None or sm is None:
                self.combos_skipped += 1
                self.done += 1
            else:
                pending.append((combo, alive, sm))
        last = level == self.max_level and not self.params.exact_max
        shared = self.elsewhere([c for c, _, _ in pending], not last)
        if not shared and level == 2:
            shared = _pair_hists(self.feats, [c for c, _, _ in pending], self.e, self.weights,
                                 not last)
        cur = _Level()
        for combo, alive, sm in pending:
            cur.valid[combo], cur.size[combo], cur.err[combo], cur.err_max[combo] = self.evaluate(
                combo, alive, sm if last else None, shared.get(combo))
            self.combos_read += 1
            self._step()
        return cur

    def elsewhere(self, combos: Sequence[tuple[int, ...]], with_max: bool
                  ) -> dict[tuple[int, ...], tuple[F64, F64 | None]]:
        """The combos' histograms from `passes` (one pass for all of them, shaped as `_hist`
        shapes them); empty when the passes run here."""
        if self.passes is None or not combos:
            return {}
        shapes = [_dims(self.feats, c) for c in combos]
        out = {}
        for c, dims, (sums, top) in zip(combos, shapes, self.passes(combos, with_max),
                                        strict=True):
            out[c] = (sums.reshape((*dims, len(self.weights))),
                      None if top is None else top.reshape(dims))
        return out

    def candidates(self, combo: tuple[int, ...], prev: _Level, thr: float
                   ) -> tuple[BOOL | None, F64 | None]:
        """The combo's slices worth evaluating (all parents valid, bound above `thr` and 0) and
        the parents' bound on their maximum error; (None, None) when there are none."""
        level = len(combo)
        parents = [combo[:i] + combo[i + 1:] for i in range(level)]
        if any(p not in prev.valid or not prev.valid[p].any() for p in parents):
            return None, None
        alive: BOOL | None = None
        ss = se = sm = None
        for i, p in enumerate(parents):
            v = np.expand_dims(prev.valid[p], i)
            s_ = np.expand_dims(prev.size[p], i)
            e_ = np.expand_dims(prev.err[p], i)
            m_ = np.expand_dims(prev.err_max[p], i)
            alive = v if alive is None else (alive & v)
            ss = s_ if ss is None else np.minimum(ss, s_)
            se = e_ if se is None else np.minimum(se, e_)
            sm = m_ if sm is None else np.minimum(sm, m_)
        assert alive is not None and ss is not None and se is not None and sm is not None
        minsup = self.params.min_support
        ub = score_ub(self.params.alpha, self.ebar, self.bound_rows, minsup, ss, se, sm)
        alive = alive & (ss >= minsup) & (ub > thr) & (ub > 0)
        return (alive, sm) if alive.any() else (None, None)

    def evaluate(self, combo: tuple[int, ...], alive: BOOL | None, max_bound: F64 | None = None,
                 hist: tuple[F64, F64 | None] | None = None) -> tuple[BOOL, F64, F64, F64]:
        """Record the combo's `alive` slices (all when None), offer them to the top-K; the
        combo's validity, size, error and max error tensors for the next level's bounds."""
        fs = [self.feats[f] for f in combo]
        hs, hm = hist if hist is not None else _hist(self.feats, combo, self.e, self.weights,
                                                     with_max=max_bound is None)
        sums = _contract_sum(hs, fs)
        size, err = sums[..., 0], sums[..., 1]
        emax = _contract_max(hm, fs) if hm is not None else np.asarray(max_bound)
        ev = np.ones(size.shape, np.bool_) if alive is None else alive
        idx = np.nonzero(ev)
        stats = {"size": size[idx], "err": err[idx], "err_max": emax[idx]}
        if self.ya is not None:
            stats["y_sum"] = sums[..., 2][idx]
            stats["y_sq"] = sums[..., 3][idx]
        ids = self.rows.add(combo, tuple(np.asarray(i, np.int64) for i in idx), stats)
        sc = score(self.params.alpha, self.ebar, self.n, stats["size"], stats["err"])
        minsup = self.params.min_support
        ok = (stats["size"] >= minsup) & (sc > 0)
        self.top.add(ids[ok], sc[ok])
        valid = ev & (size >= minsup) & (err > 0)
        return valid, size, err, emax

    def _step(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)

    def table(self) -> SliceTable:
        r = self.rows
        size_all = r.column("size", np.float64)
        err_all = r.column("err", np.float64)
        feats_all = r.column("feats", np.int16, (0, self.max_level))
        return SliceTable(
            feats=feats_all,
            preds=r.column("preds", np.int16, (0, self.max_level)),
            level=(feats_all >= 0).sum(axis=1).astype(np.int8),
            size=size_all, err=err_all, err_max=r.column("err_max", np.float64),
            y_sum=r.column("y_sum", np.float64), y_sq=r.column("y_sq", np.float64),
            score=score(self.params.alpha, self.ebar, self.n, size_all, err_all),
            top=self.top.ids, n=self.n, average_error=self.ebar,
            combos_read=self.combos_read, combos_skipped=self.combos_skipped,
        )


class ReferenceSliceLine(SliceLine):
    """The SystemDS/`sliceline` pruning, to check results against their tests: the bound's size
    term counts encoded predicates instead of rows, and the threshold is the current top-K
    minimum even before K slices are known. Both only prune less tightly or differently;
    the statistics of an evaluated slice are the same."""

    @property
    def bound_rows(self) -> float:
        return float(sum(f.n_predicates for f in self.feats))

    def threshold(self) -> float:
        return self.top.lowest


def search(features: Sequence[Feature], errors: npt.ArrayLike, params: SearchParams,
           y: npt.ArrayLike | None = None,
           progress: Callable[[int, int], None] | None = None,
           passes_on: PassesOn | None = None) -> SliceTable:
    """Every slice SliceLine would evaluate, with its statistics, and the top-K.

    `errors` must be non-negative (SliceLine's error vector; for PnL, the per-run loss).
    `y`, when given, is summed too (Σy, Σy²) so callers can test slices without rereading rows;
    pass it centred. Sums are exact, whatever the row order or split, when `errors` and `y`
    are on their grids (`on_grid`; y² is put on its own here). `progress(done, total)` is called per feature combination.
    `params.reference` picks `ReferenceSliceLine`. `passes_on`: where the histogram passes
    run (`PassesOn`; None: here).
    """
    algo = ReferenceSliceLine if params.reference else SliceLine
    return algo(features, errors, params, y, progress, passes_on).run()
