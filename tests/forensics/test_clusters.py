"""Loss clusters on synthetic runs with planted patterns of known size, and on pure noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from alphatrace.forensics import clusters as cl
from alphatrace.forensics import synthetic as syn
from alphatrace.forensics.config import NUMERIC_FEATURES, ClustersConfig
from alphatrace.forensics.slices import Categorical

CFG = ClustersConfig()
STEP = 0.05  # the default quantile grid's step


def columns(d: dict[str, Any], features: list[str] | None = None) -> dict[str, Any]:
    return {k: (np.asarray(d[k], float) if k in NUMERIC_FEATURES else Categorical.from_values(d[k]))
            for k in (features or CFG.features)}


def find(d: dict[str, Any], cfg: ClustersConfig = CFG, **kw: Any) -> cl.ClusterResult:
    return cl.find(columns(d), NUMERIC_FEATURES, d["y"], list(d["run_id"]), cfg, **kw)


@pytest.mark.parametrize("seed", range(5))
def test_planted_cluster_found_at_rank_one_within_one_quantile_step(seed: int) -> None:
    d = syn.runs(3000, seed)
    res = find(d)
    assert res.clusters, "the planted cluster must be found"
    top = res.clusters[0]
    by_feature = {p.feature: p for p in top.predicates}
    assert set(by_feature) == {"latency_ms", "tokens_in"}
    for feat, truth in (("latency_ms", 912.0), ("tokens_in", 2380.0)):
        p = by_feature[feat]
        assert p.op == ">"
        # the found cut sits within one quantile step of the planted one, in the data's terms
        level_found = syn.quantile_level(d[feat], float(p.value))
        level_true = syn.quantile_level(d[feat], truth)
        assert abs(level_found - level_true) <= STEP + 1e-9, (feat, p.value)
    # its runs are mostly the planted ones, and it holds most of them
    inside = np.asarray(d["in_cluster"])
    got = np.isin(np.asarray(d["run_id"]), top.run_ids)
    assert (got & inside).sum() / got.sum() >= 0.7
    assert (got & inside).sum() / inside.sum() >= 0.7


def test_cluster_numbers_are_those_of_its_runs() -> None:
    d = syn.runs(3000, 11)
    top = find(d).clusters[0]
    y = np.asarray(d["y"])
    m = np.isin(np.asarray(d["run_id"]), top.run_ids)
    loss = np.maximum(0, -y)
    assert top.runs == m.sum() == len(top.run_ids)
    assert top.share == pytest.approx(m.mean())
    assert top.mean_in_bps == pytest.approx(y[m].mean())
    assert top.mean_out_bps == pytest.approx(y[~m].mean())
    assert top.loss_share == pytest.approx(loss[m].sum() / loss.sum())
    assert top.run_ids == sorted(top.run_ids)  # data order = (ts, run_id) order
    # predicates describe exactly these runs
    mask = np.ones(len(y), bool)
    for p in top.predicates:
        mask &= p.mask(np.asarray(d[p.feature], float))
    assert np.array_equal(mask, m)


def test_sentence_reads_like_the_contract() -> None:
    c = cl.Cluster(predicates=[cl.Predicate("latency_ms", ">", 912), cl.Predicate("tokens_in", ">", 2380)],
                   runs=77, share=77 / 2962, mean_in_bps=-90.2, mean_out_bps=8.4, loss_share=0.31,
                   p=1e-10, q=1.2e-9, score=1.0, run_ids=[], mask=np.zeros(0, bool))
    assert c.sentence == ("Losses cluster when latency_ms > 912 and tokens_in > 2,380: 77 runs (2.6%), "
                          "mean −90 bps vs +8 bps elsewhere, 31% of all loss (q = 1e-9).")


@pytest.mark.slow
def test_pure_noise_yields_no_cluster_in_at_least_95_percent_of_seeds() -> None:
    clean = 0
    for seed in range(100):
        d = syn.runs(2000, seed, planted=None)
        if not find(d).clusters:
            clean += 1
    assert clean >= 95


def test_simpler_slice_is_not_repeated_as_a_separate_cluster() -> None:
    """A loss caused by one predicate alone is reported once, not once per harmless companion."""
    d = syn.runs(4000, 3, planted=None)
    lat = np.asarray(d["latency_ms"])
    y = np.asarray(d["y"]).copy()
    slow = lat > np.quantile(lat, 0.85)
    y[slow] -= 60
    d["y"] = y
    res = find(d)
    assert res.clusters
    assert [p.feature for p in res.clusters[0].predicates] == ["latency_ms"]
    # no other reported cluster is just "slow and <something irrelevant>"
    for c in res.clusters[1:]:
        m = np.isin(np.asarray(d["run_id"]), c.run_ids)
        assert (m & slow).sum() < 0.5 * m.sum()


def test_depth_one_and_three() -> None:
    d = syn.runs(3000, 4)
    one = find(d, depth=1)
    assert all(len(c.predicates) == 1 for c in one.clusters)
    three = find(d, depth=3)
    assert three.clusters and len(three.clusters[0].predicates) >= 2
    assert three.tested > find(d).tested


def test_holdout_confirms_a_lasting_cluster_and_not_a_vanished_one() -> None:
    d = syn.runs(4000, 5)
    cols = columns(d)
    split = 2800
    res = cl.find({k: v[:split] for k, v in cols.items()}, NUMERIC_FEATURES, d["y"][:split],
                  list(d["run_id"][:split]), CFG)
    assert res.clusters
    cl.holdout_check(res.clusters, {k: v[split:] for k, v in cols.items()}, d["y"][split:], CFG.fdr_q)
    assert res.clusters[0].holdout is not None and res.clusters[0].holdout["confirmed"]

    # the same cluster, but the later runs no longer lose: not confirmed
    y2 = np.asarray(d["y"]).copy()
    rng = np.random.default_rng(0)
    later = np.arange(len(y2)) >= split
    y2[later] = rng.normal(8, 40, later.sum())
    res2 = cl.find({k: v[:split] for k, v in cols.items()}, NUMERIC_FEATURES, y2[:split],
                   list(d["run_id"][:split]), CFG)
    cl.holdout_check(res2.clusters, {k: v[split:] for k, v in cols.items()}, y2[split:], CFG.fdr_q)
    assert res2.clusters and not res2.clusters[0].holdout["confirmed"]  # type: ignore[index]


def test_too_few_runs_gives_nothing() -> None:
    d = syn.runs(40, 1)
    assert find(d).clusters == []
