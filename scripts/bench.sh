#!/usr/bin/env bash
# End-to-end benchmark, same run, same data: loads a topic of JSON clickstream events (~1 KB) on
# the tansu broker started by scripts/services.sh (the embedded mock broker keeps only ~5 MB per
# partition, too little here), then times one after another, RUNS times each
# (scripts/bench/compare.py):
#   - a raw consume counting bytes (confluent-kafka; the broker's limit here),
#   - a ~70-line Python sink (confluent-kafka + pyarrow.json + pq.write_table; the peer),
#   - `streamx ingest --stop-at-end` -> Parquet zstd on local disk, and on S3 (moto),
# and prints a table of medians (wall s, records/s, records per CPU-second, peak RSS) with the
# ratios of StreamX to the peer and to the limit (BENCH_STREAMX_SET="k=v,k=v" adds settings to the
# StreamX runs). Then runs the criterion benches unless
# BENCH_SKIP_CRITERION=1.
#
#   scripts/bench.sh [records] [partitions] [runs]      (defaults: 1000000 4 3)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
partitions=${2:-4}
runs=${3:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
cargo build --release --quiet
bin=$CARGO_TARGET_DIR/release/streamx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/services.sh up >/dev/null
env_file=${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env
servers=$(grep '^STREAMX_TEST_KAFKA_BROKERS=' "$env_file" | cut -d= -f2)
s3=$(grep '^STREAMX_TEST_S3_ENDPOINT=' "$env_file" | cut -d= -f2)
python=$(grep '^STREAMX_TEST_PYTHON=' "$env_file" | cut -d= -f2)
topic=bench-$(date +%s)
"$bin" samples --topic "$topic" --partitions "$partitions" --records "$records" --bootstrap-servers "$servers"

"$python" scripts/bench/compare.py "$bin" "$servers" "$topic" "$records" "$work" "$runs" "$s3"

if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  cargo bench --bench decode_encode -- --noplot 2>&1 | grep -E "events|^clickstream/|time:|thrpt:"
fi
