"""The compaction benchmark (scripts/bench-compact.sh): writes small Parquet files laid out as
`streamx ingest` lays out an hourly topic, then compacts every hour directory three ways, one
after another, each on its own fresh copy of the files:

  - `streamx compact --config` (merges each directory into target-sized files, journaled swap),
  - DuckDB: per directory `COPY (SELECT * FROM read_parquet('<dir>/*.parquet')) TO ... (FORMAT
    parquet)`, all directories in one process,
  - pyarrow: per directory `pyarrow.dataset.dataset(dir)` -> `pyarrow.dataset.write_dataset`,

and prints for each: wall seconds, input MB/s, CPU seconds (user + sys), input MB per
CPU-second, peak RSS (of that process alone, from wait4), and the files in -> out.

    compact_compare.py BIN WORKDIR [DIRS] [FILES_PER_DIR] [ROWS_PER_FILE]
"""
import os
import random
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

TOPIC = "clicks"
PAGES = [f"/shop/category/{c}/item/{i}" for c in range(40) for i in range(50)]
AGENTS = [f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0" for v in range(80, 130)]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "JP"]


def clicks(rng, partition, start, n):
    """n clickstream rows with Kafka coordinates, offsets start..start+n."""
    r, pick = rng.random, rng.choice
    return pa.table({
        "event_id": [f"{rng.getrandbits(128):032x}" for _ in range(n)],
        "user_id": [rng.randrange(1_000_000) for _ in range(n)],
        "session_id": [f"s-{rng.getrandbits(64):016x}" for _ in range(n)],
        "ts": pa.array(sorted(1_793_491_200_000 + rng.randrange(3_600_000) for _ in range(n)),
                       pa.timestamp("ms")),
        "page": [pick(PAGES) for _ in range(n)],
        "referrer": [pick(PAGES) for _ in range(n)],
        "user_agent": [pick(AGENTS) for _ in range(n)],
        "country": [pick(COUNTRIES) for _ in range(n)],
        "price": [round(r() * 200, 2) for _ in range(n)],
        "quantity": pa.array([rng.randrange(1, 5) for _ in range(n)], pa.int32()),
        "_partition": pa.array([partition] * n, pa.int32()),
        "_offset": pa.array(range(start, start + n), pa.int64()),
    })


def generate(root, dirs, files_per_dir, rows):
    """Ingest's layout: <root>/topics/clicks/dt=.../hour=HH/clicks+<p>+<start>+<end>.parquet.
    The rows of 16 generated files are reused with each file's own Kafka coordinates."""
    rng = random.Random(7)
    pool = [clicks(rng, 0, 0, rows) for _ in range(16)]
    for d in range(dirs):
        path = os.path.join(root, "topics", TOPIC, "dt=2026-11-01", f"hour={d:02d}")
        os.makedirs(path)
        for f in range(files_per_dir):
            p, start = f % 4, (d * files_per_dir + f) // 4 * rows
            t = pool[(d * 7 + f) % len(pool)]
            t = t.set_column(t.schema.get_field_index("_partition"), "_partition",
                             pa.array([p] * rows, pa.int32()))
            t = t.set_column(t.schema.get_field_index("_offset"), "_offset",
                             pa.array(range(start, start + rows), pa.int64()))
            name = f"{TOPIC}+{p}+{start:010d}+{start + rows - 1:010d}.parquet"
            pq.write_table(t, os.path.join(path, name), compression="snappy")


def tree_bytes(root):
    """(files, bytes) of the Parquet files under root, leaving out StreamX's own `_streamx`
    tree (a compaction's trashed inputs wait there for compact.input.grace.ms)."""
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f.endswith(".parquet") and "_streamx" not in os.path.relpath(d, root).split(os.sep)]
    return len(files), sum(os.path.getsize(f) for f in files)


def hour_dirs(root):
    base = os.path.join(root, "topics", TOPIC, "dt=2026-11-01")
    return [os.path.join(base, h) for h in sorted(os.listdir(base))]


def measure(args, log):
    """Runs `args`; (wall s, cpu s, peak RSS MiB, stdout) of that process alone (wait4)."""
    t0 = time.monotonic()
    with open(log, "w+") as err:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        out = p.stdout.read().decode()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{args[:3]} failed:\n{out}\n{err.read()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


DUCKDB = """
import duckdb, os, sys
out = sys.argv[1]
con = duckdb.connect()
for i, d in enumerate(sys.argv[2:]):
    con.execute(f"COPY (SELECT * FROM read_parquet('{d}/*.parquet')) TO '{out}/{i}.parquet' (FORMAT parquet, COMPRESSION snappy)")
"""

PYARROW = """
import os, sys, pyarrow.dataset as ds
out = sys.argv[1]
for i, d in enumerate(sys.argv[2:]):
    ds.write_dataset(ds.dataset(d, format='parquet'), os.path.join(out, str(i)), format='parquet',
                     max_rows_per_group=1 << 20, min_rows_per_group=1 << 17)
"""


def main():
    bin, work = sys.argv[1], sys.argv[2]
    dirs = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    files_per_dir = int(sys.argv[4]) if len(sys.argv) > 4 else 250
    rows = int(sys.argv[5]) if len(sys.argv) > 5 else 5600
    src = os.path.join(work, "src")
    t0 = time.monotonic()
    generate(src, dirs, files_per_dir, rows)
    n_in, bytes_in = tree_bytes(src)
    print(f"input: {n_in} files, {bytes_in / 1e6:.0f} MB in {dirs} hour directories "
          f"({rows} rows each; generated in {time.monotonic() - t0:.0f} s)", flush=True)
    conf = os.path.join(work, "compact.properties")
    results = []
    for name in ["streamx", "duckdb", "pyarrow"]:
        copy = os.path.join(work, name)
        shutil.copytree(src, copy)
        out = os.path.join(work, name + "-out")
        os.makedirs(out)
        if name == "streamx":
            with open(conf, "w") as f:
                f.write(f"name=bench-compact\nbootstrap.servers=127.0.0.1:1\ntopics={TOPIC}\n"
                        f"store.url={copy}\nformat.class=parquet\nparquet.codec=snappy\n"
                        "compact.min.age.ms=0\n")
            args = [bin, "compact", "--config", conf]
            counted = copy
        else:
            script = DUCKDB if name == "duckdb" else PYARROW
            args = [sys.executable, "-c", script, out, *hour_dirs(copy)]
            counted = out
        wall, cpu, rss, stdout = measure(args, os.path.join(work, name + ".log"))
        n_out, bytes_out = tree_bytes(counted)
        if name == "streamx":
            print("  " + stdout.strip().splitlines()[-1], flush=True)
        results.append((name, wall, cpu, rss, n_out, bytes_out))
        shutil.rmtree(copy)
        shutil.rmtree(out)
    mb = bytes_in / 1e6
    print(f"\n{'tool':8} {'wall s':>7} {'MB/s':>7} {'CPU s':>7} {'MB/CPU-s':>9} {'peak RSS MiB':>13}  files in -> out")
    for name, wall, cpu, rss, n_out, bytes_out in results:
        print(f"{name:8} {wall:7.1f} {mb / wall:7.1f} {cpu:7.1f} {mb / cpu:9.1f} {rss:13.0f}  "
              f"{n_in} -> {n_out} ({bytes_out / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
