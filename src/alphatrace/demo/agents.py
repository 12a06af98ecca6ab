"""The simulated cast: agents, their strategy classes, models and habits.

Each agent writes its events the way a different SDK or team would (ISO or epoch times, bare or
full symbols, "8h" or seconds, typed or bare seed shapes), so the demo exercises every input
form the ingest contract accepts, not only the tidy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Strategy = Literal["FUNDING", "MOMENTUM", "MEAN_REVERT"]
TsStyle = Literal["iso_z", "iso_offset", "epoch_s", "epoch_ms"]
RunIdStyle = Literal["uuid", "prefixed", "int"]


@dataclass(frozen=True)
class Model:
    name: str
    usd_per_mtok_in: float
    usd_per_mtok_out: float


# List prices per million tokens (USD), as published by the providers in 2025.
MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("gpt-4o", 2.50, 10.00),
        Model("gpt-4o-mini", 0.15, 0.60),
        Model("claude-3-5-sonnet", 3.00, 15.00),
        Model("claude-3-5-haiku", 0.80, 4.00),
        Model("gemini-1.5-pro", 1.25, 5.00),
        Model("deepseek-chat", 0.27, 1.10),
        Model("llama-3.1-70b-instruct", 0.88, 0.88),
    )
}


@dataclass(frozen=True)
class Agent:
    name: str
    strategy: Strategy
    model: str
    symbols: tuple[str, ...]  # market symbols it trades
    bare_symbols: bool  # "BTC" instead of "BTCUSDT"
    horizons: tuple[str, ...]  # drawn uniformly per run
    horizon_seconds: bool  # writes 28800 instead of "8h"
    skill: float  # probability of trading the realised move; < 0: against it
    tokens_in: float  # median prompt tokens per LLM call
    tokens_out: float
    latency_ms: float  # median latency per LLM call at the median prompt
    latency_sigma: float  # log-normal sigma
    max_calls: int  # LLM calls (telemetry records) per run: 1..max_calls
    error_rate: float
    flat_rate: float  # share of runs that signal FLAT (no position)
    size_usd: float | None  # None: the field is left out (policy default applies)
    multi_leg_rate: float  # share of runs with one leg per symbol instead of one leg
    ts_style: TsStyle
    run_id_style: RunIdStyle
    run_id_prefix: str
    typed: bool  # writes "type"; False: the seed's bare shapes
    direction_case: Literal["upper", "lower", "title"]


CLUSTER_AGENT = "MeanReversionAgent"
BREAK_AGENT = "BreakoutMomentumAgent"
BREAK_MODEL_AFTER = "gpt-4o"  # exactly 2× gemini-1.5-pro's prices, same tokens
EXTERNAL_PNL_AGENT = "CryptoFundingRateAgent"

AGENTS: tuple[Agent, ...] = (
    Agent("CryptoFundingRateAgent", "FUNDING", "claude-3-5-haiku", ("BTCUSDT", "ETHUSDT"),
          bare_symbols=True, horizons=("8h",), horizon_seconds=False, skill=0.22,
          tokens_in=1830, tokens_out=420, latency_ms=380, latency_sigma=0.35, max_calls=1,
          error_rate=0.01, flat_rate=0.04, size_usd=10_000, multi_leg_rate=0.0,
          ts_style="iso_z", run_id_style="uuid", run_id_prefix="", typed=True,
          direction_case="upper"),
    Agent("BasisCarryAgent", "FUNDING", "deepseek-chat", ("BTCUSDT", "ETHUSDT"),
          bare_symbols=False, horizons=("8h", "24h"), horizon_seconds=True, skill=0.02,
          tokens_in=2600, tokens_out=650, latency_ms=690, latency_sigma=0.45, max_calls=2,
          error_rate=0.03, flat_rate=0.08, size_usd=5_000, multi_leg_rate=0.25,
          ts_style="epoch_ms", run_id_style="prefixed", run_id_prefix="basis-", typed=True,
          direction_case="upper"),
    Agent("TrendFollowerAgent", "MOMENTUM", "gpt-4o", ("BTCUSDT", "ETHUSDT"),
          bare_symbols=True, horizons=("24h",), horizon_seconds=False, skill=0.12,
          tokens_in=1400, tokens_out=300, latency_ms=300, latency_sigma=0.35, max_calls=3,
          error_rate=0.02, flat_rate=0.05, size_usd=20_000, multi_leg_rate=0.0,
          ts_style="iso_offset", run_id_style="uuid", run_id_prefix="", typed=False,
          direction_case="title"),
    Agent("BreakoutMomentumAgent", "MOMENTUM", "gemini-1.5-pro", ("BTCUSDT", "ETHUSDT"),
          bare_symbols=False, horizons=("8h",), horizon_seconds=False, skill=0.45,
          tokens_in=2100, tokens_out=500, latency_ms=450, latency_sigma=0.3, max_calls=1,
          error_rate=0.01, flat_rate=0.0, size_usd=10_000, multi_leg_rate=0.0,
          ts_style="iso_z", run_id_style="prefixed", run_id_prefix="bko-", typed=True,
          direction_case="upper"),
    Agent("MeanReversionAgent", "MEAN_REVERT", "claude-3-5-sonnet", ("BTCUSDT", "ETHUSDT"),
          bare_symbols=True, horizons=("8h",), horizon_seconds=False, skill=0.45,
          tokens_in=1900, tokens_out=380, latency_ms=540, latency_sigma=0.3, max_calls=1,
          error_rate=0.01, flat_rate=0.0, size_usd=10_000, multi_leg_rate=0.0,
          ts_style="epoch_s", run_id_style="uuid", run_id_prefix="", typed=True,
          direction_case="lower"),
    Agent("RangeFadeAgent", "MEAN_REVERT", "llama-3.1-70b-instruct", ("ETHUSDT",),
          bare_symbols=True, horizons=("4h", "8h"), horizon_seconds=False, skill=-0.04,
          tokens_in=1200, tokens_out=260, latency_ms=260, latency_sigma=0.5, max_calls=1,
          error_rate=0.06, flat_rate=0.1, size_usd=None, multi_leg_rate=0.0,
          ts_style="iso_z", run_id_style="int", run_id_prefix="", typed=True,
          direction_case="upper"),
)

CLUSTER_LATENCY_MS = 800.0
CLUSTER_TOKENS_IN = 2200
