"""alphatrace: explain every dollar an automated trading agent gains or loses.

    import alphatrace as at
    db = at.connect("alphatrace.duckdb")
    db.ingest("events.jsonl")

Entry points load lazily, so `import alphatrace.store` (or the SDK inside an agent) does not
import every area of the product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alphatrace.errors import AlphatraceError

if TYPE_CHECKING:
    from alphatrace.api import Database, connect

__version__ = "0.1.0"
__all__ = ["AlphatraceError", "Database", "__version__", "connect", "flush", "run", "size"]


def __getattr__(name: str) -> Any:
    if name in ("connect", "Database"):
        from alphatrace import api

        return getattr(api, name)
    if name in ("run", "flush"):
        from alphatrace import sdk

        return getattr(sdk, name)
    if name == "size":
        from alphatrace.sdk import sizing

        return sizing.size
    raise AttributeError(f"module 'alphatrace' has no attribute {name!r}")
