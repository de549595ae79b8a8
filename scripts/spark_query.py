#!/usr/bin/env python3
"""Run one Spark SQL query against a Hive metastore and print the result rows as JSON lines.

For tests: the strongest check that a table StreamX registered is readable by a real engine.

    <venv>/bin/python scripts/spark_query.py --uris thrift://127.0.0.1:9083 \
        --sql 'SELECT dt, count(*) AS n FROM db.t GROUP BY dt ORDER BY dt'

Spark runs in-process (local[1], UI off, bound to 127.0.0.1) with Hive support and
spark.hadoop.hive.metastore.uris set to --uris. Only the rows go to stdout, one JSON object per
line (column name -> value; dates, timestamps and decimals as strings); Spark's own logging goes
to stderr. Spark's scratch files (warehouse dir, derby.log) go to a temporary directory.
Exit status: 0 on success, 1 when the query fails (the error is printed to stderr).
"""

import argparse
import json
import os
import sys
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uris", required=True, help="hive.metastore.uris, e.g. thrift://127.0.0.1:9083")
    parser.add_argument("--sql", required=True, help="one Spark SQL statement")
    args = parser.parse_args()

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # Executors (local mode: threads of the driver) use this interpreter for Python UDFs.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.sql import SparkSession  # slow import: after argument checks

    with tempfile.TemporaryDirectory(prefix="streamx-spark-") as scratch:
        os.chdir(scratch)
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("streamx-spark-query")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.hadoop.hive.metastore.uris", args.uris)
            .config("spark.sql.warehouse.dir", os.path.join(scratch, "warehouse"))
            .config("spark.sql.session.timeZone", "UTC")
            .enableHiveSupport()
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            for row in spark.sql(args.sql).collect():
                print(json.dumps(row.asDict(recursive=True), default=str))
            sys.stdout.flush()
        except Exception as e:  # noqa: BLE001 - any query failure is reported the same way
            print(f"spark_query.py: query failed: {e}", file=sys.stderr)
            return 1
        finally:
            spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
