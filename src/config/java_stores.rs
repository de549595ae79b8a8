//! The Java client's `ssl.truststore.*` / `ssl.keystore.*` keys as librdkafka settings (see
//! [`super::kafka_security`]): PEM files are used as they are, a PKCS12 truststore is read into
//! PEM text (`ssl.ca.pem`; librdkafka reads CAs only from PEM), a PKCS12 keystore is librdkafka's
//! own `ssl.keystore.location`; JKS is refused with the command that converts it.
//! [`pem_material`] reads the same keys into PEM text for the Schema Registry's HTTPS client.

use std::collections::BTreeMap;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

/// The declared `ssl.<which>.type`, or what the file looks like when it is not declared (Java's
/// default type is JKS; a file is PEM when it is text with `-----BEGIN`).
fn store_type(
    prefix: &str,
    which: &str,
    declared: Option<&str>,
    bytes: &[u8],
) -> Result<StoreType, ConfigError> {
    let key = format!("{prefix}ssl.{which}.type");
    match declared.map(str::to_uppercase).as_deref() {
        Some("PEM") => Ok(StoreType::Pem),
        Some("PKCS12") | Some("P12") => Ok(StoreType::Pkcs12),
        Some("JKS") => Ok(StoreType::Jks),
        Some(other) => Err(ConfigError::InvalidValue {
            key,
            value: other.to_string(),
            allowed: "PEM or PKCS12 (JKS must be converted to PKCS12)".into(),
        }),
        None if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) => Ok(StoreType::Jks),
        None if String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)])
            .contains("-----BEGIN") =>
        {
            Ok(StoreType::Pem)
        }
        None => Ok(StoreType::Pkcs12),
    }
}

fn jks_refused(prefix: &str, which: &str, path: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: format!("{prefix}ssl.{which}.location"),
        value: path.to_string(),
        allowed: format!(
            "a PEM or PKCS12 file, not a JKS {which} (librdkafka cannot read JKS); convert it with \
             `keytool -importkeystore -srckeystore {path} -srcstoretype JKS -destkeystore {which}.p12 \
             -deststoretype PKCS12` and set {prefix}ssl.{which}.location={which}.p12, \
             {prefix}ssl.{which}.type=PKCS12"
        ),
    }
}

fn read(prefix: &str, key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::InvalidValue {
        key: format!("{prefix}{key}"),
        value: path.to_string(),
        allowed: format!("a readable file ({e})"),
    })
}

/// Maps the Java store keys of one client (read through `get`) into `out`.
pub fn map<'a>(
    prefix: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    if let Some(pem) = get("ssl.truststore.certificates") {
        out.insert("ssl.ca.pem".into(), pem.to_string());
    }
    if let Some(chain) = get("ssl.keystore.certificate.chain") {
        out.insert("ssl.certificate.pem".into(), chain.to_string());
    }
    if let Some(key) = get("ssl.keystore.key") {
        out.insert("ssl.key.pem".into(), key.to_string());
    }
    if let Some(path) = get("ssl.truststore.location") {
        let bytes = read(prefix, "ssl.truststore.location", path)?;
        match store_type(prefix, "truststore", get("ssl.truststore.type"), &bytes)? {
            StoreType::Pem => {
                out.insert("ssl.ca.location".into(), path.to_string());
            }
            StoreType::Jks => return Err(jks_refused(prefix, "truststore", path)),
            StoreType::Pkcs12 => {
                let pem = pkcs12_certificates(&bytes, get("ssl.truststore.password").unwrap_or(""))
                    .map_err(|why| ConfigError::InvalidValue {
                        key: format!("{prefix}ssl.truststore.location"),
                        value: path.to_string(),
                        allowed: format!("a PKCS12 truststore readable with {prefix}ssl.truststore.password ({why})"),
                    })?;
                out.insert("ssl.ca.pem".into(), pem);
            }
        }
    }
    if let Some(path) = get("ssl.keystore.location") {
        let bytes = read(prefix, "ssl.keystore.location", path)?;
        match store_type(prefix, "keystore", get("ssl.keystore.type"), &bytes)? {
            StoreType::Pkcs12 => {} // librdkafka's ssl.keystore.location / .password as they are
            StoreType::Jks => return Err(jks_refused(prefix, "keystore", path)),
            StoreType::Pem => {
                // Java's PEM keystore: the private key and the certificate chain in one file.
                out.remove("ssl.keystore.location");
                out.remove("ssl.keystore.password");
                out.insert("ssl.certificate.location".into(), path.to_string());
                out.insert("ssl.key.location".into(), path.to_string());
            }
        }
    }
    Ok(())
}

