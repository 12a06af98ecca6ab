"""The bad lines and retried duplicates a real spool contains, mixed into the demo files.

Each bad line is a corrupted retry of a real event (inserted right after it) or a log line
that leaked into the spool, one of every kind of docs/architecture.md §Events bad input, so the demo's
quarantine shows each reason once; exact retries show that re-sent lines count as duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphatrace.demo.truth import BadLine, Problem

KIND_FILE = {"telemetry": "telemetry.jsonl", "alpha": "alpha.jsonl", "pnl": "pnl.jsonl"}
LEAKED_LOG = "2025-09-14 03:12:55,402 WARNING agent: LLM call timed out after 30000 ms, retrying"


@dataclass(frozen=True)
class Insertion:
    file: str
    after: int  # 0-based index of the original line it follows; -1: at the top
    text: str
    problem: Problem | None  # None: an exact retry (a duplicate, not a bad line)
    field: str | None


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), allow_nan=True)


def _with(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**body, key: value}


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (kind of the source event, problem, field, how to break it)
_RECIPES: tuple[tuple[str, Problem, str | None, Callable[[dict[str, Any]], str]], ...] = (
    ("telemetry", "not_json", None, lambda b: _dumps(b)[: len(_dumps(b)) // 2]),
    ("telemetry", "wrong_type", "tokens_in", lambda b: _dumps(_with(b, "tokens_in", str(b["tokens_in"])))),
    ("telemetry", "nan", "latency_ms", lambda b: _dumps(_with(b, "latency_ms", float("nan")))),
    ("telemetry", "negative_tokens", "tokens_out", lambda b: _dumps(_with(b, "tokens_out", -int(b["tokens_out"])))),
    ("alpha", "missing_field", "symbol", lambda b: _dumps(_without(b, "symbol"))),
    ("alpha", "unknown_direction", "direction", lambda b: _dumps(_with(b, "direction", "BUY"))),
    ("pnl", "wrong_type", "realized_pnl_bps", lambda b: _dumps(_with(b, "realized_pnl_bps", f"{b['realized_pnl_bps']}bps"))),
)


def corrupt(
    lines: dict[str, list[str]],
    events: dict[str, list[dict[str, Any]]],
    rng: np.random.Generator,
    duplicates: int,
) -> tuple[dict[str, list[str]], list[BadLine], int]:
    """The files with bad lines and exact retries inserted; returns where each bad line landed
    (1-based) and how many retries were added."""
    ins: list[Insertion] = []
    for kind, problem, fld, make in _RECIPES:
        pool = events[kind]
        if not pool:
            continue
        i = int(rng.integers(0, len(pool)))
        ins.append(Insertion(KIND_FILE[kind], i, make(pool[i]), problem, fld))
    alpha_n = len(lines[KIND_FILE["alpha"]])
    ins.append(Insertion(KIND_FILE["alpha"], int(rng.integers(-1, max(alpha_n, 1))), LEAKED_LOG,
                         "not_json", None))
    added = 0
    for kind in ("telemetry", "alpha", "telemetry")[:duplicates]:
        f = KIND_FILE[kind]
        if lines[f]:
            i = int(rng.integers(0, len(lines[f])))
            ins.append(Insertion(f, i, lines[f][i], None, None))
            added += 1
    out: dict[str, list[str]] = {}
    bad: list[BadLine] = []
    for f, original in lines.items():
        after: dict[int, list[Insertion]] = {}
        for x in ins:
            if x.file == f:
                after.setdefault(x.after, []).append(x)
        merged: list[str] = []

        def put(x: Insertion, merged: list[str] = merged, f: str = f) -> None:
            merged.append(x.text)
            if x.problem is not None:
                bad.append(BadLine(f, len(merged), x.problem, x.field))

        for x in after.get(-1, []):
            put(x)
        for i, text in enumerate(original):
            merged.append(text)
            for x in after.get(i, []):
                put(x)
        out[f] = merged
    bad.sort(key=lambda b: (b.file, b.line))
    return out, bad, added
