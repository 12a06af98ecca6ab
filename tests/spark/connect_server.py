"""A Spark Connect server on this machine for tests/spark/test_connect.py: a local[2] driver
with the Spark Connect plugin, serving gRPC on 127.0.0.1:PORT (argv[1]), as a cluster's
driver would. Clients authenticate with $SPARK_CONNECT_AUTHENTICATE_TOKEN. It serves until its
stdin closes."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this interpreter
    spark = (SparkSession.builder.master("local[2]")
             .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
             .config("spark.connect.grpc.binding.address", "127.0.0.1")
             .config("spark.connect.grpc.binding.port", sys.argv[1])
             .config("spark.connect.authenticate.token",
                     os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"])
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "1g")
             .getOrCreate())
    print("serving", flush=True)
    sys.stdin.read()
    spark.stop()
