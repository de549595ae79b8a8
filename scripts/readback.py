#!/usr/bin/env python3
"""Reads a file written by StreamX with an independent reader and compares it with the expected
rows, field by field.

usage: readback.py <avro|jsonl|csv|parquet> <file> <expected.json>

expected.json: {"columns": {name: kind, ...}, "rows": [{name: value, ...}, ...],
                "order": [name, ...],   (column order; needed for csv)
                "csv": {"delimiter": ",", "quote": "\"", "header": true}}   (csv only)
kinds: "int" "float" "string" "bool" "decimal" "timestamp" "date" "binary",
       {"list": kind} {"map": kind} {"struct": {name: kind}}
Canonical expected values: decimal as a string ("-12.50"), timestamp as epoch microseconds (UTC),
date as days since 1970-01-01, binary as base64; null as null.

Readers: fastavro (avro), json (jsonl, .gz via gzip), csv (csv), pyarrow (parquet); duckdb also
counts the rows of parquet/csv/jsonl files. Prints "OK <rows> rows" or the mismatches (exit 1).
"""
import base64
import csv
import datetime as dt
import decimal
import gzip
import json
import math
import sys

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def micros(v):
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    delta = v - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def days(v):
    if isinstance(v, str):
        v = dt.date.fromisoformat(v)
    if isinstance(v, dt.datetime):
        v = v.date()
    return (v - dt.date(1970, 1, 1)).days


def norm(v, kind, fmt):
    """The canonical form of value v read from a file of format fmt."""
    if v is None:
        return None
    if fmt == "csv" and v == "":
        return None
    if isinstance(kind, dict):
        (k, inner), = kind.items()
        if k == "list":
            return [norm(x, inner, fmt) for x in v]
        if k == "map":
            items = v.items() if isinstance(v, dict) else v
            return {key: norm(x, inner, fmt) for key, x in items}
        if k == "struct":
            return {name: norm(v.get(name), t, fmt) for name, t in inner.items()}
        raise ValueError(f"unknown kind {kind}")
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v)
    if kind == "string":
        return str(v)
    if kind == "bool":
        if isinstance(v, str):
            return {"true": True, "false": False}[v]
        return bool(v)
    if kind == "decimal":
        return decimal.Decimal(str(v))
    if kind == "timestamp":
        return micros(v)
    if kind == "date":
        return days(v)
    if kind == "binary":
        if isinstance(v, str):
            v = bytes.fromhex(v)
        return base64.b64encode(bytes(v)).decode()
    raise ValueError(f"unknown kind {kind}")


def expected_norm(v, kind):
    if v is None:
        return None
    if isinstance(kind, dict):
        (k, inner), = kind.items()
        if k == "list":
            return [expected_norm(x, inner) for x in v]
        if k == "map":
            return {key: expected_norm(x, inner) for key, x in v.items()}
        return {name: expected_norm(v.get(name), t) for name, t in inner.items()}
    if kind == "decimal":
        return decimal.Decimal(v)
    if kind == "float":
        return float(v)
    return v


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) == type(b) and a == b


def read(fmt, path, spec):
    if fmt == "avro":
        import fastavro
        with open(path, "rb") as f:
            return list(fastavro.reader(f))
    if fmt == "jsonl":
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line, parse_float=decimal.Decimal) for line in f if line.strip()]
    if fmt == "csv":
        opts = spec.get("csv", {})
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=opts.get("delimiter", ","), quotechar=opts.get("quote", '"')))
        names = spec.get("order") or list(spec["columns"])
        if opts.get("header", True):
            header, rows = rows[0], rows[1:]
            if header != names:
                raise SystemExit(f"FAIL header {header} != {names}")
        return [dict(zip(names, r)) for r in rows]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path).to_pylist()
    raise SystemExit(f"unknown format {fmt}")


def duckdb_count(fmt, path, spec):
    import duckdb
    if fmt == "parquet":
        q = f"select count(*) from read_parquet('{path}')"
    elif fmt == "jsonl":
        q = f"select count(*) from read_json('{path}', format='newline_delimited')"
    elif fmt == "csv":
        opts = spec.get("csv", {})
        header = "true" if opts.get("header", True) else "false"
        d, qc = (opts.get(k, dflt).replace("'", "''") for k, dflt in (("delimiter", ","), ("quote", '"')))
        q = f"select count(*) from read_csv('{path}', header={header}, delim='{d}', quote='{qc}', all_varchar=true)"
    else:
        return None
    return duckdb.connect().execute(q).fetchall()[0][0]


def main():
    fmt, path, expected_path = sys.argv[1:4]
    with open(expected_path, encoding="utf-8") as f:
        spec = json.load(f)
    columns = spec["columns"]
    expected = spec["rows"]
    got = read(fmt, path, spec)
    problems = []
    if len(got) != len(expected):
        problems.append(f"row count {len(got)} != expected {len(expected)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        if set(g.keys()) != set(columns):
            problems.append(f"row {i}: columns {sorted(g.keys())} != {sorted(columns)}")
        for name, kind in columns.items():
            want = expected_norm(e.get(name), kind)
            have = norm(g.get(name), kind, fmt)
            if not same(want, have):
                problems.append(f"row {i} column {name}: expected {want!r}, got {have!r}")
    count = duckdb_count(fmt, path, spec)
    if count is not None and count != len(expected):
        problems.append(f"duckdb counts {count} rows, expected {len(expected)}")
    if problems:
        print("FAIL\n" + "\n".join(problems[:50]))
        sys.exit(1)
    print(f"OK {len(expected)} rows")


if __name__ == "__main__":
    main()
