"""Storage: the DuckDB file, its migrations, and ingest of the three event streams."""

from alphatrace.store.connection import Store

__all__ = ["Store"]
