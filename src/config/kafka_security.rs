//! Kafka client security: the top-level `security.protocol`, `ssl.*` and `sasl.*` keys (every
//! Kafka client of a job: consumer, end-check client, dead letter queue producer) and the same
//! keys under `consumer.*` / `producer.*`, turned into librdkafka settings before anything starts.
//!
//! The Java client's forms that Kafka Connect files carry are translated:
//!
//! | Java client key | librdkafka |
//! |---|---|
//! | `sasl.jaas.config` (Plain/Scram login module) | `sasl.username`, `sasl.password` |
//! | `sasl.jaas.config` (OAuthBearer login module) | `sasl.oauthbearer.client.id` / `.client.secret` / `.scope`, `sasl.oauthbearer.method=oidc` with a token endpoint |
//! | `sasl.jaas.config` (Krb5LoginModule) | `sasl.kerberos.keytab`, `sasl.kerberos.principal` |
//! | `ssl.truststore.location` PEM / PKCS12 | `ssl.ca.location` / `ssl.ca.pem` (the PKCS12's certificates as PEM) |
//! | `ssl.keystore.location` PKCS12 / PEM | `ssl.keystore.location` / `ssl.certificate.location` + `ssl.key.location` |
//! | `ssl.truststore.certificates`, `ssl.keystore.certificate.chain`, `ssl.keystore.key` | `ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem` |
//! | `ssl.endpoint.identification.algorithm=` (empty) | `none` (no hostname check, as Java) |
//! | Amazon MSK IAM (`sasl.mechanism=AWS_MSK_IAM`, `IAMLoginModule`, the IAM callback handler classes) | `sasl.mechanism=OAUTHBEARER` with tokens StreamX signs ([`super::msk_iam`]) |
//!
//! JKS stores are refused with the `keytool` command that converts them; other Java login classes
//! are refused; Java-only tuning keys (Java implementation names: `ssl.provider`,
//! `ssl.keymanager.algorithm`, ...) are accepted and ignored (logged once);
//! `ssl.enabled.protocols` is met when it lists TLSv1.2 (librdkafka negotiates TLS 1.2 or 1.3)
//! and refused otherwise; every other key is checked by librdkafka itself here,
//! so an unknown or invalid setting is a config error naming the key. Values of secret keys
//! ([`super::keys::is_secret`]) never appear in errors.

use std::collections::BTreeMap;

use super::{keys, ConfigError};

/// True for the client security keys a job accepts at the top level.
pub fn is_security_key(key: &str) -> bool {
    key == "security.protocol"
        || (key.len() > 4 && key.starts_with("ssl."))
        || (key.len() > 5 && key.starts_with("sasl."))
}

/// Java client keys with no librdkafka counterpart, accepted and ignored.
const JAVA_ONLY: &[&str] = &[
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.login.retry.backoff.max.ms",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
];

/// Java keys this module consumes itself (mapped to other librdkafka keys).
const MAPPED: &[&str] = &[
    "sasl.jaas.config",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
];

/// Keys naming files that must be readable.
const FILE_KEYS: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.crl.location",
    "sasl.kerberos.keytab",
];

/// An error about `key` (spelt with `prefix`), with the value hidden when it is a secret.
pub(super) fn bad(prefix: &str, key: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    let key = format!("{prefix}{key}");
    let value = if keys::is_secret(&key) {
        "[hidden]".to_string()
    } else {
        value.to_string()
    };
    ConfigError::InvalidValue {
        key,
        value,
        allowed: allowed.into(),
    }
}

