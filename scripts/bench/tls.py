"""What TLS to Kafka costs (issue 24): times `streamx ingest --stop-at-end` (Parquet zstd to
local disk) on the same records read in plaintext and over TLS, `runs` times each, alternating,
and prints the medians (wall s, CPU s, records per CPU-second, peak RSS) and the TLS / plaintext
ratio of CPU per record.

The TLS broker is a second tansu (memory storage) behind stunnel4 with a private CA made by
openssl, advertised on the TLS port (as tests/common/tls.rs does); the loaded topic is copied
into it from the plaintext broker, partition by partition, keys and values as they are.
SASL_SSL is not measured: no broker here completes a SASL login (tansu 0.6), and SASL costs a
handshake per connection, nothing per record.

    tls.py BIN BOOTSTRAP TOPIC RECORDS WORKDIR RUNS TANSU_BIN
"""
import os
import socket
import statistics
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compare import measure, streamx_args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not open port {port}")


def pki(work):
    """A CA and a server certificate for 127.0.0.1; returns (ca.pem, server.pem, server.key)."""
    f = lambda n: os.path.join(work, n)  # noqa: E731
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=StreamX bench CA", "-keyout", f("ca.key"), "-out", f("ca.pem"))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=server", "-keyout",
        f("server.key"), "-out", f("server.csr"))
    with open(f("server.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1")
    run("x509", "-req", "-days", "2", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey",
        f("ca.key"), "-CAcreateserial", "-extfile", f("server.ext"), "-out", f("server.pem"))
    return f("ca.pem"), f("server.pem"), f("server.key")


def tls_broker(work, tansu_bin):
    """tansu on a plain port advertised on a TLS port that stunnel4 serves; returns the
    processes and the TLS bootstrap address and CA file."""
    ca, cert, key = pki(work)
    plain, tls = free_port(), free_port()
    tansu = subprocess.Popen(
        [tansu_bin, "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{tls}", "--storage-engine",
         "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(plain, "tansu")
    conf = os.path.join(work, "stunnel.conf")
    with open(conf, "w") as c:
        c.write(f"foreground = yes\npid =\ndebug = 3\noutput = {work}/stunnel.log\n[kafka]\n"
                f"accept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\ncert = {cert}\n"
                f"key = {key}\n")
    stunnel = subprocess.Popen(["stunnel4", conf], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_port(tls, "stunnel4")
    return [tansu, stunnel], f"127.0.0.1:{tls}", ca


def copy_topic(servers, topic, records, tls_servers, ca):
    """Copies every record of `topic` into the TLS broker, same partitions."""
    security = {"security.protocol": "SSL", "ssl.ca.location": ca}
    source = Consumer({"bootstrap.servers": servers, "group.id": f"tls-bench-{os.getpid()}",
                       "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    partitions = len(source.list_topics(topic, timeout=20).topics[topic].partitions)
    admin = AdminClient({"bootstrap.servers": tls_servers, **security})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)
    source.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    sink = Producer({"bootstrap.servers": tls_servers, "linger.ms": 50, **security})
    copied = 0
    while copied < records:
        for m in source.consume(10000, timeout=5):
            if m.error():
                continue
            while True:
                try:
                    sink.produce(topic, m.value(), m.key(), partition=m.partition())
                    break
                except BufferError:
                    sink.poll(0.1)
            copied += 1
        sink.poll(0)
    sink.flush(60)
    source.close()
    return security


def main():
    bin, servers, topic, records, work, runs, tansu_bin = sys.argv[1:8]
    records, runs = int(records), int(runs)
    procs, tls_servers, ca = tls_broker(work, tansu_bin)
    try:
        t0 = time.monotonic()
        security = copy_topic(servers, topic, records, tls_servers, ca)
        print(f"copied {records:,} records to the TLS broker in {time.monotonic() - t0:.1f} s",
              flush=True)
        variants = {
            "plaintext": lambda n: streamx_args(bin, servers, topic,
                                                os.path.join(work, f"plain-{n}"), {}),
            "TLS (SSL)": lambda n: streamx_args(bin, tls_servers, topic,
                                                os.path.join(work, f"tls-{n}"), security),
        }
        figures = {name: [] for name in variants}
        env = dict(os.environ, STREAMX_LOG="warn")
        for i in range(runs):
            for name, make in variants.items():
                (wall, cpu, rss), _ = measure(make(i), env)
                figures[name].append((wall, cpu, rss))
                print(f"run {i + 1} {name}: wall {wall:.2f} s, cpu {cpu:.2f} s, "
                      f"rss {rss:.0f} MiB", flush=True)
    finally:
        for p in procs:
            p.kill()
    print(f"\nmedians of {runs} runs, {records:,} records, Parquet zstd to local disk")
    print("| variant | wall s | CPU s | records per CPU-s | peak RSS MiB |")
    print("|---------|--------|-------|-------------------|--------------|")
    med = {}
    for name, rows in figures.items():
        wall, cpu, rss = (statistics.median(col) for col in zip(*rows))
        med[name] = cpu
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {records / cpu:,.0f} | {rss:.0f} |")
    print(f"\nTLS / plaintext CPU per record: {med['TLS (SSL)'] / med['plaintext']:.3f}x")


if __name__ == "__main__":
    main()
