//! Kafka over TLS and SASL against a real broker: tansu started by each test on free ports,
//! behind stunnel4 for TLS (tests/common/tls.rs), with a private CA made by openssl. Needs
//! `$STREAMX_TEST_TANSU_BIN` (the services env file), `openssl` and `stunnel4`; a missing one
//! fails the test with what to do.
//!
//! Exactly once over TLS (Java-form PKCS12 truststore, and mutual TLS with a PEM keystore);
//! a wrong CA, a hostname mismatch and a failed SASL authentication each stop the run within
//! seconds with the broker, the security settings and the cause named; Amazon MSK IAM tokens are
//! signed and sent (the broker refuses them; no MSK here). SASL with a working
//! user is not tested: tansu 0.6 cannot create a SCRAM user that its `--authentication` then
//! accepts (see the report in the commit message).

mod common;

use std::time::Duration;

use common::tls::{free_port, Pki, TlsBroker};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use streamx::ingest::IngestError;

const PARTITIONS: i32 = 2;
const PER_PARTITION: u64 = 200;

fn client(servers: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", servers);
    for (k, v) in settings {
        cc.set(*k, *v);
    }
    cc
}

/// Creates `topic` and produces the test events over the secured connection.
fn create_and_produce(servers: &str, settings: &[(&str, &str)], topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client(servers, settings).create().unwrap();
    let topics = [NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let created = futures::executor::block_on(admin.create_topics(&topics, &opts)).unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let producer: BaseProducer = client(servers, settings).create().unwrap();
    for seq in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            let (k, v) = (format!("k{seq}"), event(p, seq));
            send(
                &producer,
                BaseRecord::to(topic).partition(p).key(&k).payload(&v),
            );
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Runs the ingest to the end of the input; the result and how long it took.
fn run_to_end(
    pairs: &[(String, String)],
    deadline: Duration,
) -> (Result<(), IngestError>, Duration) {
    let (result, took) = ingest_within(pairs, deadline);
    (result.map(|_| ()), took)
}

fn ingest_exactly_once(servers: &str, topic: &str, security: &[(&str, &str)]) {
    let out = tempfile::tempdir().unwrap();
    let pairs = job(servers, topic, out.path(), security);
    let (result, _) = run_to_end(&pairs, Duration::from_secs(120));
    result.expect("ingest over TLS");
    let seen = offsets_written(out.path(), topic);
    assert_exactly_once(&seen, PARTITIONS, PER_PARTITION as i64);
}

/// The run fails within a few seconds (the connect timeout is 10 s) with a message holding
/// every one of `needles`.
fn fails_fast(servers: &str, security: &[(&str, &str)], needles: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let topic = unique("tls-refused");
    let pairs = job(servers, &topic, out.path(), security);
    let (result, took) = run_to_end(&pairs, Duration::from_secs(60));
    let e = result.expect_err("the run must fail").to_string();
    for n in needles {
        assert!(e.contains(n), "'{n}' missing in: {e}");
    }
    assert!(
        took < Duration::from_secs(6),
        "failed after {took:?}, not fast: {e}"
    );
    e
}

#[test]
fn ssl_with_a_private_ca_in_a_pkcs12_truststore_ingests_exactly_once() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start(&pki, "server", None);
    let topic = unique("tls-ssl");
    let ca = pki.file("ca.pem");
    create_and_produce(
        &broker.servers,
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
        &topic,
    );
    // The Java client's forms, as a Connect worker file has them.
    let truststore = pki.file("truststore.p12");
    ingest_exactly_once(
        &broker.servers,
        &topic,
        &[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", &truststore),
            ("ssl.truststore.type", "PKCS12"),
            ("ssl.truststore.password", "trustpw"),
        ],
    );
}

#[test]
fn mutual_tls_with_a_pem_keystore_ingests_exactly_once() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start(&pki, "server", Some("ca.pem"));
    let (ca, cert, key) = (
        pki.file("ca.pem"),
        pki.file("client.pem"),
        pki.file("client.key"),
    );
    let mtls = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ];
    let topic = unique("tls-mtls");
    create_and_produce(&broker.servers, &mtls, &topic);
    // Java's PEM keystore: key and certificate chain in one file.
    let keystore = dir.path().join("keystore.pem");
    let pem = std::fs::read_to_string(&key).unwrap() + &std::fs::read_to_string(&cert).unwrap();
    std::fs::write(&keystore, pem).unwrap();
    let keystore = keystore.to_string_lossy().into_owned();
    ingest_exactly_once(
        &broker.servers,
        &topic,
        &[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", &ca),
            ("ssl.truststore.type", "PEM"),
            ("ssl.keystore.location", &keystore),
            ("ssl.keystore.type", "PEM"),
        ],
    );
}

