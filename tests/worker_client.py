"""Drives `streamx worker` with kafka-connect-py (a Kafka Connect client from PyPI), as a user's
scripts would: create, list, expand, status, pause (no new files while records keep coming),
resume (they land), restart, update config, delete. Checks the status codes the client relies
on and the shapes Kafka Connect answers with.

Run by tests/worker.rs (`python_connect_client_drives_the_api`), with the test services'
variables set (STREAMX_TEST_KAFKA_BROKERS, STREAMX_TEST_S3_ENDPOINT):
    python tests/worker_client.py <base url> <job json> <records in partition 0>
Produces PAUSED_RECORDS more records into partition 0 (values `p0-<seq>`, like the Rust side's)
while the job is paused. Exits non-zero with a message on the first mismatch.
"""

import json
import os
import sys
import time
from urllib.parse import urlparse

import boto3
import requests
from confluent_kafka import Producer
from kafka_connect import KafkaConnect
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from requests.exceptions import HTTPError

DEADLINE_S = 60
# Records produced while the job is paused.
PAUSED_RECORDS = 4
# How long "no new file while paused" is watched (see check_paused).
PAUSED_WATCH_S = 5


def wait_for(what, check):
    """Polls `check` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + DEADLINE_S
    last = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except HTTPError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def raw_files(job):
    """The committed `.raw` files of the job's topic in its bucket (moto)."""
    url = urlparse(job["config"]["s3.url"])
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["STREAMX_TEST_S3_ENDPOINT"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    prefix = f"{url.path.strip('/')}/topics/{job['config']['topics']}/"
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".raw")]
    return sorted(keys)


def produce(job, start, count):
    """Values `p0-<seq>` for seq in start..start+count into partition 0, acknowledged."""
    producer = Producer({"bootstrap.servers": os.environ["STREAMX_TEST_KAFKA_BROKERS"]})
    for seq in range(start, start + count):
        producer.produce(job["config"]["topics"], value=f"p0-{seq}".encode(), partition=0)
    left = producer.flush(30)
    expect(left == 0, f"{left} records not acknowledged")


def check_paused(job):
    """Records produced while paused write no file: an absence, which no event announces, so
    it is watched for a bounded window (PAUSED_WATCH_S) rather than waited for."""
    before = raw_files(job)
    expect(before, "files committed before the pause")
    end = time.monotonic() + PAUSED_WATCH_S
    while time.monotonic() < end:
        now = raw_files(job)
        expect(now == before, f"files written while paused: {sorted(set(now) - set(before))}")
        time.sleep(0.25)
    return before


def main():
    base, job = sys.argv[1], json.loads(sys.argv[2])
    name = job["name"]
    kc = KafkaConnect(url=base)

    info = kc.get_cluster_info()
    major, minor = (int(x) for x in info["version"].split(".")[:2])
    expect((major, minor) >= (3, 0), f"version {info['version']}")
    expect("kafka_cluster_id" in info and "commit" in info, f"server info {info}")

    created = kc.create_connector(job)
    expect(created["name"] == name and created["type"] == "sink", f"created {created}")
    expect(created["config"] == job["config"], f"config {created['config']}")
    expect(created["tasks"] == [{"connector": name, "task": 0}], f"tasks {created['tasks']}")

    expect(kc.list_connectors() == [name], "list")
    expanded = kc.list_connectors(expand="status")
    expect(set(expanded[name]) == {"status"}, f"expand=status {expanded}")
    expanded = kc.list_connectors(expand="info")
    expect(expanded[name]["info"]["name"] == name, f"expand=info {expanded}")

    def state_is(connector, task):
        st = kc.get_connector_status(name)
        tasks = st["tasks"]
        ok = st["connector"]["state"] == connector and tasks and all(
            t["state"] == task for t in tasks
        )
        return st if ok else None

    st = wait_for("RUNNING", lambda: state_is("RUNNING", "RUNNING"))
    expect(st["type"] == "sink" and st["tasks"][0]["id"] == 0, f"status {st}")
    expect(":" in st["connector"]["worker_id"], f"worker_id {st}")
    # Every record committed before the lifecycle calls below (the client has no offsets call).
    # They restart the job's consumer many times within seconds; on tansu a member that leaves
    # during its join can leave the group unassigned for long, so no data is expected after them.
    records = int(sys.argv[3])

    def committed():
        offsets = requests.get(f"{base}/connectors/{name}/offsets").json()["offsets"]
        return [o["offset"]["kafka_offset"] for o in offsets] == [records]

    wait_for("every record committed", committed)

    # /metrics, read by Prometheus's own OpenMetrics parser: the job's counters match the data.
    def samples():
        text = requests.get(f"{base}/metrics").text
        return {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.labels.get("job") == name
        }

    got = samples()
    expect(got["streamx_records_written_total"] == records, f"metrics {got}")
    expect(got["streamx_records_consumed_total"] == records, f"metrics {got}")
    expect(got["streamx_files_committed_total"] >= 1, f"metrics {got}")
    expect(got["streamx_partitions_assigned"] == 1, f"metrics {got}")
    task = kc.get_connector_task_status(name, 0)
    expect(task["state"] == "RUNNING" and task["id"] == 0, f"task status {task}")
    tasks = kc.list_connector_tasks(name)
    expect(tasks[0]["id"] == {"connector": name, "task": 0}, f"tasks {tasks}")

    kc.pause_connector(name)
    wait_for("PAUSED", lambda: state_is("PAUSED", "PAUSED"))
    produce(job, records, PAUSED_RECORDS)
    before = check_paused(job)
    kc.resume_connector(name)
    wait_for("RUNNING after resume", lambda: state_is("RUNNING", "RUNNING"))
    records += PAUSED_RECORDS
    wait_for("the records produced while paused to be committed", committed)
    expect(len(raw_files(job)) > len(before), "new files after resume")

    expect(kc.restart_connector(name) is None, "restart answers 204")
    accepted = kc.restart_connector(name, include_tasks=True, only_failed=True)
    expect(accepted["name"] == name, f"restart with flags {accepted}")
    kc.restart_connector_task(name, 0)
    wait_for("RUNNING after restart", lambda: state_is("RUNNING", "RUNNING"))

    updated_config = dict(job["config"], **{"flush.size": "3"})
    updated = kc.update_connector(name, updated_config)
    expect(updated["config"] == updated_config, f"updated {updated}")
    expect(kc.get_connector_config(name) == updated_config, "config after update")
    wait_for("RUNNING after update", lambda: state_is("RUNNING", "RUNNING"))

    topics = kc.list_connector_topics(name)
    expect(topics == {name: {"topics": [job["config"]["topics"]]}}, f"topics {topics}")

    plugins = kc.list_connector_plugins()
    expect(
        any(p["class"] == job["config"]["connector.class"] for p in plugins),
        f"plugins {plugins}",
    )
    infos = kc.validate_connector_config("S3SinkConnector", dict(updated_config, **{"flush.size": "x"}))
    expect(infos["error_count"] == 1, f"validate {infos['error_count']}")
    kc.delete_connector(name)
    expect(kc.list_connectors() == [], "list after delete")
    try:
        kc.get_connector(name)
        raise AssertionError("GET after delete answered")
    except HTTPError as e:
        expect(e.response is not None and e.response.status_code == 404, f"404: {e}")
        body = e.response.json()
        expect(body == {"error_code": 404, "message": f"Connector {name} not found"}, f"{body}")
    print("ok")


if __name__ == "__main__":
    main()
