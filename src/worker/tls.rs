//! The REST API over TLS: `listeners=https://host:port` with Kafka Connect's keys. As Connect
//! (`valuesWithPrefixAllOrNothing("listeners.https.")`): when any `listeners.https.*` key is set,
//! the https listener is configured by those keys only (prefix dropped), otherwise by the
//! top-level `ssl.*` keys (which the worker's Kafka clients use too).
//!
//! | key (after the prefix) | meaning |
//! |---|---|
//! | `ssl.keystore.location` | the server's key and certificate chain: PEM (Java's PEM keystore: key then certificates in one file) or PKCS12; JKS is refused with the `keytool` command that converts it |
//! | `ssl.keystore.type` | `PEM` or `PKCS12` (unset: read from the file) |
//! | `ssl.keystore.password` | the PKCS12 keystore's password |
//! | `ssl.key.password` | the password of an encrypted PEM private key |
//! | `ssl.keystore.certificate.chain`, `ssl.keystore.key` | the same as PEM text in the value |
//! | `ssl.truststore.location`, `.type`, `.password`, `ssl.truststore.certificates` | the CAs whose client certificates are accepted (PEM or PKCS12) |
//! | `ssl.client.auth` | `none` (default), `requested` (a certificate is checked when sent), `required` |
//!
//! | `ssl.enabled.protocols` | `TLSv1.2`, `TLSv1.3` (default both); older versions are refused: rustls serves neither |
//! | `ssl.cipher.suites` | Java / IANA suite names rustls has (e.g. `TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`); an unknown one is refused, naming it |
//!
//! These two are honoured or refused, never ignored: they decide how strong a connection is.
//! Other `ssl.*` keys (algorithms, provider settings) are for the Kafka clients. Stores are read with the system OpenSSL (as the Kafka
//! clients' stores are); connections are served by rustls (tokio-rustls, already in the tree
//! through object_store's HTTP client, with the same ring provider and no added crate).
//! A setting that cannot be honoured is a [`WorkerConfigError`] naming the key, at start.
//! Handshakes run in their own tasks (a slow or silent client delays nobody) and are
//! given [`HANDSHAKE_TIMEOUT`]; refused ones are logged at debug level.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::config::WorkerConfigError;

/// Connect's prefix for the https listener's keys.
pub const PREFIX: &str = "listeners.https.";

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The keys that configure the https listener, prefix dropped, and the prefix they had.
pub fn listener_keys(raw: &BTreeMap<String, String>) -> (&'static str, BTreeMap<String, String>) {
    let prefixed: BTreeMap<String, String> = raw
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?.to_string(), v.trim().to_string())))
        .collect();
    if !prefixed.is_empty() {
        return (PREFIX, prefixed);
    }
    let top = raw
        .iter()
        .filter(|(k, _)| k.starts_with("ssl."))
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    ("", top)
}

/// The listener keys of one worker, read with their user-facing names in errors.
struct Keys {
    prefix: &'static str,
    map: BTreeMap<String, String>,
}

impl Keys {
    fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An error about `key`; the value is hidden for passwords and inline keys.
    fn bad(&self, key: &str, why: impl Into<String>) -> WorkerConfigError {
        let value = self.get(key).unwrap_or("");
        let secret = key.contains("password") || key == "ssl.keystore.key";
        WorkerConfigError::Tls {
            key: format!("{}{key}", self.prefix),
            value: if secret && !value.is_empty() {
                "[hidden]".into()
            } else {
                value.to_string()
            },
            why: why.into(),
        }
    }

    fn read(&self, key: &str) -> Result<Vec<u8>, WorkerConfigError> {
        let path = self.get(key).unwrap_or("");
        std::fs::read(path).map_err(|e| self.bad(key, format!("cannot read the file: {e}")))
    }
}