#[test]
fn a_wrong_ca_fails_fast_naming_the_broker_and_the_cause() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start(&pki, "server", None);
    let other = pki.file("other-ca.pem");
    let e = fails_fast(
        &broker.servers,
        &[("security.protocol", "SSL"), ("ssl.ca.location", &other)],
        &[
            &broker.servers,
            "security.protocol=SSL",
            "certificate verify failed",
        ],
    );
    eprintln!("wrong CA: {e}");
}

#[test]
fn a_hostname_mismatch_fails_fast_and_an_empty_identification_algorithm_skips_the_check() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start(&pki, "wrong-host", None);
    let ca = pki.file("ca.pem");
    let e = fails_fast(
        &broker.servers,
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
        &[
            &broker.servers,
            "security.protocol=SSL",
            "certificate verify failed",
            "subjectAltName",
        ],
    );
    eprintln!("hostname mismatch: {e}");
    // Java's `ssl.endpoint.identification.algorithm=` (empty): no hostname check.
    let topic = unique("tls-nohost");
    let unchecked = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
        ("ssl.endpoint.identification.algorithm", "none"),
    ];
    create_and_produce(&broker.servers, &unchecked, &topic);
    ingest_exactly_once(
        &broker.servers,
        &topic,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca),
            ("ssl.endpoint.identification.algorithm", ""),
        ],
    );
}

#[test]
fn a_failed_sasl_authentication_fails_fast_naming_the_mechanism() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _tansu = common::tls::tansu(
        port,
        port,
        &dir.path().join("tansu.log"),
        &["--authentication"],
    );
    let servers = format!("127.0.0.1:{port}");
    let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="not-her-password";"#;
    let e = fails_fast(
        &servers,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", jaas),
        ],
        &[
            &servers,
            "sasl.mechanism=SCRAM-SHA-512",
            "SASL authentication error",
        ],
    );
    assert!(!e.contains("not-her-password"), "{e}");
    eprintln!("bad credentials: {e}");
}

/// Runs `streamx ingest` on `pairs` with `env` added; its stderr, after checking it failed
/// within `deadline`.
fn binary_fails_within(
    pairs: &[(String, String)],
    env: &[(&str, &str)],
    deadline: Duration,
) -> String {
    let started = std::time::Instant::now();
    let mut cmd = std::process::Command::new(streamx_bin());
    cmd.arg("ingest")
        .args(set_args(pairs))
        .arg("--stop-at-end")
        .env("STREAMX_LOG", "debug");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    let run = cmd.envs(env.iter().copied()).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success(), "must fail: {stderr}");
    assert!(took < deadline, "failed after {took:?}: {stderr}");
    stderr
}

