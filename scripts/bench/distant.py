"""What a distant store costs (issue 26): times `streamx ingest --stop-at-end` on the same loaded
topic to local disk and to S3 on moto behind scripts/latency-proxy.py (DELAY ms added to every
request, as a store in another region answers), for each flush.size, `runs` times each, Parquet
zstd; prints the medians (wall s, records/s, commits, first record after the group join) and the
distant / local wall ratio per flush.size. Without latency hiding the difference is about
commits x store round trips per commit x DELAY (shared/notes/profile-ingest.md).

    distant.py BIN BOOTSTRAP TOPIC RECORDS WORKDIR RUNS S3_ENDPOINT DELAY_MS FLUSH_SIZE...
"""
import os
import re
import statistics
import subprocess
import sys

from compare import measure, s3_bucket, startup_ms, streamx_args

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "..", "latency-proxy.py")


def start_proxy(upstream, delay_ms):
    """Starts the latency proxy on a free port; returns the process and its address."""
    p = subprocess.Popen([sys.executable, PROXY, "--upstream", upstream, "--delay-ms",
                          str(delay_ms)], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("listening on "):
        p.kill()
        sys.exit(f"latency proxy did not start: {line!r}")
    return p, line.removeprefix("listening on ")


def commits(output):
    """How many commits the run made, from the summary it prints at the end."""
    m = re.search(r"over (\d+) commits", output)
    return int(m.group(1)) if m else None


def main():
    bin, servers, topic, records, work, runs, s3, delay_ms = sys.argv[1:9]
    flush_sizes = sys.argv[9:] or ["5000", "1000"]
    records, runs = int(records), int(runs)
    env = dict(os.environ, STREAMX_LOG="warn,streamx::ingest::router=info,streamx::ingest=info")
    proxy, distant = start_proxy(s3, delay_ms)
    s3_extra = {"store.endpoint": distant, "store.allow_http": "true",
                "store.region": "us-east-1", "store.access_key_id": "bench",
                "store.secret_access_key": "bench"}
    table = []
    try:
        for flush in flush_sizes:
            variants = {
                "local disk": lambda n: streamx_args(
                    bin, servers, topic, os.path.join(work, f"local-{flush}-{n}"),
                    {"flush.size": flush}),
                f"s3 (moto) +{delay_ms} ms": lambda n: streamx_args(
                    bin, servers, topic, f"s3://{s3_bucket(s3)}/out",
                    dict(s3_extra, **{"flush.size": flush})),
            }
            walls = {name: [] for name in variants}
            for i in range(runs):
                for name, make in variants.items():
                    (wall, cpu, rss), stderr = measure(make(i), env, both=True)
                    walls[name].append(wall)
                    print(f"flush.size {flush} run {i + 1} {name}: wall {wall:.2f} s, cpu "
                          f"{cpu:.2f} s, rss {rss:.0f} MiB, commits {commits(stderr)}, first "
                          f"record {startup_ms(stderr)} ms after the group join", flush=True)
            local, far = (statistics.median(w) for w in walls.values())
            table.append((flush, local, far))
    finally:
        proxy.kill()
    print(f"\nmedians of {runs} runs, {records:,} records, store {delay_ms} ms away")
    print("| flush.size | local wall s | distant wall s | distant / local | distant records/s |")
    print("|------------|--------------|----------------|-----------------|-------------------|")
    for flush, local, far in table:
        print(f"| {flush:>10} | {local:12.2f} | {far:14.2f} | {far / local:14.2f}x | "
              f"{records / far:17,.0f} |")


if __name__ == "__main__":
    main()
