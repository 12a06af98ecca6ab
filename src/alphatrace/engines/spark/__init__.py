"""Apache Spark: the dialect's Spark spelling (text only, `engines.spark.dialect`) and the
runners that need pyspark (imported only from here)."""