/// The MSK IAM settings of a Java client's config, with the test CA.
fn msk_iam_job(servers: &str, out: &std::path::Path, ca: &str) -> Vec<(String, String)> {
    let security = [
        ("security.protocol", "SASL_SSL"),
        ("ssl.ca.location", ca),
        ("sasl.mechanism", "AWS_MSK_IAM"),
        (
            "sasl.jaas.config",
            "software.amazon.msk.auth.iam.IAMLoginModule required;",
        ),
        (
            "sasl.client.callback.handler.class",
            "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        ),
    ];
    job(servers, &unique("msk-iam"), out, &security)
}

/// Amazon MSK IAM as a Java client's config has it, against a TLS broker that cannot verify
/// MSK tokens (no MSK can be reached here): StreamX signs a token from the AWS credentials in
/// the environment and librdkafka sends it (the SaslAuthenticate request goes out: librdkafka
/// sends none without a token); the broker refuses it and the run stops fast naming the broker
/// and the mechanism; no credential is printed. Without credentials, the run stops naming that.
#[test]
fn msk_iam_signs_a_token_and_fails_fast_where_it_is_refused_or_cannot_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start_with(&pki, "server", None, &["--authentication"]);
    let out = tempfile::tempdir().unwrap();
    let pairs = msk_iam_job(&broker.servers, out.path(), &pki.file("ca.pem"));
    let (secret, session) = (
        "msk-test-SECRET-key-0123456789",
        "msk-test-SESSION-token-abc",
    );
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "AKIAMSKTEST"),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_SESSION_TOKEN", session),
        ("AWS_REGION", "eu-west-1"),
    ];
    let stderr = binary_fails_within(&pairs, &credentials, Duration::from_secs(15));
    let last = stderr.lines().last().unwrap_or_default();
    for needle in [
        broker.servers.as_str(),
        "sasl.mechanism=OAUTHBEARER",
        "SASL authentication error",
        "state AUTH_REQ",
    ] {
        assert!(last.contains(needle), "'{needle}' missing in: {last}");
    }
    for s in [secret, session] {
        assert!(!stderr.contains(s), "a credential was printed: {stderr}");
    }
    let no_credentials = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let stderr = binary_fails_within(&pairs, &no_credentials, Duration::from_secs(40));
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("cannot get AWS credentials"), "{last}");
}

/// A Kafka Connect worker file as a Java worker has it for a TLS cluster (a PKCS12
/// truststore with its type and password) runs unchanged in `streamx worker`: its config and
/// status topics and its job's consumer all go over TLS, and the job lands every record once.
#[test]
fn a_worker_file_with_a_pkcs12_truststore_runs_a_job_exactly_once_over_tls() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = TlsBroker::start(&pki, "server", None);
    let topic = unique("tls-worker");
    let ca = pki.file("ca.pem");
    create_and_produce(
        &broker.servers,
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
        &topic,
    );
    let props = format!(
        "bootstrap.servers={servers}\ngroup.id={group}\nconfig.storage.topic={cfg}\n\
         status.storage.topic={cfg}-status\nsecurity.protocol=SSL\n\
         ssl.truststore.location={truststore}\nssl.truststore.type=PKCS12\n\
         ssl.truststore.password=trustpw\n",
        servers = broker.servers,
        group = unique("tls-worker-group"),
        cfg = unique("tls-worker-configs"),
        truststore = pki.file("truststore.p12"),
    );
    let w = common::worker::Worker::start(dir.path(), &props);
    let out = tempfile::tempdir().unwrap();
    let config: serde_json::Map<String, serde_json::Value> = job(
        &broker.servers,
        &topic,
        out.path(),
        &[("flush.size", "100")],
    )
    .into_iter()
    .filter(|(k, _)| k != "bootstrap.servers")
    .map(|(k, v)| (k, serde_json::Value::String(v)))
    .collect();
    let body = serde_json::json!({"name": topic, "config": config});
    let (code, answer) = w.api("POST", "/connectors", Some(body));
    assert_eq!(code, 201, "{answer}");
    let want = (PARTITIONS * PER_PARTITION as i32) as usize;
    let landed = || offsets_written(out.path(), &topic).len() == want;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !landed() {
        if std::time::Instant::now() > deadline {
            let (_, status) = w.api("GET", &format!("/connectors/{topic}/status"), None);
            panic!("not every record landed: {status}\n{}", w.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = offsets_written(out.path(), &topic);
    assert_exactly_once(&seen, PARTITIONS, PER_PARTITION as i64);
    let (_, status) = w.api("GET", &format!("/connectors/{topic}/status"), None);
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
}