/// Every certificate of a PKCS12 file, as PEM text.
fn pkcs12_certificates(der: &[u8], password: &str) -> Result<String, String> {
    let p12 = openssl::pkcs12::Pkcs12::from_der(der).map_err(|e| format!("not PKCS12: {e}"))?;
    let parsed = p12
        .parse2(password)
        .map_err(|e| format!("wrong password or damaged file: {e}"))?;
    let mut pem = String::new();
    let certs = parsed
        .cert
        .into_iter()
        .chain(parsed.ca.into_iter().flatten());
    for cert in certs {
        let text = cert.to_pem().map_err(|e| e.to_string())?;
        pem.push_str(&String::from_utf8_lossy(&text));
    }
    if pem.is_empty() {
        return Err("it holds no certificate".into());
    }
    Ok(pem)
}

/// TLS material of an HTTPS client (the Schema Registry's), read from the Java store keys under
/// `prefix` (`<prefix>ssl.truststore.*`, `<prefix>ssl.keystore.*`, `<prefix>ssl.key.password`):
/// the trusted CAs and the client certificate chain with its private key, all as PEM text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PemMaterial {
    /// Trusted CA certificates; `None` = the client's default roots.
    pub ca_pem: Option<String>,
    /// The client certificate chain and its (unencrypted PKCS#8) private key.
    pub client: Option<(String, String)>,
}

impl std::fmt::Debug for PemMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemMaterial")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("client", &self.client.as_ref().map(|_| "[hidden]"))
            .finish()
    }
}

/// Reads the stores named under `prefix` into [`PemMaterial`]; JKS is refused as for Kafka.
pub fn pem_material<'a>(
    prefix: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<PemMaterial, ConfigError> {
    let mut out = PemMaterial::default();
    if let Some(path) = get("ssl.truststore.location") {
        let bytes = read(prefix, "ssl.truststore.location", path)?;
        let bad = |why: String| ConfigError::InvalidValue {
            key: format!("{prefix}ssl.truststore.location"),
            value: path.to_string(),
            allowed: format!("a PEM or PKCS12 truststore ({why})"),
        };
        out.ca_pem = Some(
            match store_type(prefix, "truststore", get("ssl.truststore.type"), &bytes)? {
                StoreType::Jks => return Err(jks_refused(prefix, "truststore", path)),
                StoreType::Pem => String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?,
                StoreType::Pkcs12 => {
                    pkcs12_certificates(&bytes, get("ssl.truststore.password").unwrap_or(""))
                        .map_err(bad)?
                }
            },
        );
    }
    if let Some(path) = get("ssl.keystore.location") {
        let bytes = read(prefix, "ssl.keystore.location", path)?;
        let bad = |why: String| {
            ConfigError::InvalidValue {
            key: format!("{prefix}ssl.keystore.location"),
            value: path.to_string(),
            allowed: format!("a PEM file with the private key and certificate chain, or a PKCS12 keystore ({why})"),
        }
        };
        out.client = Some(
            match store_type(prefix, "keystore", get("ssl.keystore.type"), &bytes)? {
                StoreType::Jks => return Err(jks_refused(prefix, "keystore", path)),
                StoreType::Pem => pem_identity(&bytes, get("ssl.key.password")).map_err(bad)?,
                StoreType::Pkcs12 => {
                    pkcs12_identity(&bytes, get("ssl.keystore.password").unwrap_or(""))
                        .map_err(bad)?
                }
            },
        );
    }
    Ok(out)
}

/// A PEM keystore (key and chain in one file, the key maybe encrypted) as (chain, PKCS#8 key).
fn pem_identity(pem: &[u8], key_password: Option<&str>) -> Result<(String, String), String> {
    let key = match key_password {
        Some(pw) => openssl::pkey::PKey::private_key_from_pem_passphrase(pem, pw.as_bytes()),
        None => openssl::pkey::PKey::private_key_from_pem(pem),
    }
    .map_err(|e| format!("no readable private key: {e}"))?;
    let chain = openssl::x509::X509::stack_from_pem(pem)
        .map_err(|e| format!("no readable certificate: {e}"))?;
    identity(key, chain)
}

/// A PKCS12 keystore as (chain, PKCS#8 key).
fn pkcs12_identity(der: &[u8], password: &str) -> Result<(String, String), String> {
    let p12 = openssl::pkcs12::Pkcs12::from_der(der).map_err(|e| format!("not PKCS12: {e}"))?;
    let parsed = p12
        .parse2(password)
        .map_err(|e| format!("wrong password or damaged file: {e}"))?;
    let key = parsed.pkey.ok_or("it holds no private key")?;
    let chain = parsed
        .cert
        .into_iter()
        .chain(parsed.ca.into_iter().flatten())
        .collect();
    identity(key, chain)
}

fn identity(
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    chain: Vec<openssl::x509::X509>,
) -> Result<(String, String), String> {
    if chain.is_empty() {
        return Err("it holds no certificate".into());
    }
    let mut pem = String::new();
    for cert in chain {
        let text = cert.to_pem().map_err(|e| e.to_string())?;
        pem.push_str(&String::from_utf8_lossy(&text));
    }
    let key = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
    Ok((pem, String::from_utf8_lossy(&key).into_owned()))
}
