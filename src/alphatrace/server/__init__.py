"""The HTTP collector and API: `create_app(db_path)`; `alphatrace serve` runs it with uvicorn."""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See `alphatrace.server.app.create_app` (imported lazily: FastAPI is not light)."""
    from alphatrace.server.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
