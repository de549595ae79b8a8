"""Times, one after another on the same loaded topic, the raw consume (the limit), the Python
sink (the peer) and `streamx ingest --stop-at-end` (local disk, then S3 on moto), `runs` times
each, and prints one table of medians: wall seconds (process start to exit), records/s,
records per CPU-second (user + sys of that process), peak RSS, and the ratios of StreamX to the
peer and to the limit. For StreamX it also gives startup: the time from the first group join
(recovery from the store included) to the first record consumed, from its own log line.

    compare.py BIN BOOTSTRAP TOPIC RECORDS WORKDIR [RUNS] [S3_ENDPOINT]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(args, env=None, both=False):
    """Runs `args`; returns (wall s, cpu s, peak RSS MiB) of that process alone and its stderr
    (with `both`, its stdout and stderr together)."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{args[0]} failed ({p.returncode}):\n{out}\n{err[-3000:]}")
    figures = (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    return figures, out + err if both else err


def startup_ms(stderr):
    """StreamX's `first record consumed after_join_ms=N` log line, or None (colour codes of a
    binary that logs them to a pipe stripped first)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    m = re.search(r"first record consumed.*after_join_ms=(\d+)", plain)
    return int(m.group(1)) if m else None


def streamx_args(bin, servers, topic, store, extra):
    args = [bin, "ingest", "--stop-at-end"]
    ddl = subprocess.run([bin, "samples", "--print-schema"], capture_output=True,
                         text=True, check=True).stdout.strip()
    props = {
        "name": f"bench-{uuid.uuid4().hex[:8]}", "bootstrap.servers": servers, "topics": topic,
        "store.url": store, "value.schema": ddl, "flush.size": "100000",
        "parquet.codec": "zstd", "consumer.session.timeout.ms": "6000",
    }
    props.update(extra)
    # BENCH_STREAMX_SET="key=value,key=value": more settings for the StreamX runs (experiments).
    for pair in filter(None, os.environ.get("BENCH_STREAMX_SET", "").split(",")):
        k, v = pair.split("=", 1)
        props[k.strip()] = v.strip()
    for k, v in props.items():
        args += ["--set", f"{k}={v}"]
    return args


def s3_bucket(endpoint):
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"))
    return bucket


def main():
    bin, servers, topic, records, work = sys.argv[1:6]
    records = int(records)
    runs = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    s3 = sys.argv[7] if len(sys.argv) > 7 else None
    py = sys.executable
    # Warnings, and the router's info lines (startup).
    env = dict(os.environ, STREAMX_LOG="warn,streamx::ingest::router=info")

    def out_dir(name):
        d = os.path.join(work, name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    variants = {
        "raw consume (limit)": lambda: [py, os.path.join(HERE, "raw_consume.py"), servers, topic],
        "python sink (peer)": lambda: [py, os.path.join(HERE, "python_sink.py"), servers, topic,
                                       out_dir("python")],
        "streamx local": lambda: streamx_args(bin, servers, topic, out_dir("streamx"), {}),
    }
    if s3:
        def s3_run():
            extra = {"store.endpoint": s3, "store.allow_http": "true", "store.region": "us-east-1",
                     "store.access_key_id": "bench", "store.secret_access_key": "bench"}
            return streamx_args(bin, servers, topic, f"s3://{s3_bucket(s3)}/out", extra)
        variants["streamx s3 (moto)"] = s3_run
    results = {name: [] for name in variants}
    startups = {name: [] for name in variants if name.startswith("streamx")}
    for i in range(runs):
        for name, make in variants.items():
            figures, stderr = measure(make(), env)
            results[name].append(figures)
            w, c, r = figures
            line = f"run {i + 1} {name}: wall {w:.2f} s, cpu {c:.2f} s, rss {r:.0f} MiB"
            if name in startups:
                startups[name].append(startup_ms(stderr))
                line += f", first record {startups[name][-1]} ms after the group join"
            print(line, flush=True)
    med = {n: tuple(statistics.median(x[k] for x in v) for k in range(3)) for n, v in results.items()}
    print(f"\nmedians of {runs} runs, {records:,} records")
    print(f"| {'variant':<22} | wall s | records/s | records/CPU-s | peak RSS MiB |")
    print(f"|{'-' * 24}|--------|-----------|---------------|--------------|")
    for n, (w, c, r) in med.items():
        print(f"| {n:<22} | {w:6.2f} | {records / w:9,.0f} | {records / c:13,.0f} | {r:12,.0f} |")
    sx, peer, limit = med["streamx local"], med["python sink (peer)"], med["raw consume (limit)"]
    print(f"\nstreamx / peer wall: {sx[0] / peer[0]:.2f}x   streamx / limit wall: {sx[0] / limit[0]:.2f}x"
          f"   (throughput {limit[0] / sx[0]:.0%} of the raw consume)")
    if s3:
        print(f"streamx s3 / local wall: {med['streamx s3 (moto)'][0] / sx[0]:.2f}x")
    for name, values in startups.items():
        known = [v for v in values if v is not None]
        if known:
            print(f"{name}: first record {statistics.median(known):.0f} ms after the group join "
                  f"(median; max {max(known)} ms)")


if __name__ == "__main__":
    main()
