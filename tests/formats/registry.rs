// Schema registry client against a minimal stand-in server (tests/common/registry.rs): no real
// Confluent Schema Registry can be installed here, so a tiny std `TcpListener` server on
// 127.0.0.1 serves `GET /schemas/ids/{id}` the way Confluent does.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::registry::TestRegistry;
use crate::common::{avro_datum, buffer, confluent};
use apache_avro::types::Value as AV;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use streamx::decode::avro::{AvroDecoder, AvroDecoderOptions};
use streamx::decode::registry::{RegistryClient, RegistryConfig, RegistryError, SchemaSource};
use streamx::decode::{DecodeError, ValueDecoder};
use streamx::Origin;

const USER: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;

fn fast(config: RegistryConfig) -> RegistryConfig {
    RegistryConfig {
        timeout: Duration::from_secs(5),
        attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..config
    }
}

fn client(urls: &str) -> RegistryClient {
    RegistryClient::new(fast(RegistryConfig::new(urls).unwrap()))
}

/// A URL nobody listens on (a port bound, then released).
fn closed_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn fetches_and_caches_by_id() {
    let reg = TestRegistry::start();
    reg.add(1, USER);
    reg.add_raw(
        2,
        serde_json::json!({"schema": USER, "schemaType": "AVRO", "references": []}),
    );
    let c = client(&reg.url);
    let s = c.schema_by_id(1).unwrap();
    assert_eq!(
        (s.id, s.schema.as_str(), s.schema_type.as_str()),
        (1, USER, "AVRO")
    );
    assert!(c.schema_by_id(2).unwrap().references.is_empty());
    let clone = c.clone();
    clone.schema_by_id(1).unwrap();
    c.schema_by_id(1).unwrap();
    assert_eq!(
        reg.requests(),
        2,
        "one request per id, the cache is shared by clones"
    );
    assert_eq!(c.cached(), 2);
}

#[test]
fn not_found_is_final_and_names_url_and_id() {
    let reg = TestRegistry::start();
    let err = client(&reg.url).schema_by_id(42).unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { id: 42, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&reg.url) && msg.contains("42") && msg.contains("Schema 42 not found"),
        "{msg}"
    );
    assert_eq!(reg.requests(), 1, "no retry on 404");
    assert_eq!(err.origin(), Origin::User);
}

#[test]
fn basic_auth_user_info() {
    let reg = TestRegistry::start();
    reg.add(1, USER).require_basic_auth("fred", "s3cr:et");
    let config = RegistryConfig::new(&reg.url).unwrap();
    let good = config
        .clone()
        .with_basic_auth("USER_INFO", Some("fred:s3cr:et"), &reg.url)
        .unwrap();
    assert_eq!(
        RegistryClient::new(fast(good))
            .schema_by_id(1)
            .unwrap()
            .schema,
        USER
    );
    let bad = config
        .clone()
        .with_basic_auth("USER_INFO", Some("fred:wrong-pw"), &reg.url)
        .unwrap();
    let err = RegistryClient::new(fast(bad)).schema_by_id(1).unwrap_err();
    assert!(
        matches!(err, RegistryError::Refused { status: 401, .. }),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("wrong-pw") && !shown.contains("s3cr"),
        "{shown}"
    );
    let err = RegistryClient::new(fast(config))
        .schema_by_id(1)
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    // Credentials in the URL (credentials.source=URL); the URL shown has none.
    let with_info = reg.url.replace("http://", "http://fred:s3cr:et@");
    let url_auth = RegistryConfig::new(&with_info)
        .unwrap()
        .with_basic_auth("URL", None, &with_info)
        .unwrap();
    assert_eq!(url_auth.urls, vec![reg.url.clone()]);
    assert_eq!(
        RegistryClient::new(fast(url_auth))
            .schema_by_id(1)
            .unwrap()
            .id,
        1
    );
}

