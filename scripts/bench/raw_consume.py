"""The limit: consume a topic from the beginning and count its bytes, nothing else
(confluent-kafka, batches of 10,000). Exits once every partition is at its end.

    raw_consume.py BOOTSTRAP TOPIC
"""
import sys
import uuid

from confluent_kafka import Consumer, KafkaError


def main():
    servers, topic = sys.argv[1], sys.argv[2]
    consumer = Consumer({
        "bootstrap.servers": servers,
        "group.id": f"raw-consume-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "session.timeout.ms": 6000,
    })
    consumer.subscribe([topic])
    ended, assigned = set(), None
    records = size = 0
    while assigned is None or len(ended) < len(assigned):
        for msg in consumer.consume(num_messages=10_000, timeout=0.5):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(msg.partition())
                    continue
                raise RuntimeError(msg.error())
            ended.discard(msg.partition())
            records += 1
            size += len(msg.value())
        if assigned is None and consumer.assignment():
            assigned = {tp.partition for tp in consumer.assignment()}
    consumer.close()
    print(f"consumed {records} records ({size} bytes)")


if __name__ == "__main__":
    main()
