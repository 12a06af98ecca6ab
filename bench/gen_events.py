"""Synthetic JSON Lines for the ingest benchmark: N runs × (telemetry, alpha, pnl).

Lines are built column-wise with Arrow string kernels (no json.dumps per event: that alone
would take longer than the ingest being measured), in chunks of runs, and written from the
Arrow buffer as-is. Output is valid JSONL, deterministic for (runs, seed, shape, first run),
and uses the field shapes real agents send (bare symbols, "8h" horizons, floats with decimals).

Shapes (`SHAPES`), the same events written the ways users send them:
- `typed`: a "type" field, sequential run ids `r0000000000`, ISO times;
- `typed_uuid4`: a "type" field, random UUID4 run ids, epoch-second times;
- `bare`: the seed's bare shapes (no "type": the kind comes from the keys), UUID4 run ids,
  epoch-second times;
- `sdk`: what the SDK sends: "type", `event_id = "<run_id>:<n>"`, time-ordered UUIDv7 run ids,
  epoch times with microseconds.

    python bench/gen_events.py 1000000 bench/out/events.jsonl --shape bare
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
SHAPES = ("typed", "typed_uuid4", "bare", "sdk")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_AT = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])  # UUID text without dashes


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int, idx: np.ndarray | None = None) -> pa.Array:
    i = rng.integers(0, len(values), n) if idx is None else idx
    return pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), pa.array(values)).cast(pa.string())


def _num(x: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(x), pa.string())


def _iso(epoch_s: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(epoch_s * 1000, pa.timestamp("ms")), format="%Y-%m-%dT%H:%M:%SZ")


def _uuid_text(b: np.ndarray) -> pa.Array:
    """RFC 9562 text of n 16-byte UUIDs (`b`: uint8, shape (n, 16)), without a loop per id."""
    n = len(b)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[b >> 4]
    digits[:, 1::2] = _HEX[b & 15]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _HEX_AT] = digits
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def _uuid4(rng: np.random.Generator, n: int) -> pa.Array:
    b = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    return _uuid_text(b)


def _uuid7(rng: np.random.Generator, ms: np.ndarray) -> pa.Array:
    """UUIDv7 whose 48-bit timestamp is `ms` (time-ordered like the SDK's)."""
    b = rng.integers(0, 256, (len(ms), 16), dtype=np.uint8)
    be = ms.astype(">u8").view(np.uint8).reshape(-1, 8)
    b[:, :6] = be[:, 2:]
    b[:, 6] = (b[:, 6] & 0x0F) | 0x70
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    return _uuid_text(b)


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string columns and literals element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def chunk_lines(first_run: int, n: int, seed: int, total: int, shape: str = "typed") -> pa.Array:
    """3n lines (telemetry, alpha, pnl of each run, in run order), each ending in a newline.

    Runs are numbered from `first_run`; times spread one run per SPAN_S/total seconds, so a
    second file starting where the first ended continues it in time."""
    rng = np.random.default_rng([seed, first_run, SHAPES.index(shape)])
    runs = np.arange(first_run, first_run + n)
    # Time-ordered across the whole file, as a spool is: evenly spread, a little jitter.
    t = START + (runs * (SPAN_S / max(total, 1))).astype(np.int64)
    t += rng.integers(0, 30, n)
    if shape == "typed":
        run_id = _join("r", pc.utf8_lpad(_num(runs), width=10, padding="0"))
    elif shape == "sdk":
        run_id = _uuid7(rng, t * 1000 + rng.integers(0, 1000, n))
    else:
        run_id = _uuid4(rng, n)
    ai = rng.integers(0, len(AGENTS), n)
    agent = _pick(rng, AGENTS, n, ai)
    strategy = _pick(rng, STRATEGIES, n, ai)
    mi = rng.integers(0, len(MODELS), n)
    tok_in = np.round(1800 * np.exp(rng.normal(0, 0.25, n))).astype(np.int64)
    tok_out = np.round(420 * np.exp(rng.normal(0, 0.3, n))).astype(np.int64)
    cost = np.round((tok_in * PRICE_IN[mi] + tok_out * PRICE_OUT[mi]) / 1e6, 6)
    latency = np.round(450 * np.exp(rng.normal(0, 0.4, n)), 1)
    errors = (rng.random(n) < 0.02).astype(np.int64)
    score = np.round(rng.normal(0, 1.2, n), 2)
    pnl = np.round(rng.normal(1.5, 60, n), 2)
    symbol = _pick(rng, SYMBOLS, n)

    def when(dt_s: int) -> tuple[str | pa.Array, ...]:
        """The `"ts":...` value of each run's event at t + dt_s, in the shape's spelling."""
        if shape == "typed":
            return '"', _iso(t + dt_s), '"'
        if shape == "sdk":
            frac = np.round(rng.random(n), 6)
            return (_num(t + dt_s + frac),)
        return (_num(t + dt_s),)

    def head(kind: str, seq: str) -> tuple[str | pa.Array, ...]:
        typ = "" if shape == "bare" else f'"type":"{kind}",'
        eid: tuple[str | pa.Array, ...] = ()
        if shape == "sdk":
            eid = ('"event_id":"', run_id, f':{seq}",')
        return ("{", typ, *eid, '"run_id":"', run_id, '","agent":"', agent)

    telemetry = _join(
        *head("telemetry", "1"), '","strategy":"', strategy, '","ts":', *when(0),
        ',"model":"', _pick(rng, MODELS, n, mi),
        '","latency_ms":', _num(latency), ',"tokens_in":', _num(tok_in),
        ',"tokens_out":', _num(tok_out), ',"cost_usd":', _num(cost), ',"errors":', _num(errors),
        "}\n",
    )
    alpha = _join(
        *head("alpha", "2"), '","strategy":"', strategy, '","ts":', *when(1),
        ',"symbol":"', symbol,
        '","direction":"', _pick(rng, DIRECTIONS, n), '","score_final":', _num(score),
        ',"regime":"', _pick(rng, REGIMES, n), '","horizon":"', _pick(rng, HORIZONS, n),
        '","size_usd":10000}\n',
    )
    pnl_line = _join(
        *head("pnl", "3"), '","ts":', *when(8 * 3600),
        ',"symbol":"', symbol, '","realized_pnl_bps":', _num(pnl), "}\n",
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


def generate(path: Path, runs: int, seed: int = 0, shape: str = "typed",
             first_run: int = 0) -> tuple[int, int]:
    """Write `runs` runs, numbered from `first_run`, to `path`; returns (events, bytes)."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r} is not one of {', '.join(SHAPES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    nbytes = 0
    with open(path, "wb") as fh:
        for first in range(first_run, first_run + runs, CHUNK_RUNS):
            n = min(CHUNK_RUNS, first_run + runs - first)
            nbytes += _write(fh, chunk_lines(first, n, seed, runs, shape))
    return 3 * runs, nbytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=int)
    ap.add_argument("path", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=SHAPES, default="typed")
    ap.add_argument("--first-run", type=int, default=0, help="number of the first run (a second file)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    events, nbytes = generate(a.path, a.runs, a.seed, a.shape, a.first_run)
    dt = time.perf_counter() - t0
    print(f"{events:,} events, {nbytes / 1e6:,.1f} MB in {dt:.1f} s -> {a.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
