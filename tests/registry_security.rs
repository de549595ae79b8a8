//! The Schema Registry behind TLS and authentication, and secrets kept out of sight.
//!
//! The stand-in registry (tests/formats/common/registry.rs) checks basic auth or a bearer token;
//! Debian's stunnel4 terminates TLS in front of it with a certificate from a private CA made by
//! `openssl` (tests/common/tls.rs), optionally requiring a client certificate. Confluent-framed
//! Avro is ingested through it from the embedded broker; a wrong password and an untrusted
//! certificate fail with messages naming the URL (never the password), the HTTP status or the
//! TLS cause. `check-config` prints no secret, and `${env:..}` / `${file:..}` resolve in an
//! ingest config.

mod common;
#[path = "formats/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::time::Duration;

use common::tls::{free_port, stunnel, Pki, Process};
use common::unique;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use registry::TestRegistry;
use streamx::ingest::{self, IngestOptions};
use streamx::source::embedded::EmbeddedCluster;

const SCHEMA: &str = r#"{"type":"record","name":"Ev","fields":[
  {"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
const USER: &str = "sr-user";
const PASSWORD: &str = "sr-Pa55-word";

/// The registry (basic auth or bearer) behind stunnel, the PKI, and a topic with `n` records.
/// Fields drop in order: stunnel before the registry (whose accept thread would otherwise wait
/// on a connection stunnel holds), the directory last.
struct Setup {
    _tls: Process,
    registry: TestRegistry,
    https: String,
    _cluster: EmbeddedCluster,
    servers: String,
    topic: String,
    pki: Pki,
    _dir: tempfile::TempDir,
}

fn setup(n: i64, client_ca: Option<&str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let registry = TestRegistry::start();
    registry.add(5, SCHEMA);
    let tls_port = free_port();
    let tls = stunnel(&pki, tls_port, registry.port(), "server", client_ca);
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("sr-tls");
    cluster.create_topic(&topic, 1).unwrap();
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .unwrap();
    for i in 0..n {
        let value = apache_avro::types::Value::Record(vec![
            ("id".into(), apache_avro::types::Value::Long(i)),
            (
                "name".into(),
                apache_avro::types::Value::String(format!("n{i}")),
            ),
        ]);
        let mut framed = vec![0u8, 0, 0, 0, 5];
        framed.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to(&topic)
                    .partition(0)
                    .payload(&framed),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    Setup {
        https: format!("https://127.0.0.1:{tls_port}"),
        pki,
        _dir: dir,
        registry,
        _tls: tls,
        _cluster: cluster,
        servers,
        topic,
    }
}

impl Setup {
    /// The job's keys: Avro from the registry over TLS (PKCS12 truststore), JSON lines out.
    fn pairs(&self, out: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("name", self.topic.as_str()),
            ("bootstrap.servers", self.servers.as_str()),
            ("topics", self.topic.as_str()),
            ("store.url", out.to_str().unwrap()),
            ("format.class", "json"),
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            ("value.converter.schema.registry.url", self.https.as_str()),
            (
                "value.converter.schema.registry.ssl.truststore.location",
                &self.pki.file("truststore.p12"),
            ),
            (
                "value.converter.schema.registry.ssl.truststore.type",
                "PKCS12",
            ),
            (
                "value.converter.schema.registry.ssl.truststore.password",
                "trustpw",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.retain(|(key, _)| key != k);
            p.push((k.to_string(), v.to_string()));
        }
        p
    }
}

fn run(pairs: &[(String, String)]) -> Result<streamx::metrics::Snapshot, String> {
    let config =
        streamx::config::Config::from_properties_str("", pairs).map_err(|e| e.to_string())?;
    ingest::run(
        config,
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
}

/// Every JSON line written below `out`.
fn lines(out: &std::path::Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('_') {
                continue;
            }
            if e.path().is_dir() {
                stack.push(e.path());
            } else if name.ends_with(".json") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                all.extend(text.lines().map(str::to_string));
            }
        }
    }
    all.sort();
    all
}

