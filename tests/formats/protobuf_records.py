#!/usr/bin/env python3
"""Protobuf records for tests/formats/protobuf.rs, written by confluent-kafka's ProtobufSerializer.

usage: protobuf_records.py produce <bootstrap> <topic> <n>   -> prints the registry's contents (JSON)
       protobuf_records.py check <dir> <n>                     -> reads every .parquet under <dir>

Message classes are built at runtime from FileDescriptorProtos (no protoc): shop/common.proto
(Money) and two versions of shop/order.proto (Order; v2 adds `channel`), importing
google/protobuf/timestamp.proto and wrappers.proto. Records 0..n/2 are written with v1, the rest
with v2, so the registry holds two schema ids plus the common.proto reference. The registry is
confluent-kafka's in-process mock (mock://); its contents are printed for the Rust test to serve.
"""
import datetime as dt
import json
import os
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import timestamp_pb2, wrappers_pb2

F = descriptor_pb2.FieldDescriptorProto


def field(name, number, ftype, type_name=None, label=F.LABEL_OPTIONAL, oneof=None):
    f = F(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof
    return f


def common_file():
    fd = descriptor_pb2.FileDescriptorProto(name="shop/common.proto", package="shop.common", syntax="proto3")
    m = fd.message_type.add(name="Money")
    m.field.extend([field("currency", 1, F.TYPE_STRING), field("units", 2, F.TYPE_INT64)])
    return fd


def order_file(version):
    fd = descriptor_pb2.FileDescriptorProto(name="shop/order.proto", package="shop", syntax="proto3")
    fd.dependency.extend(["google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto", "shop/common.proto"])
    o = fd.message_type.add(name="Order")
    line = o.nested_type.add(name="Line")
    line.field.extend([field("sku", 1, F.TYPE_STRING), field("qty", 2, F.TYPE_UINT32)])
    entry = o.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.extend([field("key", 1, F.TYPE_STRING), field("value", 2, F.TYPE_INT64)])
    status = o.enum_type.add(name="Status")
    for i, n in enumerate(["UNKNOWN", "PAID", "SHIPPED"]):
        status.value.add(name=n, number=i)
    o.oneof_decl.add(name="payment")
    o.field.extend([
        field("id", 1, F.TYPE_STRING),
        field("lines", 2, F.TYPE_MESSAGE, ".shop.Order.Line", F.LABEL_REPEATED),
        field("tags", 3, F.TYPE_MESSAGE, ".shop.Order.TagsEntry", F.LABEL_REPEATED),
        field("card", 4, F.TYPE_STRING, oneof=0),
        field("voucher", 5, F.TYPE_BYTES, oneof=0),
        field("status", 6, F.TYPE_ENUM, ".shop.Order.Status"),
        field("at", 7, F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
        field("total", 8, F.TYPE_MESSAGE, ".shop.common.Money"),
        field("discount", 9, F.TYPE_MESSAGE, ".google.protobuf.Int64Value"),
    ])
    if version == 2:
        o.field.append(field("channel", 10, F.TYPE_STRING))
    return fd


def order_class(version):
    pool = descriptor_pool.DescriptorPool()
    for mod in (timestamp_pb2, wrappers_pb2):
        p = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(p)
        pool.Add(p)
    pool.Add(common_file())
    pool.Add(order_file(version))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


def expected(i, n):
    """Record i as the test expects it back (None: null)."""
    v2 = i >= n // 2
    return {
        "id": f"o-{i}",
        "lines": [{"sku": f"s{i}-{k}", "qty": k + 1} for k in range(i % 3)],
        "tags": {f"t{k}": i * 10 + k for k in range(i % 2 + 1)},
        "card": f"card-{i}" if i % 2 == 0 else None,
        "voucher": bytes([i % 256, 7]) if i % 2 == 1 else None,
        "status": ["UNKNOWN", "PAID", "SHIPPED"][i % 3],
        "at": 1_700_000_000_000_000 + i * 1_000_001 if i % 5 != 4 else None,
        "total": {"currency": "EUR", "units": i * 3} if i % 4 != 3 else None,
        "discount": i if i % 3 == 0 else None,
        "channel": f"web-{i}" if v2 else "",
    }


def build(cls, row, v2):
    m = cls(id=row["id"], status=row["status"])
    for line in row["lines"]:
        m.lines.add(sku=line["sku"], qty=line["qty"])
    for k, v in row["tags"].items():
        m.tags[k] = v
    if row["card"] is not None:
        m.card = row["card"]
    if row["voucher"] is not None:
        m.voucher = row["voucher"]
    if row["at"] is not None:
        m.at.seconds, m.at.nanos = divmod(row["at"], 1_000_000)
        m.at.nanos *= 1000
    if row["total"] is not None:
        m.total.currency, m.total.units = row["total"]["currency"], row["total"]["units"]
    if row["discount"] is not None:
        m.discount.value = row["discount"]
    if v2:
        m.channel = row["channel"]
    return m


def produce(bootstrap, topic, n):
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = SchemaRegistryClient.new_client({"url": f"mock://{topic}"})
    conf = {"use.deprecated.format": False}
    classes = {v: order_class(v) for v in (1, 2)}
    serializers = {v: (c, ProtobufSerializer(c, registry, conf)) for v, c in classes.items()}
    producer = Producer({"bootstrap.servers": bootstrap})
    ctx = SerializationContext(topic, MessageField.VALUE)
    for i in range(n):
        v = 2 if i >= n // 2 else 1
        cls, ser = serializers[v]
        value = ser(build(cls, expected(i, n), v == 2), ctx)
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0
    dump = {"ids": {}, "subjects": []}
    for subject in registry.get_subjects():
        for version in registry.get_versions(subject):
            r = registry.get_version(subject, version)
            refs = [{"name": x.name, "subject": x.subject, "version": x.version} for x in r.schema.references or []]
            body = {"subject": subject, "version": version, "id": r.schema_id,
                    "schema": r.schema.schema_str, "schemaType": "PROTOBUF", "references": refs}
            dump["subjects"].append(body)
            dump["ids"][str(r.schema_id)] = body
    print(json.dumps(dump))


def duckdb_problems(directory, n):
    """DuckDB reads the same files (schemas of both versions unioned by name): every row once,
    the ids and the map and list columns as pyarrow saw them."""
    import duckdb

    files = [os.path.join(root, name) for root, dirs, names in os.walk(directory)
             if not any(part.startswith("_") for part in os.path.relpath(root, directory).split(os.sep))
             for name in names if name.endswith(".parquet")]
    listing = ", ".join(f"'{f}'" for f in files)
    con = duckdb.connect()
    rows, distinct = con.execute(
        f"select count(*), count(distinct id) from read_parquet([{listing}], union_by_name=true)"
    ).fetchone()
    problems = []
    if (rows, distinct) != (n, n):
        problems.append(f"duckdb reads {rows} rows, {distinct} distinct ids; want {n}")
    for i in (1, n - 2):  # records with lines (i % 3 of them)
        want = expected(i, n)
        got = con.execute(
            f"select id, len(lines) from read_parquet([{listing}], union_by_name=true) "
            f"where id = ?", [want["id"]]).fetchall()
        if got != [(want["id"], len(want["lines"]))]:
            problems.append(f"duckdb record {i}: got {got}, want {want['id']} with "
                            f"{len(want['lines'])} lines")
    return problems


def check(directory, n):
    import pyarrow.parquet as pq

    seen = {}
    files = 0
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith("_")]
        for name in names:
            if not name.endswith(".parquet"):
                continue
            files += 1
            for row in pq.read_table(os.path.join(root, name)).to_pylist():
                off = row["_offset"] if "_offset" in row else int(row["id"].split("-")[1])
                assert off not in seen, f"offset {off} twice"
                seen[off] = row
    problems = []
    for i in range(n):
        got, want = seen.get(i), expected(i, n)
        if got is None:
            problems.append(f"record {i} missing")
            continue
        got = dict(got)
        got["tags"] = dict(got["tags"]) if got["tags"] is not None else None
        if got["at"] is not None:
            got["at"] = int((got["at"] - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1))
        got.setdefault("channel", "")
        for k, v in want.items():
            if got.get(k) != v:
                problems.append(f"record {i} {k}: got {got.get(k)!r}, want {v!r}")
    extra = sorted(set(seen) - set(range(n)))
    if extra:
        problems.append(f"unexpected offsets {extra}")
    problems += duckdb_problems(directory, n)
    if problems:
        print("\n".join(problems[:30]))
        sys.exit(1)
    print(f"OK {len(seen)} rows in {files} files")


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        check(sys.argv[2], int(sys.argv[3]))
