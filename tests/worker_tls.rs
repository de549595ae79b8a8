//! The worker's REST API over TLS: `listeners=https://host:port` with Kafka Connect's
//! `listeners.https.ssl.*` keys, certificates from a private CA made with openssl
//! (tests/common/tls.rs). The real binary against the tansu broker (`STREAMX_TEST_KAFKA_BROKERS`,
//! for its config topic); clients are ureq over rustls trusting that CA.
//!
//! - a PEM keystore (encrypted key, `ssl.key.password`): `GET /` and `GET /connectors` answer
//!   over TLS, an http listener next to it still answers in plain, plain http on the TLS port
//!   gets no HTTP answer, a client that does not trust the CA is refused;
//! - `ssl.client.auth=required` with PKCS12 keystore and truststore: a client without a
//!   certificate is refused, one with a certificate the truststore's CA signed is served;
//! - settings that cannot be honoured (wrong keystore password, wrong key password, JKS, a
//!   missing truststore for client auth) stop the worker at start naming the key.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::tls::Pki;
use common::worker::*;
use common::*;
use serde_json::Value;

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The private CA plus: `keystore.pem` (Java's PEM keystore: the server key encrypted with
/// `keypw`, then its certificate and the CA), `keystore.p12` (server key and certificate,
/// password `storepw`) and `keystore.jks` (JKS magic bytes only).
fn pki(dir: &Path) -> Pki {
    let pki = Pki::new(dir);
    let f = |n: &str| pki.file(n);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &f("server.key"),
        "-out",
        &f("server-enc.key"),
        "-passout",
        "pass:keypw",
    ]);
    let pem = ["server-enc.key", "server.pem", "ca.pem"]
        .map(|n| std::fs::read_to_string(f(n)).unwrap())
        .concat();
    std::fs::write(f("keystore.pem"), pem).unwrap();
    openssl(&[
        "pkcs12",
        "-export",
        "-inkey",
        &f("server.key"),
        "-in",
        &f("server.pem"),
        "-certfile",
        &f("ca.pem"),
        "-out",
        &f("keystore.p12"),
        "-passout",
        "pass:storepw",
    ]);
    std::fs::write(f("keystore.jks"), [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
    pki
}

/// The worker keys every test needs (no listener).
fn base_props() -> String {
    let servers = service_env("STREAMX_TEST_KAFKA_BROKERS");
    format!(
        "bootstrap.servers={servers}\ngroup.id={}\nconfig.storage.topic={}\n",
        unique("tls-group"),
        unique("tls-configs"),
    )
}

/// A GET over https: `Ok((status, JSON))`, or the client's error (a refused handshake).
/// `ca`: the PEM file the client trusts (None: the built-in web roots); `cert`: the client's
/// certificate and key PEM files.
fn get(url: &str, ca: Option<&str>, cert: Option<(&str, &str)>) -> Result<(u16, Value), String> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let read = |p: &str| std::fs::read(p).unwrap();
    let mut tls = TlsConfig::builder();
    if let Some(ca) = ca {
        let ca = Certificate::from_pem(&read(ca)).unwrap();
        tls = tls.root_certs(RootCerts::Specific(Arc::new(vec![ca])));
    }
    if let Some((chain, key)) = cert {
        let chain = Certificate::from_pem(&read(chain)).unwrap();
        let key = PrivateKey::from_pem(&read(key)).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[chain], key)));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls.build())
        .build()
        .new_agent();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((
        resp.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}

#[test]
fn https_listener_serves_the_rest_api_over_tls() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (tls_port, plain_port) = (free_port(), free_port());
    let props = format!(
        "{}listeners=https://127.0.0.1:{tls_port},http://127.0.0.1:{plain_port}
listeners.https.ssl.keystore.location={}
listeners.https.ssl.keystore.type=PEM
listeners.https.ssl.key.password=keypw
",
        base_props(),
        pki.file("keystore.pem"),
    );
    let base = format!("https://127.0.0.1:{tls_port}");
    let ca = pki.file("ca.pem");
    let w = Worker::start_with_listener(dir.path(), &props, &base, || {
        get(&format!("{base}/health"), Some(&ca), None).is_ok_and(|(s, _)| s == 200)
    });
    let (status, info) = get(&format!("{base}/"), Some(&ca), None).unwrap();
    assert_eq!(status, 200, "{info}");
    assert!(info["version"].is_string(), "{info}");
    let (status, list) = get(&format!("{base}/connectors"), Some(&ca), None).unwrap();
    assert_eq!((status, list), (200, serde_json::json!([])));
    // The http listener next to it answers in plain.
    let (status, _) = call(
        "GET",
        &format!("http://127.0.0.1:{plain_port}/connectors"),
        None,
    );
    assert_eq!(status, 200);
    // Plain http on the TLS port gets no HTTP answer.
    let (status, body) = call(
        "GET",
        &format!("http://127.0.0.1:{tls_port}/connectors"),
        None,
    );
    assert_eq!(status, 0, "plain http answered on the TLS port: {body}");
    // A client that does not trust the private CA refuses the server.
    let e = get(&format!("{base}/connectors"), None, None).unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    w.stop();
}

