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
# `scripts/bench.sh distant` times a distant store instead (scripts/bench/distant.py): StreamX to
# local disk against S3 on moto behind scripts/latency-proxy.py (BENCH_DELAY_MS, default 60 ms
# added to every request), for each flush.size in BENCH_FLUSH_SIZES (default "5000 1000"), and
# prints the distant / local wall ratio.
#
# `scripts/bench.sh tls` times Kafka over TLS instead (scripts/bench/tls.py): the same records read
# in plaintext and over TLS (a second tansu behind stunnel4, private CA), Parquet zstd to local
# disk, and prints the TLS / plaintext ratio of CPU per record.
#
#   scripts/bench.sh [records] [partitions] [runs]            (defaults: 1000000 4 3)
#   scripts/bench.sh distant [records] [partitions] [runs]    (defaults: 300000 4 3)
#   scripts/bench.sh tls [records] [partitions] [runs]        (defaults: 300000 4 3)
#
# BENCH_BIN=path runs that streamx binary instead of building the release one (e.g. a debug
# build, to try the script with a few records); BENCH_SERVICES_UP=0 uses the services already
# running (their env file) without calling scripts/services.sh up.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=compare
if [ "${1:-}" = distant ] || [ "${1:-}" = tls ]; then
  mode=$1
  shift
fi
records=${1:-$([ $mode = compare ] && echo 1000000 || echo 300000)}
partitions=${2:-4}
runs=${3:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
else
  cargo build --release --quiet
  bin=$CARGO_TARGET_DIR/release/streamx
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "${BENCH_SERVICES_UP:-1}" != 0 ]; then
  scripts/services.sh up >/dev/null
fi
env_file=${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env
servers=$(grep '^STREAMX_TEST_KAFKA_BROKERS=' "$env_file" | cut -d= -f2)
s3=$(grep '^STREAMX_TEST_S3_ENDPOINT=' "$env_file" | cut -d= -f2)
python=$(grep '^STREAMX_TEST_PYTHON=' "$env_file" | cut -d= -f2)
topic=bench-$(date +%s)
"$bin" samples --topic "$topic" --partitions "$partitions" --records "$records" --bootstrap-servers "$servers"

if [ $mode = distant ]; then
  # shellcheck disable=SC2086 # a list of flush sizes
  "$python" scripts/bench/distant.py "$bin" "$servers" "$topic" "$records" "$work" "$runs" "$s3" \
    "${BENCH_DELAY_MS:-60}" ${BENCH_FLUSH_SIZES:-5000 1000}
  exit 0
fi

if [ $mode = tls ]; then
  tansu=$(grep '^STREAMX_TEST_TANSU_BIN=' "$env_file" | cut -d= -f2)
  "$python" scripts/bench/tls.py "$bin" "$servers" "$topic" "$records" "$work" "$runs" "$tansu"
  exit 0
fi

"$python" scripts/bench/compare.py "$bin" "$servers" "$topic" "$records" "$work" "$runs" "$s3"

if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  cargo bench --bench decode_encode -- --noplot 2>&1 | grep -E "events|^clickstream/|time:|thrpt:"
fi
