//! Store encryption and ACL settings, honoured or refused (never accepted and ignored).
//!
//! Azure and GCS: object_store 0.13 can set neither an Azure encryption scope or
//! customer-provided key nor a GCS Cloud KMS or customer-supplied key, so `store.*` options that
//! ask for one (any name with `encryption`, `kms`, `cpk` or `customer_key`) are refused here with
//! that reason (the bucket's or container's default encryption applies; set it there).
//!
//! S3: three
//! spellings reach object_store's encryption options:
//!
//! | source | keys |
//! |---|---|
//! | Confluent S3 sink | `s3.ssea.name`, `s3.sse.kms.key.id`, `s3.sse.customer.key` (+ `.algorithm`), `s3.acl.canned` |
//! | object_store (`store.*`) | `aws_server_side_encryption`, `aws_sse_kms_key_id`, `aws_sse_bucket_key_enabled`, `aws_sse_customer_key_base64` (and their `sse_*` aliases) |
//! | `hadoop.conf.dir` | `fs.s3a.encryption.algorithm` / `.key`, `fs.s3a.server-side-encryption-algorithm` / `.key`, `fs.s3a.acl.default` (see [`super::hadoop`]) |
//!
//! object_store sends them on every put, multipart upload and copy, and for SSE-C also on every
//! GET, HEAD and copy source, so everything StreamX writes and reads back (staged and published
//! files, commit records, compaction outputs and journal, schema versions) uses them. It applies
//! a KMS key, bucket key or customer key only with a matching algorithm and silently drops them
//! otherwise, so such combinations are refused here, as are two spellings that disagree, an
//! SSE-C key that is not 256 bits, and any canned ACL but `private` (object_store sends no
//! `x-amz-acl`).

use std::collections::BTreeMap;
use std::str::FromStr;

use object_store::aws::AmazonS3ConfigKey;

use super::values::{invalid, Values};
use super::ConfigError;

const TYPE: &str = "aws_server_side_encryption";
const KMS_KEY: &str = "aws_sse_kms_key_id";
const BUCKET_KEY: &str = "aws_sse_bucket_key_enabled";
const CUSTOMER_KEY: &str = "aws_sse_customer_key_base64";
const HIDDEN: &str = "[hidden]";

/// Adds the encryption options the config asks for to `options` (the `store.*` options) and
/// refuses what object_store would ignore. `hadoop`: `hadoop.conf.dir`'s options, lowest priority.
pub(super) fn apply(
    v: &Values,
    url: &str,
    options: &mut BTreeMap<String, String>,
    hadoop: Option<&BTreeMap<String, String>>,
) -> Result<(), ConfigError> {
    let s3 = url.starts_with("s3://") || url.starts_with("s3a://");
    let asked = confluent(v, s3)?;
    if !s3 {
        return not_s3(url, options);
    }
    let mut origin: BTreeMap<&'static str, String> = BTreeMap::new();
    for (key, value) in options.clone() {
        if let Ok(AmazonS3ConfigKey::Encryption(e)) = AmazonS3ConfigKey::from_str(&key) {
            let canonical = canonical_name(e.as_ref());
            options.remove(&key);
            options.insert(canonical.into(), value.trim().into());
            origin.insert(canonical, format!("store.{key}"));
        }
    }
    for (option, value, key) in asked {
        match options.get(option) {
            Some(other) if *other != value => {
                let shown = if option == CUSTOMER_KEY {
                    HIDDEN
                } else {
                    &value
                };
                return Err(invalid(
                    key,
                    shown,
                    format!("the same as {} (both set the encryption)", origin[option]),
                ));
            }
            _ => {
                options.insert(option.into(), value);
                origin.insert(option, key.to_string());
            }
        }
    }
    for (option, value) in hadoop.into_iter().flatten() {
        let known = [TYPE, KMS_KEY, BUCKET_KEY, CUSTOMER_KEY];
        if let Some(name) = known.iter().find(|k| **k == option.as_str()) {
            if !options.contains_key(option) {
                options.insert(option.clone(), value.clone());
                origin.insert(name, "hadoop.conf.dir".into());
            }
        }
    }
    consistent(options, &origin)
}

/// Refuses encryption options on a store that is not S3 (see the module docs).
fn not_s3(url: &str, options: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let azure = ["az://", "azure://", "abfs://", "abfss://", "adl://"]
        .iter()
        .any(|s| url.starts_with(s));
    for (key, value) in options {
        let lower = key.to_ascii_lowercase();
        let shown = if super::keys::is_secret(&format!("store.{key}")) || lower.contains("key") {
            HIDDEN
        } else {
            value.as_str()
        };
        let why = if lower.starts_with("aws_sse")
            || lower.starts_with("sse_")
            || lower.ends_with("server_side_encryption")
        {
            "only with an s3:// store.url (S3 encryption)"
        } else if !["encryption", "kms", "cpk", "customer_key"]
            .iter()
            .any(|w| lower.contains(w))
        {
            continue;
        } else if azure {
            "unset: object_store cannot send an Azure encryption scope or customer-provided key \
             (CPK); set a default encryption scope on the container instead"
        } else if url.starts_with("gs://") {
            "unset: object_store cannot send a Cloud KMS key or customer-supplied encryption key \
             to GCS; set the bucket's default KMS key instead"
        } else {
            "unset: this store has no encryption options"
        };
        return Err(invalid(&format!("store.{key}"), shown, why));
    }
    Ok(())
}

