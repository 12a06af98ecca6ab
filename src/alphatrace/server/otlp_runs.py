"""Which run, agent and strategy a span belongs to: decided per trace (pure).

Instrumentations put the work of one agent run in one trace, but only some spans say whose
run it is: the user tags the root span (`alphatrace.run_id` around the agent's work), while
the LLM calls that carry the tokens and cost are children without the tag. So the fields of
`otlp_attrs.TRACE` are decided for the trace as a whole:

- a span's own tag (the first key, e.g. `alphatrace.run_id`: the span attribute, then its
  resource's) wins for that span;
- otherwise the trace's value: for each key in table order (the tag, then the fallbacks), the
  root span's value, else that of the earliest-starting span that has it (ties by span id);
- otherwise the last resort: the trace id for the run, none for the others.

The choice depends only on the set of spans considered, never on their order of arrival or on
which request carried them (`trace_attribution` sorts them), so the same spans always give the
same events. `server/trace_hold.py` decides when a trace's spans are all there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alphatrace.server.otlp_attrs import TRACE

Attribution = tuple[str | None, ...]  # per field of TRACE: the trace's value


@dataclass(slots=True)  # not frozen: one is built per span, and a frozen init costs 5x
class SpanTags:
    """What one span says about its trace: per field of TRACE, per key, its value (span
    attribute, then resource attribute; None when neither has it)."""

    trace_id: str
    span_id: str
    root: bool
    start: int  # ns since 1970; 0 when unknown
    values: tuple[tuple[str | None, ...], ...]

    @property
    def rank(self) -> tuple[bool, int, str]:
        """Root first, then by start time, then by span id: the order values are taken in."""
        return (not self.root, self.start, self.span_id)


def _text(v: Any) -> str | None:
    if v is None or v == "" or isinstance(v, (dict, list)):
        return None
    return str(v)


_KEYS = frozenset(k for src in TRACE for k in src.keys)
_TRACE_KEYS = tuple(src.keys for src in TRACE)


def _values(src: dict[str, Any]) -> tuple[tuple[str | None, ...], ...]:
    return tuple(tuple(_text(src.get(k)) for k in keys) for keys in _TRACE_KEYS)


def resource_values(resource: dict[str, Any]) -> tuple[tuple[str | None, ...], ...]:
    """What a resource says (computed once for all the spans under it)."""
    return _values(resource)


def span_tags(trace_id: str, span_id: str, root: bool, start: int | None,
              attrs: dict[str, Any], resource: dict[str, Any],
              res_values: tuple[tuple[str | None, ...], ...] | None = None) -> SpanTags:
    """What a span says (its attribute, else its resource's, per key); `res_values`:
    `resource_values(resource)` if already known."""
    if res_values is None:
        res_values = _values(resource)
    if _KEYS.isdisjoint(attrs):  # most spans: only what the resource says
        values = res_values
    else:
        values = tuple(tuple(t if (t := _text(attrs.get(k))) is not None else r
                             for k, r in zip(keys, rv, strict=True))
                       for keys, rv in zip(_TRACE_KEYS, res_values, strict=True))
    return SpanTags(trace_id, span_id, root, start or 0, values)


def _rank(t: SpanTags) -> tuple[bool, int, str]:
    return t.rank


def trace_attribution(trace_id: str, tags: Iterable[SpanTags]) -> Attribution:
    """The trace's value of each TRACE field, from the spans in `tags` (any order)."""
    ordered = sorted(tags, key=_rank)
    out: list[str | None] = []
    for i, src in enumerate(TRACE):
        value = None
        for j in range(len(src.keys)):
            for t in ordered:
                value = t.values[i][j]
                if value is not None:
                    break
            if value is not None:
                break
        if value is None and src.field == "run_id":
            value = trace_id
        out.append(value)
    return tuple(out)


_TRACE_FIELDS = tuple(enumerate(src.field for src in TRACE))


def attribute(event: dict[str, Any], tags: SpanTags, trace: Attribution) -> dict[str, Any]:
    """`event` with its TRACE fields set (a copy; `set_attribution` says how)."""
    out = dict(event)
    set_attribution(out, tags, trace)
    return out


def set_attribution(event: dict[str, Any], tags: SpanTags, trace: Attribution) -> None:
    """Set the TRACE fields of `event`: the span's own tag, else the trace's value (a field
    with neither is left out, as the mapping leaves out every unset field)."""
    values = tags.values
    for i, name in _TRACE_FIELDS:
        value = values[i][0] or trace[i]
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value


def trace_attributions(tags: list[SpanTags]) -> dict[str, Attribution]:
    """Per trace id, its attribution with the spans in `tags` as the whole of each trace."""
    by_trace: dict[str, list[SpanTags]] = {}
    for t in tags:
        by_trace.setdefault(t.trace_id, []).append(t)
    return {tid: trace_attribution(tid, ts) for tid, ts in by_trace.items()}


def attribute_together(events: list[dict[str, Any]], tags: list[SpanTags],
                       traces: dict[str, Attribution]) -> None:
    """Attribute each event (in place) with its trace's value in `traces`
    (`trace_attributions`): the mapping's own new events, so no copy."""
    for ev, t in zip(events, tags, strict=True):
        set_attribution(ev, t, traces[t.trace_id])
