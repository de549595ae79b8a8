#!/usr/bin/env bash
# Memory benchmark of issue 3: many open output partitions under one memory budget.
# Loads sample events (~1 KB JSON) into a topic on the tansu broker (scripts/services.sh), runs
# `streamx ingest --stop-at-end` with `partition.by = _offset % N` so that about <open> output
# files are open at once, `memory.budget.bytes=<budget>`, and prints the peak RSS against
# budget + 150 MiB, the files flushed early, and the row count read back with `streamx query`
# (which must equal the records produced).
#
#   scripts/bench-memory.sh [records] [open files] [budget bytes]   (defaults: 400000 1000 268435456)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-400000}
open_files=${2:-1000}
budget=${3:-268435456}
partitions=4
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
cargo build --release --quiet
bin=$CARGO_TARGET_DIR/release/streamx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/services.sh up >/dev/null
servers=$(grep '^STREAMX_TEST_KAFKA_BROKERS=' "${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env" | cut -d= -f2)
topic=benchmem-$(date +%s)
"$bin" samples --topic "$topic" --partitions "$partitions" --records "$records" --bootstrap-servers "$servers"

python3 - "$bin" "$servers" "$work/out" "$records" "$topic" "$open_files" "$budget" "$partitions" <<'PY'
import resource, subprocess, sys, time, os
bin, servers, out, records, topic = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
open_files, budget, partitions = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
buckets = max(1, open_files // partitions)
ddl = subprocess.run([bin, "samples", "--print-schema"], capture_output=True, text=True, check=True).stdout.strip()
conf = {
    "name": topic, "bootstrap.servers": servers, "topics": topic, "store.url": out,
    "value.schema": ddl, "flush.size": "100000000", "rotate.size.bytes": str(1 << 40),
    "partition.by": f"_offset % {buckets} AS bucket", "memory.budget.bytes": str(budget),
}
args = []
for k, v in conf.items():
    args += ["--set", f"{k}={v}"]
t0 = time.time()
p = subprocess.run([bin, "ingest", "--stop-at-end"] + args, capture_output=True, text=True,
                   env=dict(os.environ, STREAMX_LOG="warn"))
wall = time.time() - t0
if p.returncode != 0:
    print(p.stderr); sys.exit(1)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout.strip())
q = subprocess.run([bin, "query"] + args + [f'SELECT count(*) AS n, count(DISTINCT bucket) AS dirs FROM "{topic}"'],
                   capture_output=True, text=True, env=dict(os.environ, STREAMX_LOG="warn"))
print(q.stdout.strip() or q.stderr)
rss = ru.ru_maxrss / 1024
limit = budget / 2**20 + 150
print(f"open output files: {buckets * partitions} ({partitions} Kafka partitions x {buckets} directories)")
print(f"budget {budget / 2**20:,.0f} MiB; peak RSS {rss:,.0f} MiB; limit budget + 150 MiB = {limit:,.0f} MiB: {'OK' if rss <= limit else 'OVER'}")
print(f"wall {wall:.1f} s, cpu {ru.ru_utime + ru.ru_stime:.1f} s")
PY
