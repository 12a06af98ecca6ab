"""The embedded engine: DuckDB's spelling of the dialect primitives."""

from alphatrace.engines.duckdb.dialect import DUCKDB, DuckDBDialect

__all__ = ["DUCKDB", "DuckDBDialect"]