#[test]
fn avro_decodes_through_a_registry_behind_tls_and_basic_auth() {
    let s = setup(20, None);
    s.registry.require_basic_auth(USER, PASSWORD);
    let out = tempfile::tempdir().unwrap();
    let info = format!("{USER}:{PASSWORD}");
    let pairs = s.pairs(
        out.path(),
        &[
            ("value.converter.basic.auth.credentials.source", "USER_INFO"),
            ("value.converter.basic.auth.user.info", &info),
        ],
    );
    let snap = run(&pairs).expect("ingest through the TLS registry");
    assert_eq!(snap.records_written, 20);
    let rows = lines(out.path());
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().any(|r| r.contains("\"n7\"")), "{rows:?}");
}

#[test]
fn credentials_in_the_url_and_a_client_certificate_reach_the_registry() {
    let s = setup(5, Some("ca.pem"));
    s.registry.require_basic_auth(USER, PASSWORD);
    // A Java PEM keystore: the private key and the certificate chain in one file.
    let keystore = s.pki.dir.join("client-keystore.pem");
    let key = std::fs::read_to_string(s.pki.file("client.key")).unwrap();
    let cert = std::fs::read_to_string(s.pki.file("client.pem")).unwrap();
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = s
        .https
        .replace("https://", &format!("https://{USER}:{PASSWORD}@"));
    let pairs = s.pairs(
        out.path(),
        &[
            ("value.converter.schema.registry.url", &url),
            ("value.converter.basic.auth.credentials.source", "URL"),
            (
                "value.converter.schema.registry.ssl.keystore.location",
                keystore.to_str().unwrap(),
            ),
            ("value.converter.schema.registry.ssl.keystore.type", "PEM"),
            (
                "value.converter.schema.registry.ssl.truststore.location",
                &s.pki.file("ca.pem"),
            ),
            ("value.converter.schema.registry.ssl.truststore.type", "PEM"),
        ],
    );
    let snap = run(&pairs).expect("ingest with a client certificate");
    assert_eq!(snap.records_written, 5);
    // Without the client certificate the TLS handshake is refused: an error naming the URL.
    let out2 = tempfile::tempdir().unwrap();
    let mut no_cert = s.pairs(
        out2.path(),
        &[("value.converter.schema.registry.url", &url)],
    );
    no_cert.push((
        "value.converter.basic.auth.credentials.source".into(),
        "URL".into(),
    ));
    // Another group: the first run's member may still hold the partition until it times out.
    no_cert.push(("group.id".into(), unique("g")));
    let err = run(&no_cert).expect_err("no client certificate");
    assert!(err.contains(&s.https), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn a_bearer_token_reaches_the_registry() {
    let s = setup(3, None);
    s.registry.require_bearer("tok-123-secret");
    let out = tempfile::tempdir().unwrap();
    let pairs = s.pairs(
        out.path(),
        &[
            (
                "value.converter.bearer.auth.credentials.source",
                "STATIC_TOKEN",
            ),
            ("value.converter.bearer.auth.token", "tok-123-secret"),
        ],
    );
    let snap = run(&pairs).expect("ingest with a bearer token");
    assert_eq!(snap.records_written, 3);
}

#[test]
fn a_wrong_registry_password_fails_naming_the_url_and_status() {
    let s = setup(3, None);
    s.registry.require_basic_auth(USER, PASSWORD);
    let out = tempfile::tempdir().unwrap();
    let pairs = s.pairs(
        out.path(),
        &[
            (
                "value.converter.schema.registry.url",
                &s.https
                    .replace("https://", &format!("https://{USER}:not-the-Pa55@")),
            ),
            ("value.converter.basic.auth.credentials.source", "URL"),
        ],
    );
    let started = std::time::Instant::now();
    let err = run(&pairs).expect_err("a wrong password must fail");
    assert!(err.contains(&s.https), "names the URL: {err}");
    assert!(err.contains("401"), "names the status: {err}");
    assert!(!err.contains("not-the-Pa55"), "no password: {err}");
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");
}

#[test]
fn an_untrusted_registry_certificate_fails_naming_the_url_and_cause() {
    let s = setup(3, None);
    let out = tempfile::tempdir().unwrap();
    let pairs = s.pairs(
        out.path(),
        &[
            (
                "value.converter.schema.registry.ssl.truststore.location",
                &s.pki.file("other-ca.pem"),
            ),
            ("value.converter.schema.registry.ssl.truststore.type", "PEM"),
        ],
    );
    let err = run(&pairs).expect_err("an unknown CA must fail");
    assert!(err.contains(&s.https), "names the URL: {err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "names the cause: {err}"
    );
    // A JKS truststore is refused, naming the key and how to convert it.
    let jks = s.pki.dir.join("trust.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
    let pairs = s.pairs(
        out.path(),
        &[
            (
                "value.converter.schema.registry.ssl.truststore.location",
                jks.to_str().unwrap(),
            ),
            ("value.converter.schema.registry.ssl.truststore.type", "JKS"),
        ],
    );
    let err = run(&pairs).expect_err("JKS refused");
    assert!(
        err.contains("value.converter.schema.registry.ssl.truststore"),
        "{err}"
    );
    assert!(err.contains("keytool"), "{err}");
}

#[test]
fn providers_resolve_in_an_ingest_config() {
    let s = setup(4, None);
    s.registry.require_basic_auth(USER, PASSWORD);
    let out = tempfile::tempdir().unwrap();
    let env_name = format!("STREAMX_TEST_SR_USER_{}", std::process::id());
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var(&env_name, USER) };
    let secrets = s.pki.dir.join("secrets.properties");
    std::fs::write(&secrets, format!("sr.password={PASSWORD}\n")).unwrap();
    let mut text = String::new();
    let info = format!(
        "${{env:{env_name}}}:${{file:{}:sr.password}}",
        secrets.display()
    );
    for (k, v) in s.pairs(
        out.path(),
        &[("value.converter.basic.auth.user.info", &info)],
    ) {
        text.push_str(&format!("{k}={v}\n"));
    }
    let file = s.pki.dir.join("job.properties");
    std::fs::write(&file, text).unwrap();
    let config = streamx::config::Config::load(Some(&file), &[]).expect("references resolve");
    let snap = ingest::run(
        config,
        IngestOptions {
            stop_at_end: true,
            ..Default::default()
        },
    )
    .expect("ingest with resolved credentials");
    assert_eq!(snap.records_written, 4);
    // An unresolvable reference names the key, not the value.
    let mut bad = std::fs::read_to_string(&file).unwrap();
    bad.push_str("value.converter.basic.auth.user.info=${env:STREAMX_TEST_NOT_SET_ANYWHERE}\n");
    std::fs::write(&file, bad).unwrap();
    let err = streamx::config::Config::load(Some(&file), &[])
        .expect_err("unresolvable")
        .to_string();
    assert!(
        err.contains("value.converter.basic.auth.user.info"),
        "{err}"
    );
}

#[test]
fn check_config_prints_no_secret() {
    let out = tempfile::tempdir().unwrap();
    let secrets = out.path().join("secrets.properties");
    std::fs::write(&secrets, "token=file-Secret-77\n").unwrap();
    let token_ref = format!("${{file:{}:token}}", secrets.display());
    let pairs: Vec<(String, String)> = [
        ("name", "cc"),
        ("bootstrap.servers", "127.0.0.1:1"),
        ("topics", "t"),
        ("store.url", out.path().to_str().unwrap()),
        ("value.converter", "io.confluent.connect.avro.AvroConverter"),
        (
            "value.converter.schema.registry.url",
            "https://sr-user:url-Secret-11@registry.example:8081,http://other:url-Secret-12@b:1",
        ),
        ("value.converter.basic.auth.credentials.source", "URL"),
        ("value.converter.basic.auth.user.info", "u:info-Secret-22"),
        ("value.converter.bearer.auth.token", &token_ref),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "PLAIN"),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"k\" password=\"jaas-Secret-33\";",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let output = std::process::Command::new(common::streamx_bin())
        .arg("check-config")
        .args(common::set_args(&pairs))
        .env("STREAMX_LOG", "debug")
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{shown}");
    for secret in [
        "url-Secret-11",
        "url-Secret-12",
        "info-Secret-22",
        "jaas-Secret-33",
        "file-Secret-77",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(shown.contains("[hidden]"), "{shown}");
    assert!(
        shown.contains("registry.example:8081"),
        "the URL stays readable: {shown}"
    );
    // A bad value of a key holding a URL: the error names the URL without its password.
    let mut bad = pairs.clone();
    bad.push((
        "value.converter.schema.registry.url".into(),
        "ftp://u:url-Secret-44@h".into(),
    ));
    let output = std::process::Command::new(common::streamx_bin())
        .arg("check-config")
        .args(common::set_args(&bad))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{shown}");
    assert!(!shown.contains("url-Secret-44"), "{shown}");
}
