"""Smoke check of the integration-test services started by scripts/services.sh.

Run by `scripts/services.sh check` with the services venv's python; reads the endpoints from the
environment (the lines of $STREAMX_SERVICES_DIR/env). Exits non-zero on the first failure.

- S3 (moto):     unsigned PUT of a bucket, then a signed PUT and GET of an object (boto3).
- Azurite:       an HTTP answer to an unsigned request, then a SharedKey-signed create and list
                 of a container (well-known devstoreaccount1 key).
- Kafka (tansu): create a topic with 3 partitions via AdminClient, produce 10 messages, consume
                 them back with a consumer group, commit.
"""

import base64
import email.utils
import hashlib
import hmac
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def http(method, url, data=None):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def check_s3(endpoint):
    import boto3  # installed with moto

    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    # Unsigned bucket creation, as `curl -X PUT $endpoint/<bucket>` does.
    status, body = http("PUT", f"{endpoint}/{bucket}")
    assert status == 200, f"create bucket: HTTP {status} {body[:200]!r}"
    # Signed object round trip (moto refuses anonymous reads of private objects).
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    got = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert got == b"hello", f"get object returned {got!r}"
    print(f"s3 ok: bucket {bucket} created, object round-tripped at {endpoint}")


# Azurite's well-known development account (public, documented; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azure_request(method, endpoint, path, query):
    """Send a SharedKey-signed Blob request (no body) and return (status, body)."""
    headers = {
        "x-ms-date": email.utils.formatdate(usegmt=True),
        "x-ms-version": "2021-08-06",
    }
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    # Emulator URLs are path-style: /<account>/<container>, so the account appears twice.
    resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}{path}"
    resource += "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    # VERB, then 11 standard headers (all empty here), then x-ms-* headers and the resource.
    to_sign = f"{method}\n" + "\n" * 11 + canonical_headers + resource
    key = base64.b64decode(AZURITE_KEY)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
    url = f"{endpoint}{path}?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def check_azurite(endpoint):
    status, _ = http("GET", f"{endpoint}?comp=list")
    # Unsigned request: Azurite answers with an auth error, which still proves it serves HTTP.
    assert 200 <= status < 500, f"azurite: HTTP {status}"
    container = f"smoke{uuid.uuid4().hex[:12]}"
    status, body = azure_request("PUT", endpoint, f"/{container}", {"restype": "container"})
    assert status == 201, f"create container: HTTP {status} {body[:300]!r}"
    status, body = azure_request("GET", endpoint, "", {"comp": "list"})
    assert status == 200 and container.encode() in body, f"list containers: HTTP {status}"
    print(f"azurite ok: container {container} created with a SharedKey-signed request at {endpoint}")


def check_kafka(brokers):
    topic = f"smoke-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(15)
    partitions = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    assert partitions == 3, f"topic {topic} has {partitions} partitions, expected 3"

    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    sent = {f"m{i}".encode() for i in range(10)}
    for value in sorted(sent):
        producer.produce(topic, key=value, value=value)
    assert producer.flush(15) == 0, "produce: messages still in queue after 15 s"

    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"smoke-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # tansu completes a group join after about half of session.timeout.ms
            # (librdkafka's default 45 s would mean a ~23 s join); 6 s gives a ~3 s join.
            "session.timeout.ms": 6000,
            "fetch.queue.backoff.ms": 10,
        }
    )
    started = time.monotonic()
    got, first_at = set(), None
    try:
        consumer.subscribe([topic])
        while got != sent and time.monotonic() - started < 30:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            first_at = first_at or time.monotonic() - started
            got.add(msg.value())
        assert got == sent, f"consumed {len(got)}/10 messages within 30 s"
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    print(
        f"kafka ok: topic {topic} with 3 partitions, 10 messages produced and consumed by a group "
        f"(first message after {first_at:.1f} s, all after {time.monotonic() - started:.1f} s) at {brokers}"
    )


def main():
    env = os.environ
    check_s3(env["STREAMX_TEST_S3_ENDPOINT"])
    check_azurite(env["STREAMX_TEST_AZURITE_ENDPOINT"])
    check_kafka(env["STREAMX_TEST_KAFKA_BROKERS"])
    print("all services ok")


def azure_container(action, name):
    """`smoke.py azure-container create|delete NAME`: used by the Rust tests to own a container."""
    endpoint = os.environ["STREAMX_TEST_AZURITE_ENDPOINT"]
    method = {"create": "PUT", "delete": "DELETE"}[action]
    status, body = azure_request(method, endpoint, f"/{name}", {"restype": "container"})
    assert status in (201, 202), f"{action} container {name}: HTTP {status} {body[:300]!r}"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "azure-container":
        azure_container(sys.argv[2], sys.argv[3])
        sys.exit(0)
    try:
        main()
    except Exception as err:  # noqa: BLE001 - report any failure as one line
        print(f"smoke check failed: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