/// The rustls configuration of the https listener, from `raw` (every worker key).
pub fn server_config(
    raw: &BTreeMap<String, String>,
) -> Result<Arc<ServerConfig>, WorkerConfigError> {
    let (prefix, map) = listener_keys(raw);
    let keys = Keys { prefix, map };
    let auth = match keys
        .get("ssl.client.auth")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(_) => return Err(keys.bad("ssl.client.auth", "required, requested or none")),
    };
    let (chain, key) = keystore(&keys)?;
    let provider = Arc::new(cipher_suites(&keys)?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocol_versions(&keys)?)
        .map_err(|e| keys.bad("ssl.enabled.protocols", e.to_string()))?;
    let builder = if auth == ClientAuth::None {
        builder.with_no_client_auth()
    } else {
        let roots = truststore(&keys)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = match auth {
            ClientAuth::Requested => verifier.allow_unauthenticated(),
            _ => verifier,
        };
        let verifier = verifier
            .build()
            .map_err(|e| keys.bad("ssl.truststore.location", e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let where_key = if keys.get("ssl.keystore.location").is_some() {
        "ssl.keystore.location"
    } else {
        "ssl.keystore.key"
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| keys.bad(where_key, format!("unusable key or certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `ssl.enabled.protocols`: the TLS versions served (default 1.2 and 1.3).
fn protocol_versions(
    keys: &Keys,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WorkerConfigError> {
    let Some(list) = keys.get("ssl.enabled.protocols") else {
        return Ok(rustls::DEFAULT_VERSIONS.to_vec());
    };
    let mut versions = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        versions.push(match name {
            "TLSv1.3" => &rustls::version::TLS13,
            "TLSv1.2" => &rustls::version::TLS12,
            other => {
                return Err(keys.bad(
                    "ssl.enabled.protocols",
                    format!("TLSv1.2 and/or TLSv1.3 ({other} is not served: too weak)"),
                ))
            }
        });
    }
    if versions.is_empty() {
        return Err(keys.bad("ssl.enabled.protocols", "TLSv1.2 and/or TLSv1.3"));
    }
    Ok(versions)
}

/// The crypto provider with `ssl.cipher.suites` only, when set (Java / IANA names; TLS 1.3
/// suites are `TLS13_...` in rustls).
fn cipher_suites(keys: &Keys) -> Result<rustls::crypto::CryptoProvider, WorkerConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(list) = keys.get("ssl.cipher.suites") else {
        return Ok(provider);
    };
    let name_of =
        |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1);
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match provider.cipher_suites.iter().find(|s| name_of(s) == name) {
            Some(s) => chosen.push(*s),
            None => {
                let known: Vec<String> = provider.cipher_suites.iter().map(name_of).collect();
                return Err(keys.bad(
                    "ssl.cipher.suites",
                    format!(
                        "{name} is not a suite the listener has; it has {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// `ssl.<which>.type`, or what the file looks like; JKS refused with how to convert it.
fn store_type(keys: &Keys, which: &str, bytes: &[u8]) -> Result<StoreType, WorkerConfigError> {
    let location = format!("ssl.{which}.location");
    let jks = || {
        let path = keys.get(&location).unwrap_or("");
        let p = keys.prefix;
        keys.bad(&location, format!(
            "a PEM or PKCS12 file, not a JKS {which}; convert it with `keytool -importkeystore -srckeystore {path} \
             -srcstoretype JKS -destkeystore {which}.p12 -deststoretype PKCS12` and set \
             {p}ssl.{which}.location={which}.p12, {p}ssl.{which}.type=PKCS12"
        ))
    };
    let type_key = format!("ssl.{which}.type");
    match keys.get(&type_key).map(str::to_ascii_uppercase).as_deref() {
        Some("PEM") => Ok(StoreType::Pem),
        Some("PKCS12") | Some("P12") => Ok(StoreType::Pkcs12),
        Some("JKS") => Err(jks()),
        Some(_) => Err(keys.bad(&type_key, "PEM or PKCS12 (JKS must be converted to PKCS12)")),
        None if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) => Err(jks()),
        None if String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)])
            .contains("-----BEGIN") =>
        {
            Ok(StoreType::Pem)
        }
        None => Ok(StoreType::Pkcs12),
    }
}

type Chain = Vec<CertificateDer<'static>>;

/// The server's certificate chain and private key.
fn keystore(keys: &Keys) -> Result<(Chain, PrivateKeyDer<'static>), WorkerConfigError> {
    let (certs, key, location) = if keys.get("ssl.keystore.location").is_some() {
        let location = "ssl.keystore.location";
        let bytes = keys.read(location)?;
        match store_type(keys, "keystore", &bytes)? {
            StoreType::Pem => {
                let key = pem_key(keys, &bytes, location)?;
                (pem_certs(keys, &bytes, location)?, key, location)
            }
            StoreType::Pkcs12 => {
                let (key, certs) = pkcs12(keys, "keystore", &bytes)?;
                let key = key.ok_or_else(|| {
                    keys.bad(location, "the PKCS12 keystore holds no private key")
                })?;
                (certs, key, location)
            }
        }
    } else if let Some(chain) = keys.get("ssl.keystore.certificate.chain") {
        let pem = keys.get("ssl.keystore.key").unwrap_or("");
        let key = pem_key(keys, pem.as_bytes(), "ssl.keystore.key")?;
        let location = "ssl.keystore.certificate.chain";
        (pem_certs(keys, chain.as_bytes(), location)?, key, location)
    } else {
        return Err(keys.bad(
            "ssl.keystore.location",
            "an https listener needs a keystore: a PEM or PKCS12 file with the server's private key and certificate",
        ));
    };
    let leaf = certs
        .first()
        .ok_or_else(|| keys.bad(location, "holds no certificate"))?;
    let matches = leaf.public_key().is_ok_and(|public| public.public_eq(&key));
    if !matches {
        return Err(keys.bad(
            location,
            "the private key does not belong to the first certificate",
        ));
    }
    let der = |cert: &X509| cert.to_der().map(CertificateDer::from);
    let chain = certs.iter().map(der).collect::<Result<Chain, _>>();
    let chain = chain.map_err(|e| keys.bad(location, e.to_string()))?;
    let pkcs8 = key
        .private_key_to_pkcs8()
        .map_err(|e| keys.bad(location, e.to_string()))?;
    Ok((chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8))))
}

/// The private key of PEM text, decrypted with `ssl.key.password` when it is encrypted.
fn pem_key(keys: &Keys, pem: &[u8], location: &str) -> Result<PKey<Private>, WorkerConfigError> {
    if !String::from_utf8_lossy(pem).contains("PRIVATE KEY-----") {
        return Err(keys.bad(location, "holds no PEM private key"));
    }
    // Never the default callback: it would ask on the terminal.
    let password = keys.get("ssl.key.password").unwrap_or("");
    PKey::private_key_from_pem_passphrase(pem, password.as_bytes()).map_err(|e| {
        if password.is_empty() {
            keys.bad(
                location,
                format!(
                    "cannot read the private key (set ssl.key.password if it is encrypted): {e}"
                ),
            )
        } else {
            keys.bad(
                "ssl.key.password",
                format!(
                    "wrong password or damaged key in {}{location}: {e}",
                    keys.prefix
                ),
            )
        }
    })
}

fn pem_certs(keys: &Keys, pem: &[u8], location: &str) -> Result<Vec<X509>, WorkerConfigError> {
    let certs = X509::stack_from_pem(pem).map_err(|e| keys.bad(location, e.to_string()))?;
    if certs.is_empty() {
        return Err(keys.bad(location, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// A PKCS12 store's private key (if any) and certificates, opened with `ssl.<which>.password`.
fn pkcs12(
    keys: &Keys,
    which: &str,
    der: &[u8],
) -> Result<(Option<PKey<Private>>, Vec<X509>), WorkerConfigError> {
    let location = format!("ssl.{which}.location");
    let p12 = Pkcs12::from_der(der).map_err(|e| keys.bad(&location, format!("not PKCS12: {e}")))?;
    let password_key = format!("ssl.{which}.password");
    let password = keys.get(&password_key).unwrap_or("");
    let parsed = p12.parse2(password).map_err(|e| {
        keys.bad(
            &password_key,
            format!(
                "wrong password or damaged file {}{location}: {e}",
                keys.prefix
            ),
        )
    })?;
    let certs = parsed
        .cert
        .into_iter()
        .chain(parsed.ca.into_iter().flatten())
        .collect();
    Ok((parsed.pkey, certs))
}

/// The CAs whose client certificates are accepted.
fn truststore(keys: &Keys) -> Result<RootCertStore, WorkerConfigError> {
    let (certs, location) = if let Some(pem) = keys.get("ssl.truststore.certificates") {
        let location = "ssl.truststore.certificates";
        (pem_certs(keys, pem.as_bytes(), location)?, location)
    } else if keys.get("ssl.truststore.location").is_some() {
        let location = "ssl.truststore.location";
        let bytes = keys.read(location)?;
        let certs = match store_type(keys, "truststore", &bytes)? {
            StoreType::Pem => pem_certs(keys, &bytes, location)?,
            StoreType::Pkcs12 => pkcs12(keys, "truststore", &bytes)?.1,
        };
        (certs, location)
    } else {
        let auth = keys.get("ssl.client.auth").unwrap_or("");
        return Err(keys.bad(
            "ssl.truststore.location",
            format!("ssl.client.auth={auth} needs a truststore: the CAs (PEM or PKCS12) whose client certificates are accepted"),
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        let der = cert
            .to_der()
            .map_err(|e| keys.bad(location, e.to_string()))?;
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| keys.bad(location, format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(keys.bad(location, "holds no certificate"));
    }
    Ok(roots)
}

/// A TCP listener whose connections are handed to axum once their TLS handshake is done.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (in a task of the current runtime).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }
}

/// Accepts connections until the listener is dropped, each handshake in its own task.
async fn accept(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: as axum's own accept loop.
                tracing::warn!(error = %e, "cannot accept a REST connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (the runtime is stopping): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn protocols_and_cipher_suites_are_honoured_or_refused() {
        let keys = |pairs: &[(&str, &str)]| Keys {
            prefix: PREFIX,
            map: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let only13 = protocol_versions(&keys(&[("ssl.enabled.protocols", "TLSv1.3")])).unwrap();
        assert_eq!(only13.len(), 1);
        assert_eq!(only13[0].version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(protocol_versions(&keys(&[])).unwrap().len(), 2);
        let old = protocol_versions(&keys(&[("ssl.enabled.protocols", "TLSv1.2,TLSv1.1")]));
        let e = old.unwrap_err().to_string();
        assert!(
            e.contains("listeners.https.ssl.enabled.protocols") && e.contains("TLSv1.1"),
            "{e}"
        );
        let suites = "TLS_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
        let p = cipher_suites(&keys(&[("ssl.cipher.suites", suites)])).unwrap();
        assert_eq!(p.cipher_suites.len(), 2);
        let e = cipher_suites(&keys(&[("ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_MD5")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TLS_RSA_WITH_RC4_128_MD5"), "{e}");
    }

    #[test]
    fn listener_keys_all_or_nothing_as_connect() {
        let top = map(&[("ssl.keystore.location", "/a"), ("group.id", "g")]);
        let (prefix, keys) = listener_keys(&top);
        assert_eq!(
            (prefix, keys),
            ("", map(&[("ssl.keystore.location", "/a")]))
        );
        let mut both = top.clone();
        both.insert("listeners.https.ssl.client.auth".into(), "required".into());
        let (prefix, keys) = listener_keys(&both);
        assert_eq!(prefix, PREFIX);
        assert_eq!(
            keys,
            map(&[("ssl.client.auth", "required")]),
            "no top-level key mixed in"
        );
    }

    #[test]
    fn errors_name_the_key_and_hide_passwords() {
        let e = server_config(&map(&[
            (
                "listeners.https.ssl.keystore.location",
                "/nonexistent/ks.p12",
            ),
            ("listeners.https.ssl.keystore.password", "hunter2"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("listeners.https.ssl.keystore.location")
                && e.contains("/nonexistent/ks.p12"),
            "{e}"
        );
        let e = server_config(&map(&[("ssl.client.auth", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'ssl.client.auth'") && e.contains("required, requested or none"),
            "{e}"
        );
        let e = server_config(&map(&[])).unwrap_err().to_string();
        assert!(
            e.contains("ssl.keystore.location") && e.contains("needs a keystore"),
            "{e}"
        );
        let keys = Keys {
            prefix: PREFIX,
            map: map(&[("ssl.key.password", "hunter2")]),
        };
        let e = keys.bad("ssl.key.password", "wrong").to_string();
        assert!(
            !e.contains("hunter2") && e.contains("listeners.https.ssl.key.password"),
            "{e}"
        );
    }
}
