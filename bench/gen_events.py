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
from dataclasses import dataclass
from functools import cached_property
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


@dataclass(frozen=True)
class Universe:
    """Many agents and symbols: agent k (0-based) draws a share of the runs proportional to
    (k + 1) ** -zipf and belongs to strategy class k mod `strategies`; a run's symbol is one of
    `symbols` (`symbol_name`), uniformly; a share `pnl_share` of the runs also report an
    external pnl."""

    agents: int = 2000
    symbols: int = 500
    zipf: float = 1.1
    strategies: int = 20
    pnl_share: float = 0.1

    @cached_property
    def weights(self) -> np.ndarray:
        w = np.arange(1, self.agents + 1, dtype=np.float64) ** -self.zipf
        return w / w.sum()

    @cached_property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(f"Agent{k:04d}" for k in range(self.agents))

    @cached_property
    def strategy_names(self) -> tuple[str, ...]:
        return tuple(f"CLASS{k % self.strategies:02d}" for k in range(self.agents))

    @cached_property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(symbol_name(j) for j in range(self.symbols))


def symbol_name(j: int) -> str:
    """The market symbol of a universe's j-th symbol (signals use the same name)."""
    return f"U{j:03d}USDT"


def write_market(path: Path, universe: Universe, seed: int = 0) -> int:
    """Hourly bars and 8-hourly funding for every symbol of `universe`, from a day before the
    first run to two days after the last (every horizon's exit is priced), as one Parquet file
    in `market import`'s bars format plus one in its funding format (`path` and
    `path` with `_funding` before the suffix). Prices are geometric random walks (0.8% an
    hour) from 20-2,000. Returns the number of bars."""
    import duckdb

    first, hours = START - 86_400, (SPAN_S + 3 * 86_400) // 3600
    rng = np.random.default_rng([seed, universe.symbols, 7])
    steps = rng.normal(0, 0.008, (universe.symbols, hours))
    opens = (20 * 100 ** rng.random(universe.symbols))[:, None] * np.exp(np.cumsum(steps, 1))
    closes = np.concatenate([opens[:, 1:], opens[:, -1:]], axis=1)
    wick = np.abs(rng.normal(0, 0.003, opens.shape))
    bars = pa.table({
        "symbol": pa.array(np.repeat(universe.symbol_names, hours)),
        "ts": pa.array(np.tile((first + 3600 * np.arange(hours)) * 1_000_000, universe.symbols),
                       pa.timestamp("us", "UTC")),
        "open": opens.ravel(), "high": (np.maximum(opens, closes) * (1 + wick)).ravel(),
        "low": (np.minimum(opens, closes) * (1 - wick)).ravel(), "close": closes.ravel(),
        "volume": np.round(1e3 * rng.random(opens.size), 3),
    })
    settle = np.arange(0, hours, 8)
    funding = pa.table({
        "symbol": pa.array(np.repeat(universe.symbol_names, len(settle))),
        "ts": pa.array(np.tile((first + 3600 * settle) * 1_000_000, universe.symbols),
                       pa.timestamp("us", "UTC")),
        "funding_rate": np.round(rng.normal(1e-4, 2e-4, universe.symbols * len(settle)), 7),
        "mark_price": opens[:, settle].ravel(),
    })
    con = duckdb.connect()
    for table, where in ((bars, path), (funding, funding_path(path))):
        con.register("t", table)
        con.execute(f"COPY t TO '{where}' (FORMAT parquet)")
        con.unregister("t")
    con.close()
    return bars.num_rows


def funding_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_funding{path.suffix}")


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


def chunk_lines(first_run: int, n: int, seed: int, total: int, shape: str = "typed",
                universe: Universe | None = None) -> pa.Array:
    """3n lines (telemetry, alpha, pnl of each run, in run order), each ending in a newline;
    with a `universe`, a pnl line only for its share of the runs.

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
    agents, strategies, symbols = AGENTS, STRATEGIES, SYMBOLS
    if universe is None:
        ai = rng.integers(0, len(AGENTS), n)
    else:
        agents, strategies = universe.agent_names, universe.strategy_names
        symbols = universe.symbol_names
        ai = rng.choice(universe.agents, n, p=universe.weights)
    agent = _pick(rng, agents, n, ai)
    strategy = _pick(rng, strategies, n, ai)
    mi = rng.integers(0, len(MODELS), n)
    tok_in = np.round(1800 * np.exp(rng.normal(0, 0.25, n))).astype(np.int64)
    tok_out = np.round(420 * np.exp(rng.normal(0, 0.3, n))).astype(np.int64)
    cost = np.round((tok_in * PRICE_IN[mi] + tok_out * PRICE_OUT[mi]) / 1e6, 6)
    latency = np.round(450 * np.exp(rng.normal(0, 0.4, n)), 1)
    errors = (rng.random(n) < 0.02).astype(np.int64)
    score = np.round(rng.normal(0, 1.2, n), 2)
    pnl = np.round(rng.normal(1.5, 60, n), 2)
    symbol = _pick(rng, symbols, n)

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
    if universe is not None:  # the pnl lines of the runs that report one, in run order
        keep = np.flatnonzero(rng.random(n) < universe.pnl_share)
        both = pa.concat_arrays([telemetry, alpha, pc.take(pnl_line, pa.array(keep))])
        key = np.concatenate([3 * np.arange(n), 3 * np.arange(n) + 1, 3 * keep + 2])
        return pc.take(both, pa.array(np.argsort(key, kind="stable")))
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
             first_run: int = 0, universe: Universe | None = None) -> tuple[int, int]:
    """Write `runs` runs, numbered from `first_run`, to `path`; returns (events, bytes)."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r} is not one of {', '.join(SHAPES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    nbytes = events = 0
    with open(path, "wb") as fh:
        for first in range(first_run, first_run + runs, CHUNK_RUNS):
            n = min(CHUNK_RUNS, first_run + runs - first)
            lines = chunk_lines(first, n, seed, runs, shape, universe)
            nbytes += _write(fh, lines)
            events += len(lines)
    return events, nbytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=int)
    ap.add_argument("path", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=SHAPES, default="typed")
    ap.add_argument("--first-run", type=int, default=0, help="number of the first run (a second file)")
    ap.add_argument("--agents", type=int, help="a Universe of this many agents (with --symbols)")
    ap.add_argument("--symbols", type=int, default=500, help="the Universe's symbols")
    ap.add_argument("--market", type=Path, help="also write the Universe's bars (Parquet) here")
    a = ap.parse_args(argv)
    if a.market is not None and a.agents is None:
        ap.error("--market writes a Universe's bars: give --agents too")
    t0 = time.perf_counter()
    universe = None if a.agents is None else Universe(agents=a.agents, symbols=a.symbols)
    events, nbytes = generate(a.path, a.runs, a.seed, a.shape, a.first_run, universe)
    if a.market is not None:
        print(f"{write_market(a.market, universe):,} bars -> {a.market}")
    dt = time.perf_counter() - t0
    print(f"{events:,} events, {nbytes / 1e6:,.1f} MB in {dt:.1f} s -> {a.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
