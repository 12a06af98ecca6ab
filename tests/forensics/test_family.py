"""Store-wide search: several populations share one Benjamini–Hochberg family, and the
merged ranking puts the finding that explains most PnL variance first."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

from alphatrace.forensics import clusters as cl
from alphatrace.forensics import synthetic as syn
from alphatrace.forensics.config import NUMERIC_FEATURES, ClustersConfig
from tests.forensics.test_clusters import columns

CFG = ClustersConfig()


def pop(d: dict[str, Any]) -> cl.Population:
    return (columns(d), NUMERIC_FEATURES, d["y"], list(d["run_id"]))


def test_a_family_of_one_is_the_single_search() -> None:
    d = syn.runs(1500, 3)
    (fam,) = cl.find_family([pop(d)], CFG)
    one = cl.find(*pop(d), CFG)
    assert [c.run_ids for c in fam.clusters] == [c.run_ids for c in one.clusters]
    assert [c.q for c in fam.clusters] == [c.q for c in one.clusters]


def test_q_values_are_bh_over_the_whole_family() -> None:
    a, b = syn.runs(1200, 1), syn.runs(900, 2, planted=None)
    scans = [cl.scan(*pop(d), CFG) for d in (a, b)]
    family = false_discovery_control(np.concatenate([s.p for s in scans]), method="bh")
    res = cl.find_family([pop(a), pop(b)], CFG)
    # the planted cluster of population a, with its q from the joint family (scipy's BH)
    top = res[0].clusters[0]
    i = int(np.flatnonzero(scans[0].p == top.p)[0])
    assert top.q == family[i]
    assert res[1].clusters == []  # noise: nothing, even beside a population with a real cluster


def test_merge_ranks_by_variance_explained_and_drops_the_same_runs_seen_twice() -> None:
    d = syn.runs(1500, 4)
    (r,) = cl.find_family([pop(d)], CFG)
    top = r.clusters[0]
    merged = cl.merge_ranked([("agent A", r), ("strategy S", r)], 10)
    assert merged[0] is top and merged[0].population == "agent A"
    assert len(merged) == len(r.clusters)  # the strategy's copies overlap fully: dropped
    assert all(x.explained >= y.explained for x, y in itertools.pairwise(merged))
    assert merged[0].sentence.startswith("agent A: Losses cluster when")