#[test]
fn retries_5xx_with_backoff() {
    let reg = TestRegistry::start();
    reg.add(1, USER).fail_next(2);
    let s = client(&reg.url).schema_by_id(1).unwrap();
    assert_eq!(s.id, 1);
    assert_eq!(reg.requests(), 3, "two 503s, then the answer");
    reg.fail_next(10);
    let err = client(&reg.url).schema_by_id(1).unwrap_err();
    assert!(
        matches!(err, RegistryError::Unavailable { attempts: 3, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("HTTP 503") && err.to_string().contains(&reg.url),
        "{err}"
    );
    assert_eq!(err.origin(), Origin::External);
}

#[test]
fn fails_over_to_the_next_url() {
    let reg = TestRegistry::start();
    reg.add(1, USER);
    let dead = closed_url();
    let c = client(&format!("{dead},{}", reg.url));
    assert_eq!(c.schema_by_id(1).unwrap().id, 1);
    assert_eq!(reg.requests(), 1);
    let err = client(&format!("{dead},{}", closed_url()))
        .schema_by_id(5)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unavailable { urls: 2, .. }),
        "{err}"
    );
}

#[test]
fn times_out_on_a_silent_server() {
    let reg = TestRegistry::start();
    reg.hang();
    let config = RegistryConfig {
        timeout: Duration::from_millis(300),
        attempts: 1,
        ..RegistryConfig::new(&reg.url).unwrap()
    };
    let started = Instant::now();
    let err = RegistryClient::new(config).schema_by_id(1).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
}

#[test]
fn invalid_answers_are_reported() {
    let reg = TestRegistry::start();
    reg.add_raw(1, serde_json::json!({"unexpected": true}));
    let err = client(&reg.url).schema_by_id(1).unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidResponse { id: 1, .. }),
        "{err}"
    );
}

#[test]
fn the_avro_decoder_fetches_through_the_registry() {
    let reg = TestRegistry::start();
    reg.add(11, USER);
    let source = Arc::new(client(&reg.url));
    let mut dec = AvroDecoder::confluent(source.clone(), AvroDecoderOptions::default()).unwrap();
    let s = apache_avro::Schema::parse_str(USER).unwrap();
    let rec = |id| {
        Some(confluent(
            11,
            &avro_datum(&s, AV::Record(vec![("id".into(), AV::Long(id))])),
        ))
    };
    let d = dec
        .decode(&buffer(&[rec(1), rec(2), Some(confluent(12, &[2]))]))
        .unwrap();
    let ids: Vec<Option<i64>> = d
        .batch
        .column(0)
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(ids, vec![Some(1), Some(2)]);
    assert!(
        d.rejected[0].1 .0.contains("unknown schema id 12"),
        "{:?}",
        d.rejected
    );
    // Known and unknown ids are remembered: no new requests.
    dec.decode(&buffer(&[rec(3), Some(confluent(12, &[2]))]))
        .unwrap();
    assert_eq!(reg.requests(), 2);
    // A registry outage fails the call (nothing decoded), naming the registry.
    let down = RegistryClient::new(fast(RegistryConfig::new(&closed_url()).unwrap()));
    let mut dec = AvroDecoder::confluent(Arc::new(down), AvroDecoderOptions::default()).unwrap();
    let err = dec.decode(&buffer(&[rec(1)])).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Registry(RegistryError::Unavailable { id: 11, .. })
        ),
        "{err}"
    );
    assert_eq!(err.origin(), Origin::External);
}

/// JSON Schema references are fetched by subject and version (`GET /subjects/{s}/versions/{v}`),
/// the subject percent-encoded; a missing one is NotFound naming the reference.
#[test]
fn references_are_fetched_by_subject_and_version() {
    use streamx::decode::registry::{RegistryError, SchemaReference};
    let reg = TestRegistry::start();
    let c = client(&reg.url);
    let python = crate::common::python();
    let script = r#"
import sys, json
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
c = SchemaRegistryClient({"url": sys.argv[1]})
print(c.register_schema("addr ess", Schema(json.dumps({"type": "object"}), "JSON")))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &reg.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let reference = SchemaReference {
        name: "address.json".into(),
        subject: "addr ess".into(),
        version: 1,
    };
    let got = c.referenced(9, &reference).unwrap();
    assert_eq!((got.id, got.schema_type.as_str()), (id, "JSON"));
    let missing = SchemaReference {
        version: 2,
        ..reference
    };
    let e = c.referenced(9, &missing).unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("address.json"), "{e}");
}
