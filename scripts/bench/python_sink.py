"""The peer StreamX is measured against: the Kafka -> Parquet sink a user would write in Python.

confluent-kafka consumes the topic from the beginning, buffers the raw JSON values per partition,
and every `flush` records (and at the end of each partition) parses the buffer with
pyarrow.json and writes one zstd Parquet file with pyarrow.parquet. Exits once every partition
has been read to its end (enable.partition.eof).

    python_sink.py BOOTSTRAP TOPIC OUT_DIR [FLUSH]
"""
import io
import os
import sys
import uuid

import pyarrow.json as pj
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError


def write(out, topic, partition, first, values):
    table = pj.read_json(io.BytesIO(b"\n".join(values)))
    name = f"{topic}+{partition}+{first:010d}+{first + len(values) - 1:010d}.parquet"
    pq.write_table(table, os.path.join(out, name), compression="zstd")


def main():
    servers, topic, out = sys.argv[1], sys.argv[2], sys.argv[3]
    flush = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    os.makedirs(out, exist_ok=True)
    consumer = Consumer({
        "bootstrap.servers": servers,
        "group.id": f"python-sink-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "session.timeout.ms": 6000,
    })
    consumer.subscribe([topic])
    buffers, firsts, ended = {}, {}, set()
    assigned = None
    records = 0
    while assigned is None or len(ended) < len(assigned):
        for msg in consumer.consume(num_messages=10_000, timeout=0.5):
            p = msg.partition()
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(p)
                    if buffers.get(p):
                        write(out, topic, p, firsts[p], buffers.pop(p))
                    continue
                raise RuntimeError(msg.error())
            ended.discard(p)
            buf = buffers.setdefault(p, [])
            if not buf:
                firsts[p] = msg.offset()
            buf.append(msg.value())
            records += 1
            if len(buf) >= flush:
                write(out, topic, p, firsts[p], buffers.pop(p))
        if assigned is None and consumer.assignment():
            assigned = {tp.partition for tp in consumer.assignment()}
    consumer.commit(asynchronous=False) if records else None
    consumer.close()
    print(f"consumed {records} records")


if __name__ == "__main__":
    main()