fn canonical_name(name: &str) -> &'static str {
    [TYPE, KMS_KEY, BUCKET_KEY, CUSTOMER_KEY]
        .into_iter()
        .find(|k| *k == name)
        .unwrap_or(TYPE)
}

/// The Confluent keys as `(option, value, key as spelt)`.
fn confluent<'a>(
    v: &Values<'a>,
    s3: bool,
) -> Result<Vec<(&'static str, String, &'a str)>, ConfigError> {
    let set = |k: &'static str| v.get(k).filter(|(_, value)| !value.trim().is_empty());
    for key in [
        "s3.ssea.name",
        "s3.sse.kms.key.id",
        "s3.sse.customer.key",
        "s3.sse.customer.algorithm",
    ] {
        if let (Some((key, value)), false) = (set(key), s3) {
            let value = if key.contains("customer.key") {
                HIDDEN
            } else {
                value
            };
            return Err(invalid(
                key,
                value,
                "only with an s3:// store.url (S3 encryption)",
            ));
        }
    }
    if let Some((key, acl)) = set("s3.acl.canned") {
        if !acl.trim().eq_ignore_ascii_case("private") {
            return Err(invalid(key, acl, "private (other canned ACLs cannot be sent: object_store has no x-amz-acl; grant access with the bucket's Object Ownership setting and policy)"));
        }
    }
    let mut out = Vec::new();
    if let Some((key, algorithm)) = set("s3.ssea.name") {
        let algorithm = algorithm.trim();
        if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&algorithm) {
            return Err(invalid(key, algorithm, "AES256, aws:kms or aws:kms:dsse"));
        }
        out.push((TYPE, algorithm.to_string(), key));
    }
    if let Some((key, id)) = set("s3.sse.kms.key.id") {
        out.push((KMS_KEY, id.trim().to_string(), key));
    }
    let algorithm = set("s3.sse.customer.algorithm");
    if let Some((akey, a)) = algorithm.filter(|(_, a)| a.trim() != "AES256") {
        return Err(invalid(akey, a, "AES256"));
    }
    match (set("s3.sse.customer.key"), algorithm) {
        (Some((key, customer_key)), _) => {
            if out.iter().any(|(o, _, _)| *o == TYPE) {
                return Err(invalid(
                    key,
                    HIDDEN,
                    "either SSE-C (s3.sse.customer.key) or s3.ssea.name, not both",
                ));
            }
            out.push((TYPE, "sse-c".into(), key));
            out.push((CUSTOMER_KEY, customer_key.trim().to_string(), key));
        }
        (None, Some((akey, a))) => {
            return Err(invalid(
                akey,
                a,
                "set only with s3.sse.customer.key (SSE-C)",
            ));
        }
        (None, None) => {}
    }
    Ok(out)
}

/// Refuses the combinations object_store would send wrongly or drop without a word.
fn consistent(
    options: &BTreeMap<String, String>,
    origin: &BTreeMap<&'static str, String>,
) -> Result<(), ConfigError> {
    let name = |option: &'static str| origin.get(option).cloned().unwrap_or(option.into());
    let kind = options.get(TYPE).map(String::as_str);
    if let Some(kind) = kind {
        if !["AES256", "aws:kms", "aws:kms:dsse", "sse-c"].contains(&kind) {
            return Err(invalid(
                &name(TYPE),
                kind,
                "AES256, aws:kms, aws:kms:dsse or sse-c",
            ));
        }
    }
    let kms = kind.is_some_and(|k| k.starts_with("aws:kms"));
    for option in [KMS_KEY, BUCKET_KEY] {
        if let (Some(value), false) = (options.get(option), kms) {
            let why = format!(
                "only with {}=aws:kms or aws:kms:dsse (object_store drops it otherwise)",
                name(TYPE)
            );
            return Err(invalid(&name(option), value, why));
        }
    }
    if let Some(value) = options.get(BUCKET_KEY) {
        super::values::boolean(&name(BUCKET_KEY), value)?;
    }
    match (kind == Some("sse-c"), options.get(CUSTOMER_KEY)) {
        (false, Some(_)) => Err(invalid(
            &name(CUSTOMER_KEY),
            HIDDEN,
            format!(
                "only with {}=sse-c (object_store drops it otherwise)",
                name(TYPE)
            ),
        )),
        (true, None) => Err(invalid(
            &name(TYPE),
            "sse-c",
            "only with a customer key (s3.sse.customer.key or store.aws_sse_customer_key_base64)",
        )),
        (true, Some(key)) => customer_key(&name(CUSTOMER_KEY), key),
        (false, None) => Ok(()),
    }
}

/// An SSE-C key must be the base64 of 32 bytes; S3 refuses any other at the first write.
fn customer_key(key: &str, value: &str) -> Result<(), ConfigError> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(value.trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(invalid(
            key,
            HIDDEN,
            "the base64 of a 256-bit key (32 bytes), e.g. `openssl rand -base64 32`",
        )),
    }
}
