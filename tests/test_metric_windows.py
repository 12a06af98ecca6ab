"""The window kernels (`alphatrace.metric_windows`) give the bits of the metrics' SQL
(`metrics.compute_one` on each window alone), on random windows of random rows: NULLs, ties,
signed zeros and magnitudes far apart included."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace import metric_windows, metrics

NAMES = [n for n in [*metrics.METRICS, "last_1_runs_pnl", "last_3_runs_pnl"]
         if metric_windows.supported(n)]

# a small pool of values (ties), both zeros, and magnitudes whose sums round
_VALUES = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.5, -1.5, 0.1, 1e15, -3e-7]),
                    st.floats(-1e6, 1e6))
_ROW = st.tuples(_VALUES, _VALUES, _VALUES, _VALUES,
                 st.one_of(st.none(), st.sampled_from([0, 1, 3])))


def _table(raw: list[tuple[float | None, float | None, float | None, float | None, int | None]]
           ) -> pa.Table:
    col = list(zip(*raw, strict=True)) if raw else [[], [], [], [], []]
    n = len(raw)
    return pa.table({
        "run_id": [f"r{i:04d}" for i in range(n)],
        "ts": pa.array([i * 1_000_000 for i in range(n)], pa.timestamp("us")),
        "realized_pnl_bps": pa.array(col[0], pa.float64()),
        "net_bps": pa.array(col[1], pa.float64()),
        "pnl_usd": pa.array(col[0], pa.float64()),
        "cost_usd": pa.array([None if v is None else abs(v) for v in col[2]], pa.float64()),
        "latency_ms": pa.array(col[3], pa.float64()),
        "errors": pa.array(col[4], pa.int64()),
        "net_usd": pa.array(col[1], pa.float64()),
    })


def _bits(v: object) -> bytes | None:
    """A value as the bytes compared: NULL (None or NaN from the kernels) as None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return np.float64(v).tobytes()


def _check(rows: pa.Table, windows: list[tuple[int, int]]) -> None:
    lo = np.array([a for a, _ in windows], dtype=np.int64)
    hi = np.array([b for _, b in windows], dtype=np.int64)
    got = metric_windows.compute(rows, lo, hi, NAMES)
    con = duckdb.connect()
    for i, (a, b) in enumerate(windows):
        want = metrics.compute_one(con, rows.slice(a, b - a), NAMES)
        for n in NAMES:
            assert _bits(got[n][i].item()) == _bits(want[n]), (n, a, b, got[n][i], want[n])


@given(st.lists(_ROW, min_size=1, max_size=40), st.data())
@settings(max_examples=60)
def test_kernels_equal_each_window_alone(raw: list[tuple[float | None, ...]],
                                         data: st.DataObject) -> None:
    rows = _table(raw)  # type: ignore[arg-type]
    n = rows.num_rows
    windows = data.draw(st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(1, n)).map(
            lambda t: (min(t[0], t[1] - 1), t[1])), min_size=1, max_size=12))
    _check(rows, windows)


def test_long_and_short_windows_together_in_small_chunks(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Windows of very different lengths, split over many matrices, each padded to its longest:
    the padding adds nothing."""
    rng = np.random.default_rng(3)
    raw = [(float(rng.normal(0, 30) * 10.0 ** rng.integers(-3, 4)), float(rng.normal()),
            0.01, None if k % 7 == 0 else float(rng.integers(50, 900)), int(k % 11 == 0))
           for k in range(300)]
    monkeypatch.setattr(metric_windows, "_CELLS", 500)
    _check(_table(raw), [(0, 300), (10, 11), (250, 300), (5, 65), (0, 1), (100, 160)])


def test_every_metric_rules_read_by_default_has_a_kernel() -> None:
    """The shipped gates (and the seed's) never fall back to windows written out as rows."""
    from alphatrace.governance.policy import load_governance
    from alphatrace.policy import DEFAULT_POLICY, SEED_POLICY, shipped_policy

    for name in (DEFAULT_POLICY, SEED_POLICY):
        gp = load_governance(shipped_policy(name))
        assert all(metric_windows.supported(n) for n in gp.gate_metrics()), name
    assert not metric_windows.supported("max_drawdown_bps")
    with pytest.raises(KeyError, match="max_drawdown_bps"):
        metric_windows.compute(_table([]), np.zeros(0, np.int64), np.zeros(0, np.int64),
                               ["max_drawdown_bps"])
