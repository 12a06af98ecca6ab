"""`alphatrace.run`: one agent run, as a context manager (sync or async) or a decorator.

Event plan, chosen so the ledger's per-run sums (docs/architecture.md §Events) come out right:
- `usage()` → one telemetry event: model, tokens_in, tokens_out, cost_usd (from the price table
  unless given), and no `latency_ms` (a timed call's latency rides along as the attr
  `call_latency_ms`), so tokens and cost add up across calls while latency is not counted twice.
- `alpha()` → one alpha event per leg; `pnl()` → one pnl event.
- run end → one telemetry event with `latency_ms` = wall time of the run, `start_ts`/`end_ts`,
  and `errors` = exceptions that escaped the run + `error()` calls. Its `ts` is the run start.
Every event carries type, run_id, agent, strategy, ts and `event_id = "<run_id>:<n>"` (the
closing one `"<run_id>:end"`), so a retried batch or a re-read spool file never counts twice.

The hot path builds dicts and appends them to the emitter's queue; nothing here does I/O.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from alphatrace.sdk import emitter as _em
from alphatrace.sdk.ids import uuid7

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("alphatrace_run", default=None)


def current_run() -> Run | None:
    """The innermost active run in this thread or task (for code inside a decorated function)."""
    return _current.get()


class Run:
    """An active run: record LLM usage, signals and PnL against one run_id."""

    __slots__ = (
        "_emit",
        "_n",
        "_t0",
        "agent",
        "attrs",
        "error_type",
        "errors",
        "parent_run_id",
        "run_id",
        "start",
        "strategy",
    )

    def __init__(self, agent: str, strategy: str | None = None, run_id: str | None = None,
                 attrs: dict[str, Any] | None = None) -> None:
        self.run_id = run_id or uuid7()
        self.agent = agent
        self.strategy = strategy
        self.attrs = attrs
        self.errors = 0
        self.error_type: str | None = None
        parent = _current.get()
        self.parent_run_id = parent.run_id if parent is not None else None
        self._n = itertools.count(1)
        self._emit = _em.get_emitter().put
        self.start = time.time()
        self._t0 = time.perf_counter()

    def _base(self, kind: str, ts: Any, extra: dict[str, Any]) -> dict[str, Any]:
        ev = dict(extra) if extra else {}
        ev["type"] = kind
        ev["event_id"] = f"{self.run_id}:{next(self._n)}"  # count() is atomic: threads may share a run
        ev["run_id"] = self.run_id
        ev["agent"] = self.agent
        ev["strategy"] = self.strategy
        ev["ts"] = time.time() if ts is None else ts
        return ev

    def usage(
        self,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        *,
        cost_usd: float | None = None,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        latency_ms: float | None = None,
        ts: Any = None,
        **attrs: Any,
    ) -> None:
        """One LLM call's tokens. Cost comes from the price table unless `cost_usd` is given;
        cached tokens are billed at the cached rate, reasoning tokens are already in tokens_out."""
        ev = self._base("telemetry", ts, attrs)
        ev["model"] = model
        ev["tokens_in"] = tokens_in
        ev["tokens_out"] = tokens_out
        if cost_usd is None:
            table = _em.prices()
            cost_usd = table.cost(model, tokens_in, tokens_out, cached_tokens)
            if cost_usd is not None:
                ev["price_version"] = table.version
        ev["cost_usd"] = cost_usd
        if cached_tokens:
            ev["cached_tokens"] = cached_tokens
        if reasoning_tokens:
            ev["reasoning_tokens"] = reasoning_tokens
        if latency_ms is not None:
            ev["call_latency_ms"] = latency_ms
        self._emit(ev)

    def alpha(
        self,
        symbol: str,
        direction: str,
        score: float | None = None,
        *,
        regime: str | None = None,
        size_usd: float | None = None,
        horizon: str | float | None = None,
        ts: Any = None,
        **attrs: Any,
    ) -> None:
        """One signal leg (LONG, SHORT or FLAT); `score` is stored as score_final."""
        ev = self._base("alpha", ts, attrs)
        ev["symbol"] = symbol
        ev["direction"] = direction
        if score is not None:
            ev["score_final"] = score
        ev["regime"] = regime
        ev["size_usd"] = size_usd
        ev["horizon"] = horizon
        self._emit(ev)

    def pnl(
        self,
        realized_pnl_bps: float,
        *,
        symbol: str | None = None,
        entry_price: float | None = None,
        exit_price: float | None = None,
        revision: int | None = None,
        ts: Any = None,
        **attrs: Any,
    ) -> None:
        """Realized PnL reported by the execution venue (supersedes the reconciled figure)."""
        ev = self._base("pnl", ts, attrs)
        ev["realized_pnl_bps"] = realized_pnl_bps
        ev["symbol"] = symbol
        ev["entry_price"] = entry_price
        ev["exit_price"] = exit_price
        ev["revision"] = revision
        self._emit(ev)

    def error(self, exc: BaseException | str | None = None) -> None:
        """Count an error the agent handled itself (an escaping exception is counted anyway)."""
        self.errors += 1
        if exc is not None and self.error_type is None:
            self.error_type = exc if isinstance(exc, str) else type(exc).__name__

    def call(self, model: str | None = None) -> Call:
        """Time one LLM call: `with run.call("gpt-4o") as c: ...; c.usage(tokens_in=.., tokens_out=..)`."""
        return Call(self, model)

    def _finish(self, exc: BaseException | None) -> None:
        if exc is not None:
            self.errors += 1
            if self.error_type is None:
                self.error_type = type(exc).__name__
        end = time.time()
        wall_ms = (time.perf_counter() - self._t0) * 1000.0
        ev = dict(self.attrs) if self.attrs else {}
        ev["type"] = "telemetry"
        ev["event_id"] = f"{self.run_id}:end"
        ev["run_id"] = self.run_id
        ev["agent"] = self.agent
        ev["strategy"] = self.strategy
        ev["ts"] = self.start
        ev["start_ts"] = self.start
        ev["end_ts"] = end
        ev["latency_ms"] = wall_ms
        ev["errors"] = self.errors
        ev["error_type"] = self.error_type
        ev["parent_run_id"] = self.parent_run_id
        self._emit(ev)


class Call:
    """Times one LLM call inside a run; an exception in it counts as a run error."""

    __slots__ = ("_done", "_t0", "model", "run", "start")

    def __init__(self, run: Run, model: str | None) -> None:
        self.run = run
        self.model = model
        self._done = False
        self.start = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Call:
        self.start = time.time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        if e is not None:
            self.run.error(e)
        if not self._done:
            self.usage()

    def usage(self, tokens_in: int = 0, tokens_out: int = 0, **kw: Any) -> None:
        self._done = True
        ms = (time.perf_counter() - self._t0) * 1000.0
        kw.setdefault("ts", self.start)
        self.run.usage(kw.pop("model", self.model), tokens_in, tokens_out, latency_ms=ms, **kw)


class RunScope:
    """What `alphatrace.run(...)` returns: a sync/async context manager and a decorator."""

    __slots__ = ("_stack", "agent", "attrs", "run_id", "strategy")

    def __init__(self, agent: str, strategy: str | None, run_id: str | None,
                 attrs: dict[str, Any]) -> None:
        self.agent = agent
        self.strategy = strategy
        self.run_id = run_id
        self.attrs = attrs
        self._stack: list[tuple[Run, contextvars.Token[Run | None]]] = []

    def __enter__(self) -> Run:
        r = Run(self.agent, self.strategy, self.run_id, self.attrs)
        self._stack.append((r, _current.set(r)))
        return r

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        r, token = self._stack.pop()
        try:
            _current.reset(token)
        except ValueError:  # exited in another context (e.g. a generator moved threads)
            _current.set(None)
        r._finish(e)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: Any) -> None:
        self.__exit__(et, e, tb)

    def _fresh(self) -> RunScope:
        return RunScope(self.agent, self.strategy, self.run_id, self.attrs)

    def __call__(self, fn: F) -> F:
        """Each call of `fn` is one run; inside it, `alphatrace.sdk.current_run()` is that run."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def run(agent: str, strategy: str | None = None, *, run_id: str | None = None,
        **attrs: Any) -> RunScope:
    """Start a run: `with alphatrace.run(agent="A", strategy="S") as run: ...`.

    `run_id` defaults to a fresh UUIDv7; extra keyword arguments are attached to the run's
    closing event as attrs. Also usable as `@alphatrace.run(agent="A")` on sync or async
    functions, and with `async with`.
    """
    return RunScope(agent, strategy, run_id, attrs)
