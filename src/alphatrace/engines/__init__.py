"""Where alphatrace computes: the embedded DuckDB file (the default) or Apache Spark (#18).

One definition per computation, two ways to run it. Relational steps are SQL builders that
take a `Dialect` (`engines.dialect`): the few primitives the two SQL dialects spell
differently. Numeric kernels (`ledger.locate`, `metrics.path_columns`) are numpy functions
both engines call. Only `engines.spark` imports pyspark; the areas never do.
"""
