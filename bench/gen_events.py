"""Synthetic JSON Lines for the ingest benchmark: N runs × (telemetry, alpha, pnl).

Lines are built column-wise with Arrow string kernels (no json.dumps per event: that alone
would take longer than the ingest being measured), in chunks of runs, and written from the
Arrow buffer as-is. Output is valid JSONL, deterministic for (runs, seed), and uses the field
shapes real agents send (ISO times, bare symbols, "8h" horizons, floats with decimals).

    python bench/gen_events.py 1000000 bench/out/events.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

AGENTS = (
    "CryptoFundingRateAgent", "BasisCarryAgent", "TrendFollowerAgent", "BreakoutMomentumAgent",
    "MeanReversionAgent", "RangeFadeAgent", "OrderflowImbalanceAgent", "VolatilityBreakoutAgent",
    "NewsSentimentAgent", "PairsSpreadAgent", "LiquidationHunterAgent", "CarryRotationAgent",
)
STRATEGIES = ("FUNDING", "FUNDING", "MOMENTUM", "MOMENTUM", "MEAN_REVERT", "MEAN_REVERT",
              "MOMENTUM", "MOMENTUM", "MOMENTUM", "MEAN_REVERT", "MEAN_REVERT", "FUNDING")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-5-haiku", "gemini-1.5-pro",
          "deepseek-chat")
PRICE_IN = np.array([2.50, 0.15, 3.00, 0.80, 1.25, 0.27])  # USD per million tokens
PRICE_OUT = np.array([10.00, 0.60, 15.00, 4.00, 5.00, 1.10])
SYMBOLS = ("BTC", "ETH", "BTCUSDT", "ETHUSDT")
DIRECTIONS = ("LONG", "SHORT", "FLAT")
REGIMES = ("TRENDING", "RANGING", "HIGH_VOL")
HORIZONS = ("4h", "8h", "24h")
START = 1_748_736_000  # 2025-06-01T00:00:00Z
SPAN_S = 188 * 86_400
CHUNK_RUNS = 250_000


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int, idx: np.ndarray | None = None) -> pa.Array:
    i = rng.integers(0, len(values), n) if idx is None else idx
    return pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), pa.array(values)).cast(pa.string())


def _num(x: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(x), pa.string())


def _iso(epoch_s: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(epoch_s * 1000, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%SZ")


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string columns and literals element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def chunk_lines(first_run: int, n: int, seed: int, total: int) -> pa.Array:
    """3n lines (telemetry, alpha, pnl of each run, in run order), each ending in a newline."""
    rng = np.random.default_rng([seed, first_run])
    run_id = _join("r", pc.utf8_lpad(_num(np.arange(first_run, first_run + n)), width=10, padding="0"))
    ai = rng.integers(0, len(AGENTS), n)
    agent = _pick(rng, AGENTS, n, ai)
    strategy = _pick(rng, STRATEGIES, n, ai)
    # Time-ordered across the whole file, as a spool is: evenly spread, a little jitter.
    t = START + (np.arange(first_run, first_run + n) * (SPAN_S / max(total, 1))).astype(np.int64)
    t += rng.integers(0, 30, n)
    mi = rng.integers(0, len(MODELS), n)
    tok_in = np.round(1800 * np.exp(rng.normal(0, 0.25, n))).astype(np.int64)
    tok_out = np.round(420 * np.exp(rng.normal(0, 0.3, n))).astype(np.int64)
    cost = np.round((tok_in * PRICE_IN[mi] + tok_out * PRICE_OUT[mi]) / 1e6, 6)
    latency = np.round(450 * np.exp(rng.normal(0, 0.4, n)), 1)
    errors = (rng.random(n) < 0.02).astype(np.int64)
    score = np.round(rng.normal(0, 1.2, n), 2)
    pnl = np.round(rng.normal(1.5, 60, n), 2)
    head = ('"run_id":"', run_id, '","agent":"', agent, '","strategy":"', strategy, '","ts":"')
    telemetry = _join(
        '{"type":"telemetry",', *head, _iso(t), '","model":"', _pick(rng, MODELS, n, mi),
        '","latency_ms":', _num(latency), ',"tokens_in":', _num(tok_in),
        ',"tokens_out":', _num(tok_out), ',"cost_usd":', _num(cost), ',"errors":', _num(errors),
        "}\n",
    )
    symbol = _pick(rng, SYMBOLS, n)
    alpha = _join(
        '{"type":"alpha",', *head, _iso(t + 1), '","symbol":"', symbol,
        '","direction":"', _pick(rng, DIRECTIONS, n), '","score_final":', _num(score),
        ',"regime":"', _pick(rng, REGIMES, n), '","horizon":"', _pick(rng, HORIZONS, n),
        '","size_usd":10000}\n',
    )
    pnl_line = _join(
        '{"type":"pnl","run_id":"', run_id, '","agent":"', agent, '","ts":"', _iso(t + 8 * 3600),
        '","symbol":"', symbol, '","realized_pnl_bps":', _num(pnl), "}\n",
    )
    both = pa.concat_arrays([telemetry, alpha, pnl_line])
    order = np.arange(3 * n).reshape(3, n).T.ravel()  # t0, a0, p0, t1, a1, p1, ...
    out: pa.Array = pc.take(both, pa.array(order))
    return out


def _write(fh: object, lines: pa.Array) -> int:
    """Write an Arrow string array's bytes (lines already end in newlines) without copies."""
    arr = lines.cast(pa.large_string()) if lines.type != pa.large_string() else lines
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = memoryview(arr.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    fh.write(data)  # type: ignore[attr-defined]
    return len(data)


def generate(path: Path, runs: int, seed: int = 0) -> tuple[int, int]:
    """Write `runs` runs to `path`; returns (events, bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbytes = 0
    with open(path, "wb") as fh:
        for first in range(0, runs, CHUNK_RUNS):
            n = min(CHUNK_RUNS, runs - first)
            nbytes += _write(fh, chunk_lines(first, n, seed, runs))
    return 3 * runs, nbytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=int)
    ap.add_argument("path", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    events, nbytes = generate(a.path, a.runs, a.seed)
    dt = time.perf_counter() - t0
    print(f"{events:,} events, {nbytes / 1e6:,.1f} MB in {dt:.1f} s -> {a.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
