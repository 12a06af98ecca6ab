"""Inference cost from a versioned model price table.

Token conventions (OpenAI's, which most providers' SDKs can be mapped to):
- `tokens_in` counts every prompt token, cached ones included; `cached_tokens` of them are billed
  at the cached rate and not again at the input rate. (Anthropic reports cache reads apart from
  `input_tokens`: pass `tokens_in = input_tokens + cache_read_input_tokens`.)
- `tokens_out` counts every generated token, reasoning ones included; `reasoning_tokens` is kept
  for information and never billed a second time.

    cost = ((tokens_in − cached)·input + cached·cached_input + tokens_out·output) / per_tokens

`cached` is clamped to [0, tokens_in] so an inconsistent report can never produce a negative or
doubled charge. A model missing from the table has no cost (None), never a guessed one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from alphatrace.errors import InputError

ENV_PRICES = "ALPHATRACE_PRICES"


@dataclass(frozen=True)
class ModelPrice:
    input: float
    output: float
    cached_input: float

    def cost(self, tokens_in: int, tokens_out: int, cached_tokens: int = 0, per: float = 1e6) -> float:
        cached = min(max(cached_tokens, 0), max(tokens_in, 0))
        fresh = max(tokens_in, 0) - cached
        return (fresh * self.input + cached * self.cached_input + max(tokens_out, 0) * self.output) / per


@dataclass
class PriceTable:
    """Prices per model; `version` goes on every usage event so a cost can be audited later."""

    version: str
    effective: str
    models: dict[str, ModelPrice]
    per_tokens: float = 1e6
    _resolved: dict[str, ModelPrice | None] = field(default_factory=dict, repr=False)

    def price(self, model: str | None) -> ModelPrice | None:
        """Exact name, else the longest listed prefix (dated snapshots of a model)."""
        if not model:
            return None
        hit = self._resolved.get(model, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found = self.models.get(model)
        if found is None:
            best = max((m for m in self.models if model.startswith(m)), key=len, default=None)
            found = self.models[best] if best is not None else None
        self._resolved[model] = found
        return found

    def cost(self, model: str | None, tokens_in: int, tokens_out: int, cached_tokens: int = 0) -> float | None:
        p = self.price(model)
        if p is None:
            return None
        return p.cost(tokens_in, tokens_out, cached_tokens, self.per_tokens)

    def merged(self, overrides: Mapping[str, Any], version: str | None = None) -> PriceTable:
        """This table with some models replaced or added (user prices win)."""
        models = dict(self.models)
        models.update(_parse_models(overrides, "<override>"))
        return PriceTable(version or f"{self.version}+custom", self.effective, models, self.per_tokens)


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise InputError(f"{where}: price must be a number >= 0 (got {v!r})")
    return float(v)


def _parse_models(raw: Any, source: str) -> dict[str, ModelPrice]:
    if not isinstance(raw, Mapping):
        raise InputError(f"{source}: `models` must be a mapping of model name to prices")
    out: dict[str, ModelPrice] = {}
    for name, p in raw.items():
        if isinstance(p, ModelPrice):
            out[str(name)] = p
            continue
        where = f"{source}: model {name}"
        if not isinstance(p, Mapping) or "input" not in p or "output" not in p:
            raise InputError(f"{where}: needs `input` and `output` prices")
        inp = _num(p["input"], where)
        out[str(name)] = ModelPrice(inp, _num(p["output"], where), _num(p.get("cached_input", inp), where))
    return out


def parse_table(doc: Any, source: str) -> PriceTable:
    if not isinstance(doc, Mapping):
        raise InputError(f"{source}: a price table is a mapping with `version` and `models`")
    per = float(doc.get("per_tokens", 1_000_000))
    if per <= 0:
        raise InputError(f"{source}: per_tokens must be > 0")
    return PriceTable(
        str(doc.get("version", "custom")),
        str(doc.get("effective", "")),
        _parse_models(doc.get("models"), source),
        per,
    )


def load_table(path: str | os.PathLike[str]) -> PriceTable:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read price table: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    return parse_table(doc, str(path))


def shipped_table() -> PriceTable:
    text = resources.files("alphatrace.sdk").joinpath("prices.yaml").read_text(encoding="utf-8")
    return parse_table(yaml.safe_load(text), "prices.yaml")


def resolve_table(prices: PriceTable | Mapping[str, Any] | str | os.PathLike[str] | None) -> PriceTable:
    """The table to use: an explicit table, a YAML path, a {model: prices} mapping merged over
    the shipped table, else $ALPHATRACE_PRICES merged over the shipped table, else the shipped one."""
    if isinstance(prices, PriceTable):
        return prices
    base = shipped_table()
    if prices is None:
        env = os.environ.get(ENV_PRICES)
        if not env:
            return base
        prices = env
    if isinstance(prices, str | os.PathLike):
        user = load_table(prices)
        return base.merged(user.models, version=f"{base.version}+{user.version}")
    if "models" in prices:
        user = parse_table(prices, "<prices>")
        return base.merged(user.models, version=f"{base.version}+{user.version}")
    return base.merged(prices)