#[test]
fn client_auth_required_serves_only_clients_with_a_certificate_of_the_truststore() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let props = format!(
        "{}listeners=https://127.0.0.1:{port}
listeners.https.ssl.keystore.location={}
listeners.https.ssl.keystore.type=PKCS12
listeners.https.ssl.keystore.password=storepw
listeners.https.ssl.truststore.location={}
listeners.https.ssl.truststore.type=PKCS12
listeners.https.ssl.truststore.password=trustpw
listeners.https.ssl.client.auth=required
",
        base_props(),
        pki.file("keystore.p12"),
        pki.file("truststore.p12"),
    );
    let base = format!("https://127.0.0.1:{port}");
    let ca = pki.file("ca.pem");
    let (cert, key) = (pki.file("client.pem"), pki.file("client.key"));
    let w = Worker::start_with_listener(dir.path(), &props, &base, || {
        get(&format!("{base}/health"), Some(&ca), Some((&cert, &key))).is_ok_and(|(s, _)| s == 200)
    });
    let (status, list) = get(
        &format!("{base}/connectors"),
        Some(&ca),
        Some((&cert, &key)),
    )
    .unwrap();
    assert_eq!((status, list), (200, serde_json::json!([])));
    let refused = get(&format!("{base}/connectors"), Some(&ca), None);
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    // A certificate the truststore's CA did not sign: the server's own key under another CA.
    let (other, other_key) = (pki.file("stranger.pem"), pki.file("client.key"));
    openssl(&[
        "req",
        "-x509",
        "-key",
        &other_key,
        "-subj",
        "/CN=stranger",
        "-days",
        "1",
        "-out",
        &other,
    ]);
    let refused = get(
        &format!("{base}/connectors"),
        Some(&ca),
        Some((&other, &other_key)),
    );
    assert!(
        refused.is_err(),
        "served a certificate of another CA: {refused:?}"
    );
    w.stop();
}

#[test]
fn listener_settings_that_cannot_be_honoured_stop_the_worker_at_start() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let cases = [
        (
            format!(
                "listeners.https.ssl.keystore.location={}\nlisteners.https.ssl.keystore.type=PKCS12\nlisteners.https.ssl.keystore.password=wrong\n",
                pki.file("keystore.p12")
            ),
            "listeners.https.ssl.keystore.password",
        ),
        (
            format!(
                "listeners.https.ssl.keystore.location={}\nlisteners.https.ssl.key.password=wrong\n",
                pki.file("keystore.pem")
            ),
            "listeners.https.ssl.key.password",
        ),
        (
            format!(
                "listeners.https.ssl.keystore.location={}\nlisteners.https.ssl.keystore.password=x\n",
                pki.file("keystore.jks")
            ),
            "keytool -importkeystore",
        ),
        (
            format!(
                "listeners.https.ssl.keystore.location={}\nlisteners.https.ssl.keystore.password=storepw\nlisteners.https.ssl.client.auth=required\n",
                pki.file("keystore.p12")
            ),
            "listeners.https.ssl.truststore.location",
        ),
        // Connect's fallback: no listeners.https.* key, so the top-level ssl.* keys.
        (
            format!(
                "ssl.keystore.location={}\nssl.keystore.type=PKCS12\nssl.keystore.password=wrong\n",
                pki.file("keystore.p12")
            ),
            "ssl.keystore.password",
        ),
    ];
    for (keys, named) in cases {
        let props = format!("{}listeners=https://127.0.0.1:{port}\n{keys}", base_props());
        let (status, log) = worker_refused(dir.path(), &props, Duration::from_secs(30));
        assert!(
            !status.success(),
            "{keys}: the worker exited successfully:\n{log}"
        );
        assert!(
            log.contains(named),
            "{keys}: the error does not name {named}:\n{log}"
        );
        for secret in ["storepw", "keypw"] {
            assert!(
                !log.contains(secret),
                "{keys}: a password in the log:\n{log}"
            );
        }
    }
}