/// Translates one client's settings (`prefix` = how the user spelt them: "", "consumer.",
/// "producer.") into librdkafka's: Java forms mapped, Java-only keys dropped, non-security keys
/// passed as they are, and the security keys checked by librdkafka.
pub fn to_librdkafka(
    prefix: &str,
    entries: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let get = |k: &str| entries.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        if k == "ssl.enabled.protocols" {
            tls_versions(prefix, v)?;
        }
        if JAVA_ONLY.contains(&k.as_str()) {
            keys::log_ignored_once(
                &format!("{prefix}{k}"),
                "a Java client setting librdkafka has no counterpart for",
            );
        } else if k == "ssl.endpoint.identification.algorithm" && v.trim().is_empty() {
            out.insert(k.clone(), "none".to_string()); // Java: empty = no hostname check
        } else if !MAPPED.contains(&k.as_str()) && !v.trim().is_empty() {
            out.insert(k.clone(), v.trim().to_string());
        }
    }
    let msk_iam = super::msk_iam::map(prefix, entries, &mut out)?;
    for class_key in CLASS_KEYS {
        if let Some(class) = get(class_key).filter(|_| !msk_iam) {
            out.remove(class_key);
            return Err(bad(prefix, class_key, class, UNSUPPORTED_CLASS));
        }
    }
    if let Some(jaas) = get("sasl.jaas.config").filter(|_| !msk_iam) {
        super::jaas::map(prefix, jaas, get("sasl.mechanism"), &mut out)?;
    }
    super::java_stores::map(prefix, &get, &mut out)?;
    check_files(prefix, &out)?;
    check_with_librdkafka(prefix, &out)?;
    Ok(out)
}

/// Java login / callback classes: only MSK IAM's are understood ([`super::msk_iam`]).
pub(super) const CLASS_KEYS: [&str; 3] = [
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "sasl.login.class",
];

const UNSUPPORTED_CLASS: &str = "unset: StreamX runs librdkafka, not Java login classes; use sasl.mechanism with sasl.username/sasl.password, sasl.jaas.config (Plain, Scram, OAuthBearer, Krb5 login modules), librdkafka's sasl.oauthbearer.* keys, or Amazon MSK IAM's classes";

pub use super::msk_iam::resolve_region as resolve_msk_region;

/// `ssl.enabled.protocols`: librdkafka cannot limit TLS versions (it negotiates TLS 1.2 or 1.3,
/// OpenSSL's defaults), so a list without TLSv1.2 (TLS 1.3 only) cannot be honoured and is
/// refused; a list with it is met (older versions listed are simply not offered).
fn tls_versions(prefix: &str, list: &str) -> Result<(), ConfigError> {
    if list.trim().is_empty() || list.split(',').any(|p| p.trim() == "TLSv1.2") {
        return Ok(());
    }
    Err(bad(prefix, "ssl.enabled.protocols", list, "a list with TLSv1.2, e.g. TLSv1.2,TLSv1.3 (librdkafka cannot limit TLS versions: it negotiates TLS 1.2 or 1.3 with the broker)"))
}

fn check_files(prefix: &str, out: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for k in FILE_KEYS {
        if let Some(path) = out.get(*k) {
            if let Err(e) = std::fs::File::open(path) {
                return Err(bad(prefix, k, path, format!("a readable file ({e})")));
            }
        }
    }
    Ok(())
}

/// Hands the security keys to librdkafka's configuration parser, which knows every key and
/// value it accepts (and whether this build has TLS / SASL).
fn check_with_librdkafka(prefix: &str, out: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaConfRes;
    for (k, v) in out.iter().filter(|(k, _)| is_security_key(k)) {
        let mut cc = rdkafka::ClientConfig::new();
        cc.set(k, v);
        match cc.create_native_config() {
            Ok(_) => {}
            Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..)) => {
                return Err(ConfigError::UnknownKey {
                    key: format!("{prefix}{k}"),
                    suggestion: None,
                })
            }
            // librdkafka's message quotes the value: not shown for a secret.
            Err(KafkaError::ClientConfig(..)) if keys::is_secret(k) => {
                return Err(bad(prefix, k, v, "a value librdkafka accepts"))
            }
            Err(KafkaError::ClientConfig(_, desc, ..)) => {
                return Err(bad(prefix, k, v, format!("librdkafka refuses it: {desc}")))
            }
            Err(e) => return Err(bad(prefix, k, v, e.to_string())),
        }
    }
    Ok(())
}

/// librdkafka's `builtin.features` of this build (e.g. `ssl,sasl_scram,sasl_gssapi,...`).
pub fn builtin_features() -> String {
    rdkafka::ClientConfig::new()
        .create_native_config()
        .ok()
        .and_then(|c| c.get("builtin.features").ok())
        .unwrap_or_default()
}
