#!/usr/bin/env bash
# End-to-end benchmark: loads a topic on the tansu broker started by scripts/services.sh (the
# embedded mock broker keeps only ~5 MB per partition, too little here), then times `streamx ingest --stop-at-end` (JSON ~1 KB clickstream events -> Parquet on
# local disk) and prints records/s, MB/s, records per CPU-second (user+sys of the streamx process
# only) and peak RSS. Then runs the criterion benches unless BENCH_SKIP_CRITERION=1.
#
#   scripts/bench.sh [records] [partitions]      (defaults: 1000000 16)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
partitions=${2:-16}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
cargo build --release --quiet
bin=$CARGO_TARGET_DIR/release/streamx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/services.sh up >/dev/null
servers=$(grep '^STREAMX_TEST_KAFKA_BROKERS=' "${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env" | cut -d= -f2)
topic=bench-$(date +%s)
"$bin" samples --topic "$topic" --partitions "$partitions" --records "$records" --bootstrap-servers "$servers"

python3 - "$bin" "$servers" "$work/out" "$records" "$topic" <<'PY'
import resource, subprocess, sys, time, os
bin, servers, out, records, topic = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ddl = subprocess.run([bin, "samples", "--print-schema"], capture_output=True, text=True, check=True).stdout.strip()
args = [bin, "ingest", "--stop-at-end"]
for k, v in {
    "name": topic, "bootstrap.servers": servers, "topics": topic, "store.url": out,
    "value.schema": ddl, "flush.size": "100000", "rotate.size.bytes": "134217728",
    "parquet.codec": "snappy", "decode.batch.records": "8192",
}.items():
    args += ["--set", f"{k}={v}"]
t0 = time.time()
p = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, STREAMX_LOG="warn"))
wall = time.time() - t0
if p.returncode != 0:
    print(p.stderr); sys.exit(1)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
size = 0
for root, dirs, files in os.walk(out):
    dirs[:] = [d for d in dirs if not d.startswith("_")]
    size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
print(p.stdout.strip())
consumed = [l for l in p.stdout.splitlines() if l.startswith("consumed")]
inbytes = int(consumed[0].split("(")[1].split()[0]) if consumed else 0
print(f"wall {wall:.2f} s, cpu {cpu:.2f} s (user {ru.ru_utime:.2f} + sys {ru.ru_stime:.2f}) incl. startup and group join")
print(f"records/s (wall): {records / wall:,.0f}   MB/s (wall): {inbytes / wall / 1e6:,.1f}")
print(f"records per CPU-second: {records / cpu:,.0f}   MB per CPU-second: {inbytes / cpu / 1e6:,.1f}")
print(f"peak RSS: {ru.ru_maxrss / 1024:,.0f} MiB   parquet output: {size / 1e6:,.1f} MB")
PY

if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  cargo bench --bench decode_encode -- --noplot 2>&1 | grep -E "events|^clickstream/|time:|thrpt:"
fi
