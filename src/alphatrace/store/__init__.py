"""Storage: the DuckDB file, its migrations, and ingest of the three event streams."""

from alphatrace.store.connection import Store, has_table, table_names

__all__ = ["Store", "has_table", "table_names"]
