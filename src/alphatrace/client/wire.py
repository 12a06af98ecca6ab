"""What goes over the wire between a remote caller and the server, on both sides.

JSON cannot say "this is a datetime" or "this is NaN", so values are tagged: a datetime is
`{"$datetime": "2025-03-01T08:00:00+00:00"}`, a tuple `{"$tuple": [...]}`, a report dataclass
`{"$report": "IngestReport", "fields": {...}}`, a dict whose keys are not all plain strings
`{"$dict": [[k, v], ...]}`. `decode(encode(x)) == x` for every value the API returns (tested
with hypothesis). Only the classes named here are ever built from the wire: no pickle, no
import by name. Tables travel as Arrow IPC streams.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import math
from decimal import Decimal
from typing import Any

import pyarrow as pa

from alphatrace import errors
from alphatrace.ledger.reconcile import ReconcileReport
from alphatrace.market.importer import MarketImportReport
from alphatrace.store.ingest import IngestReport

ARROW = "application/vnd.apache.arrow.stream"
# Response headers of an Arrow answer: what the table is, and a LedgerResult's summary.
RESULT_HEADER = "X-Alphatrace-Result"
SUMMARY_HEADER = "X-Alphatrace-Summary"

REPORTS: dict[str, type[Any]] = {
    c.__name__: c for c in (IngestReport, ReconcileReport, MarketImportReport)}

# The typed errors a server may raise, re-raised as the same class by the caller.
ERRORS: dict[str, type[errors.AlphatraceError]] = {
    c.__name__: c for c in (errors.AlphatraceError, errors.InputError, errors.SchemaError,
                            errors.PolicyError, errors.NotFoundError, errors.StoreError,
                            errors.GovernanceError)}
POLICY_ERROR_ATTRS = ("path", "line", "column", "suggestion")


def encode(o: Any) -> Any:
    """A JSON-encodable, tagged form of `o`; TypeError for a value with none."""
    if o is None or isinstance(o, bool | int | str):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else {"$float": repr(o)}
    if isinstance(o, dt.datetime):
        return {"$datetime": o.isoformat()}
    if isinstance(o, dt.date):
        return {"$date": o.isoformat()}
    if isinstance(o, dt.timedelta):
        return {"$timedelta": o.total_seconds()}
    if isinstance(o, Decimal):
        return {"$decimal": str(o)}
    if isinstance(o, bytes):
        return {"$bytes": base64.b64encode(o).decode()}
    if isinstance(o, list):
        return [encode(v) for v in o]
    if isinstance(o, tuple):
        return {"$tuple": [encode(v) for v in o]}
    if isinstance(o, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in o):
            return {k: encode(v) for k, v in o.items()}
        return {"$dict": [[encode(k), encode(v)] for k, v in o.items()]}
    if type(o).__name__ in REPORTS and dataclasses.is_dataclass(o):
        fields = {f.name: encode(getattr(o, f.name)) for f in dataclasses.fields(o)}
        return {"$report": type(o).__name__, "fields": fields}
    if hasattr(o, "item") and not hasattr(o, "__len__"):  # a numpy scalar
        return encode(o.item())
    raise TypeError(f"cannot send a {type(o).__name__} over the wire")


_TAGS = {
    "$float": lambda v: float(v),
    "$datetime": lambda v: dt.datetime.fromisoformat(v),
    "$date": lambda v: dt.date.fromisoformat(v),
    "$timedelta": lambda v: dt.timedelta(seconds=v),
    "$decimal": lambda v: Decimal(v),
    "$bytes": lambda v: base64.b64decode(v),
}


def decode(o: Any) -> Any:
    """The value `encode` was given."""
    if isinstance(o, list):
        return [decode(v) for v in o]
    if not isinstance(o, dict):
        return o
    if len(o) == 1:
        ((tag, v),) = o.items()
        if tag in _TAGS:
            return _TAGS[tag](v)
        if tag == "$tuple":
            return tuple(decode(x) for x in v)
        if tag == "$dict":
            return {_hashable(decode(k)): decode(x) for k, x in v}
    if set(o) == {"$report", "fields"}:
        cls = REPORTS.get(o["$report"])
        if cls is None:
            raise ValueError(f"unknown report {o['$report']!r} on the wire")
        return _report(cls, o["fields"])
    return {k: decode(v) for k, v in o.items()}


def _report(cls: type[Any], fields: dict[str, Any]) -> Any:
    """A report from the fields a server of another version sent: the ones this class does
    not know (a newer server's) are left out, and the ones it lacks (an older server's) take
    their defaults. A field without a default that is missing is an error naming it."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    missing = [name for name, f in known.items() if name not in fields
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"the server's {cls.__name__} lacks {', '.join(missing)}: "
                         "is it an older alphatrace than this client?")
    return cls(**{k: decode(v) for k, v in fields.items() if k in known})


def _hashable(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def table_bytes(t: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return sink.getvalue()


def table_of(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(data) as r:
        return r.read_all()


def error_doc(e: errors.AlphatraceError) -> dict[str, Any]:
    """The wire form of a typed error: its class (the nearest one the caller knows) and text."""
    name = next(c.__name__ for c in type(e).__mro__ if c.__name__ in ERRORS)
    doc: dict[str, Any] = {"type": name, "message": str(e)}
    if isinstance(e, errors.PolicyError):
        doc["attrs"] = {a: getattr(e, a) for a in POLICY_ERROR_ATTRS}
    return doc


def error_of(doc: dict[str, Any]) -> errors.AlphatraceError:
    """The exception `error_doc` described, of the same class and with the same text."""
    cls = ERRORS.get(str(doc.get("type")), errors.AlphatraceError)
    e = cls.__new__(cls)
    Exception.__init__(e, str(doc.get("message", "")))
    for k, v in (doc.get("attrs") or {}).items():
        if k in POLICY_ERROR_ATTRS:
            setattr(e, k, v)
    return e
