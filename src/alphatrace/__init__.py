"""alphatrace: explain every dollar an automated trading agent gains or loses.

    import alphatrace as at
    db = at.connect("alphatrace.duckdb")
    db.ingest("events.jsonl")
"""

from __future__ import annotations

from typing import Any

from alphatrace.api import Database, connect
from alphatrace.errors import AlphatraceError

__version__ = "0.1.0"
__all__ = ["AlphatraceError", "Database", "__version__", "connect", "flush", "run", "size"]


def __getattr__(name: str) -> Any:
    """SDK and governance entry points load lazily so `import alphatrace` stays light."""
    if name in ("run", "flush"):
        from alphatrace import sdk

        return getattr(sdk, name)
    if name == "size":
        from alphatrace.governance import sizing

        return sizing.size
    raise AttributeError(f"module 'alphatrace' has no attribute {name!r}")
