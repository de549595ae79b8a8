#!/usr/bin/env bash
# Memory benchmark of a worker (issue 25 item 6): one memory budget per process, shared by every
# task of every job. Loads sample events (~1 KB JSON) into a topic on the tansu broker
# (scripts/services.sh), starts `streamx worker` with `memory.budget.bytes=<budget>`, submits
# <jobs> jobs with `tasks.max=<tasks>` that each read the whole topic (own consumer group) into
# their own directory with `partition.by = _offset % N` (about <open> open files per job), waits
# until every job has consumed every record, reads the worker's peak RSS (VmHWM), stops it (open
# files committed) and prints the peak against budget + 150 MiB, the files flushed early and
# the rows read back per job with `streamx query` (each must equal the records produced).
#
#   scripts/bench-worker-memory.sh [records] [open files per job] [budget bytes] [jobs] [tasks.max]
#   (defaults: 400000 1000 268435456 3 2)
#
# STREAMX_BIN=path runs that binary (e.g. a debug build) instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-400000}
open_files=${2:-1000}
budget=${3:-268435456}
jobs=${4:-3}
tasks=${5:-2}
partitions=4
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
if [ -n "${STREAMX_BIN:-}" ]; then
  bin=$STREAMX_BIN
else
  cargo build --release --quiet
  bin=$CARGO_TARGET_DIR/release/streamx
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

env_file=${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env
[ -f "$env_file" ] || scripts/services.sh up >/dev/null
servers=$(grep '^STREAMX_TEST_KAFKA_BROKERS=' "$env_file" | cut -d= -f2)
topic=benchworkermem-$(date +%s)
"$bin" samples --topic "$topic" --partitions "$partitions" --records "$records" --bootstrap-servers "$servers"

python3 - "$bin" "$servers" "$work" "$records" "$topic" "$open_files" "$budget" "$partitions" "$jobs" "$tasks" <<'PY'
import json, os, re, signal, socket, subprocess, sys, time, urllib.request
bin, servers, work, records, topic = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
open_files, budget, partitions = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
njobs, tasks = int(sys.argv[9]), int(sys.argv[10])
buckets = max(1, open_files // partitions)
ddl = subprocess.run([bin, "samples", "--print-schema"], capture_output=True, text=True, check=True).stdout.strip()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
base = f"http://127.0.0.1:{port}"
props = os.path.join(work, "worker.properties")
with open(props, "w") as f:
    f.write(f"""bootstrap.servers={servers}
group.id={topic}-workers
config.storage.topic={topic}-configs
listeners=http://127.0.0.1:{port}
memory.budget.bytes={budget}
""")
log = open(os.path.join(work, "worker.log"), "w")
worker = subprocess.Popen([bin, "worker", "--config", props], stdout=subprocess.DEVNULL, stderr=log,
                          env=dict(os.environ, STREAMX_LOG="warn"))

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()

def wait(what, ready, deadline_s):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            if ready():
                return
        except OSError:
            pass
        if worker.poll() is not None:
            sys.exit(f"the worker exited ({worker.returncode}) while waiting for {what}; log in {log.name}")
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")

def peak_rss_mib():
    with open(f"/proc/{worker.pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024

wait("the worker's REST API", lambda: call("GET", "/health") is not None, 60)
names = [f"{topic}-job{i}" for i in range(njobs)]
confs = {}
for name in names:
    confs[name] = {
        "name": name, "connector.class": "StreamX", "tasks.max": str(tasks), "topics": topic,
        "store.url": os.path.join(work, name), "value.schema": ddl, "flush.size": "100000000",
        "rotate.size.bytes": str(1 << 40), "partition.by": f"_offset % {buckets} AS bucket",
    }
    call("PUT", f"/connectors/{name}/config", confs[name])
t0 = time.time()

def consumed():
    text = call("GET", "/metrics")
    got = {}
    for line in text.splitlines():
        m = re.match(r'streamx_records_consumed_total\{job="([^"]+)"\} (\S+)', line)
        if m:
            got[m.group(1)] = float(m.group(2))
    return got

wait("every job to consume every record", lambda: all(consumed().get(n) == records for n in names), 3600)
wall = time.time() - t0
metrics = call("GET", "/metrics")
spilled = sum(float(v) for v in re.findall(r'streamx_files_spilled_total\{job="[^"]+"\} (\S+)', metrics))
rss = peak_rss_mib()
worker.send_signal(signal.SIGTERM)
worker.wait(timeout=600)

for name in names:
    args = []
    for k in ("name", "store.url", "value.schema", "partition.by"):
        args += ["--set", f"{k}={confs[name][k]}"]
    args += ["--set", f"topics={topic}", "--set", f"bootstrap.servers={servers}"]
    q = subprocess.run([bin, "query"] + args + [f'SELECT count(*) AS n, count(DISTINCT bucket) AS dirs FROM "{topic}"'],
                       capture_output=True, text=True, env=dict(os.environ, STREAMX_LOG="warn"))
    print(name, (q.stdout.strip() or q.stderr).replace("\n", " "))
limit = budget / 2**20 + 150
print(f"{njobs} jobs x tasks.max={tasks} in one worker; {records} records each; open output files per job: "
      f"{buckets * partitions} ({partitions} Kafka partitions x {buckets} directories)")
print(f"files flushed early (all jobs): {spilled:.0f}")
print(f"budget {budget / 2**20:,.0f} MiB; peak RSS {rss:,.0f} MiB; limit budget + 150 MiB = {limit:,.0f} MiB: "
      f"{'OK' if rss <= limit else 'OVER'}")
print(f"wall {wall:.1f} s (from the jobs' submission to every record consumed)")
PY
