"""What broke first: change points per agent in cost, tokens, latency, errors and PnL, ordered.

Detection: each series (in the agent's (ts, run_id) run order) is standardised robustly —
median removed, divided by the noise scale 1.4826·MAD(first differences)/√2, which a level
shift barely moves (standard deviation when that MAD is 0) — and segmented with `ruptures`'
kernel change-point detection (linear kernel, i.e. changes in mean; exact penalised
optimisation) with penalty `penalty · ln(n)` (default 3·ln n, a BIC-style penalty made
stricter for heavy-tailed PnL and cost) and segments of at least `min_size` runs. Series
longer than `max_points` are averaged in consecutive blocks first (boundaries map back to runs).

Confirmation: each detected change is kept only if Welch's two-sided t-test between the
segment before it and the segment after it gives p < p_max. Before/after values are the
metric (from the registry) over those two segments.

Ordering: a "break" is a confirmed rise of cost, tokens, latency or error rate, or a confirmed
fall of PnL. Per agent, the first operational break and the first PnL fall at or after it are
reported with the gap in runs: "cost per run rose 2.1× at run 361 (2024-03-02), 108 runs
before PnL fell from +12 to −31 bps at run 469"; an agent whose PnL fell with no operational
break gets its largest fall, said to have none before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alphatrace import metrics
from alphatrace.forensics.config import ChangepointsConfig
from alphatrace.forensics.stats import welch_samples
from alphatrace.forensics.text import num, pct, signed
from alphatrace.quantiles import median

F64 = npt.NDArray[np.float64]

OPERATIONAL = ("cost_per_run", "tokens_per_run", "mean_latency_ms", "error_rate")


def robust_standardise(x: F64) -> F64 | None:
    """(x − median) / noise scale; None for a constant series (nothing to detect)."""
    if x.size < 3:
        return None
    d = np.diff(x)
    scale = 1.4826 * median(np.abs(d - median(d))) / math.sqrt(2)
    if not scale > 0:
        scale = float(np.std(x))
    if not scale > 0:
        return None
    return (x - median(x)) / scale


def detect(x: F64, cfg: ChangepointsConfig) -> list[int]:
    """0-based positions where a new segment starts (change points), ascending."""
    z = robust_standardise(np.asarray(x, dtype=np.float64))
    if z is None or z.size < 2 * cfg.min_size:
        return []
    block = max(1, math.ceil(z.size / cfg.max_points))
    if block > 1:
        m = z.size // block
        zb = z[: m * block].reshape(m, block).mean(axis=1) * math.sqrt(block)
    else:
        zb = z
    min_size = max(2, cfg.min_size // block)
    if zb.size < 2 * min_size:
        return []
    import ruptures as rpt  # ~1.5 s to import: only load it when change points are searched

    algo = rpt.KernelCPD(kernel="linear", min_size=min_size, jump=1).fit(zb.reshape(-1, 1))
    bkps = algo.predict(pen=cfg.penalty * math.log(zb.size))
    return [int(b) * block for b in bkps[:-1]]


@dataclass(frozen=True)
class Change:
    agent: str
    metric: str
    run_index: int  # 1-based position of the first run after the change, in the agent's runs
    run_id: str
    ts: Any
    before: float | None
    after: float | None
    p: float

    @property
    def ratio(self) -> float | None:
        """after / before for positive quantities; None for PnL (bps cross zero)."""
        if self.metric == "mean_pnl_bps" or self.before is None or self.after is None \
                or self.before <= 0 or self.after < 0:
            return None
        return self.after / self.before

    @property
    def rose(self) -> bool:
        return self.before is not None and self.after is not None and self.after > self.before

    def phrase(self) -> str:
        label = metrics.get(self.metric).label
        verb = "rose" if self.rose else "fell"
        if self.metric == "mean_pnl_bps":
            what = f"{label} {verb} from {signed(self.before or 0)} to {signed(self.after or 0)} bps"
        elif self.metric == "error_rate":
            what = f"{label} {verb} from {pct(self.before or 0, 0)} to {pct(self.after or 0, 0)}"
        elif self.ratio is not None and self.rose:
            what = f"{label} {verb} {self.ratio:.1f}×"
        else:
            what = f"{label} {verb} from {num(round(self.before or 0, 4))} to {num(round(self.after or 0, 4))}"
        return f"{what} at run {self.run_index}"

    def when(self) -> str:
        return self.ts.strftime("%Y-%m-%d") if hasattr(self.ts, "strftime") else str(self.ts)

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "metric": self.metric, "run_index": self.run_index,
                "run_id": self.run_id, "ts": self.ts, "before": self.before, "after": self.after,
                "ratio": self.ratio, "p": self.p, "direction": "rose" if self.rose else "fell"}


SegmentMetric = Callable[[str, str, int, int], float | None]


def agent_changes(agent: str, run_index: npt.NDArray[np.int64], run_ids: list[str], ts: list[Any],
                  series: dict[str, F64], cfg: ChangepointsConfig,
                  segment_metric: SegmentMetric) -> list[Change]:
    """Confirmed change points of one agent's series (NaN = the run has no value)."""
    out: list[Change] = []
    last = int(run_index[-1]) + 1 if run_index.size else 1
    for metric, values in series.items():
        ok = np.isfinite(values)
        x, ri = values[ok], run_index[ok]
        pos = detect(x, cfg)
        bounds = [0, *pos, x.size]
        for j, cp in enumerate(pos):
            lo, hi = bounds[j], bounds[j + 2]
            p = welch_samples(x[lo:cp], x[cp:hi], "two-sided")
            if p >= cfg.p_max:
                continue
            start_run = int(ri[cp])
            lo_run = int(ri[lo])
            hi_run = int(ri[hi]) if hi < x.size else last
            k = start_run - 1  # run_index is 1-based and contiguous over the agent's runs
            out.append(Change(agent, metric, start_run, run_ids[k], ts[k],
                              segment_metric(agent, metric, lo_run, start_run),
                              segment_metric(agent, metric, start_run, hi_run), p))
    out.sort(key=lambda c: (c.run_index, c.metric))
    return out


def findings(changes: list[Change]) -> list[str]:
    """The ordering sentences, at most one per agent.

    With an operational break (a confirmed rise of cost, tokens, latency or errors): the first
    one, and the first PnL fall at or after it ("cost per run rose 2.1× at run 361 (…), 108 runs
    before PnL fell …"). Without one: the agent's largest PnL fall, said to have no operational
    change before it (the market or the signal, not the machinery).
    """
    out: list[str] = []
    for agent in sorted({c.agent for c in changes}):
        mine = [c for c in changes if c.agent == agent]
        falls = [c for c in mine if c.metric == "mean_pnl_bps" and not c.rose]
        ops = [c for c in mine if c.metric in OPERATIONAL and c.rose]
        if ops:
            first = ops[0]
            after = [f for f in falls if f.run_index >= first.run_index]
            if after:
                fall = after[0]
                gap = fall.run_index - first.run_index
                tail = f"{gap} runs before {fall.phrase()}" if gap > 0 else f"together with {fall.phrase()}"
                out.append(f"{agent}: {first.phrase()} ({first.when()}), {tail} ({fall.when()}).")
            else:
                out.append(f"{agent}: {first.phrase()} ({first.when()}); PnL did not fall after it.")
        elif falls:
            fall = max(falls, key=lambda c: ((c.before or 0) - (c.after or 0), -c.run_index))
            out.append(f"{agent}: {fall.phrase()} ({fall.when()}) with no change in cost, tokens, "
                       "latency or errors before it.")
    return out
