"""CPU-seconds of one loss-cluster search (`clusters.find`, depth 2, policy defaults) on N
synthetic runs (alphatrace.forensics.synthetic, seed 0, one extra numeric feature), the search
only (data made and scipy imported before the clock starts). Prints one JSON line: run it with
the old and the new code's `src` on PYTHONPATH, alternated, to compare.

    PYTHONPATH=src python bench/bench_clusters_cpu.py [--runs 1000000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    n = ap.parse_args(argv).runs
    import scipy.stats  # noqa: F401  (its import is not the search's cost)

    from alphatrace.forensics import clusters as cl
    from alphatrace.forensics import synthetic as syn
    from alphatrace.forensics.config import ForensicsConfig
    from alphatrace.forensics.slices import Categorical

    d = syn.runs(n, 0, extra_numeric=1)
    numeric = ["latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "score_final", "f0"]
    cols = {k: np.asarray(d[k], np.float64) for k in numeric}
    cols |= {k: Categorical.from_values(d[k]) for k in ("symbols", "direction", "regime",
                                                        "model", "hour")}
    t = time.process_time()
    r = cl.find(cols, numeric, d["y"], list(d["run_id"]), ForensicsConfig().clusters, 2)
    print(json.dumps({"cpu_s": time.process_time() - t, "tested": r.tested,
                      "clusters": [c.sentence for c in r.clusters]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
