"""Values `json` cannot encode, in the one form every alphatrace JSON output uses.

The CLI's `--json` documents and the SDK's event lines both pass this as `default=`, so a
timestamp reads the same wherever it is written: `alphatrace.utc.iso_z`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from alphatrace.utc import iso_z


def plain(o: Any) -> Any:
    """A JSON-encodable stand-in for `o`; TypeError when there is none."""
    if isinstance(o, dt.datetime):
        return iso_z(o)
    if isinstance(o, dt.date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):  # numpy arrays
        return o.tolist()
    if hasattr(o, "to_dict"):  # reports and other dataclass-like results
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
