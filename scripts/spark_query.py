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

With --stop FILE (the compaction tests' reader loop) the query, which must return one row, runs
again and again in the same session until FILE exists; --ready FILE is created after the first
successful run. A failed run (a file deleted between Spark's listing and its read) is counted and
retried, as a user would retry it. Spark's file listing cache is off, so every run lists the
partition locations the metastore gives at that moment. At the end one JSON line goes to stdout:
{"queries": N, "failed": F, "min": {column: value}, "max": {column: value}, "error": the last
failure's first line or null}.
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
    parser.add_argument("--stop", help="loop until this file exists (see above)")
    parser.add_argument("--ready", help="with --stop: created after the first run")
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
            .config("spark.sql.hive.filesourcePartitionFileCacheSize", "0" if args.stop else str(250 << 20))
            .enableHiveSupport()
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            if args.stop:
                return loop(spark, args)
            for row in spark.sql(args.sql).collect():
                print(json.dumps(row.asDict(recursive=True), default=str))
            sys.stdout.flush()
        except Exception as e:  # noqa: BLE001 - any query failure is reported the same way
            print(f"spark_query.py: query failed: {e}", file=sys.stderr)
            return 1
        finally:
            spark.stop()
    return 0


def loop(spark, args) -> int:
    """Runs the one-row query until the stop file exists; prints the smallest and largest value
    of each column."""
    queries, failed, lo, hi, error = 0, 0, {}, {}, None
    while not os.path.exists(args.stop) or queries == 0:
        try:
            row = spark.sql(args.sql).collect()[0].asDict()
        except Exception as e:  # noqa: BLE001 - a failed run is retried
            failed += 1
            error = str(e).splitlines()[0][:300]
            if failed > 1000:
                print(f"spark_query.py: the query keeps failing: {e}", file=sys.stderr)
                return 1
            continue
        queries += 1
        for k, v in row.items():
            lo[k] = min(lo.get(k, v), v)
            hi[k] = max(hi.get(k, v), v)
        if queries == 1 and args.ready:
            open(args.ready, "w").close()
    print(json.dumps({"queries": queries, "failed": failed, "min": lo, "max": hi, "error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
