//! `hadoop.conf.dir`: the original StreamX pointed its jobs at a Hadoop configuration directory
//! whose `core-site.xml` / `hdfs-site.xml` held the S3A credentials and endpoint. This reads the
//! `fs.s3a.*` properties of those files (when present) into object store options:
//!
//! | Hadoop property | store option |
//! |---|---|
//! | `fs.s3a.access.key` | `access_key_id` |
//! | `fs.s3a.secret.key` | `secret_access_key` |
//! | `fs.s3a.session.token` | `token` |
//! | `fs.s3a.endpoint` | `endpoint` (`http://` added when `fs.s3a.connection.ssl.enabled=false`) |
//! | `fs.s3a.endpoint.region` | `region` |
//! | `fs.s3a.path.style.access` | `virtual_hosted_style_request` (negated) |
//!
//! | `fs.s3a.encryption.algorithm` (or `fs.s3a.server-side-encryption-algorithm`) | `aws_server_side_encryption` (`SSE-S3`/`AES256`, `SSE-KMS`, `DSSE-KMS`, `SSE-C`) |
//! | `fs.s3a.encryption.key` (or `fs.s3a.server-side-encryption.key`) | `aws_sse_kms_key_id`, or `aws_sse_customer_key_base64` with SSE-C |
//!
//! `fs.s3a.acl.default` other than `Private`, client-side encryption (`CSE-KMS`) and per-bucket
//! (`fs.s3a.bucket.<b>.*`) encryption or ACL settings are refused: they change security and
//! StreamX cannot honour them. Other properties are ignored. A directory that does not exist here (the seed's example points
//! at a laptop's home) gives no options and one warning, so such a config still runs with the
//! store's own credentials chain; a directory without either file gives no options.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

/// The store options `dir`'s Hadoop files imply; `key` is the config key as spelt.
pub(super) fn s3_options(key: &str, dir: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    if !Path::new(dir).is_dir() {
        super::keys::log_ignored_once(
            key,
            &format!("{dir} is not a directory here; no fs.s3a.* settings read from it"),
        );
        return Ok(BTreeMap::new());
    }
    let mut props = BTreeMap::new();
    for file in ["core-site.xml", "hdfs-site.xml"] {
        let path = Path::new(dir).join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        props.extend(properties(&text));
    }
    let mut options = to_store_options(&props);
    options.extend(encryption(key, &props)?);
    Ok(options)
}

/// S3A's encryption as object_store options; S3A's canned ACL, client-side encryption and
/// per-bucket security settings refused (they cannot be honoured).
fn encryption(
    key: &str,
    props: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let refuse = |prop: &str, value: &str, allowed: &str| ConfigError::InvalidValue {
        key: format!("{key} ({prop})"),
        value: value.to_string(),
        allowed: allowed.to_string(),
    };
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    for (prop, value) in props {
        let security = prop.ends_with(".acl.default")
            || prop.contains("encryption")
            || prop.contains("server-side-encryption");
        if prop.starts_with("fs.s3a.bucket.") && security && !value.trim().is_empty() {
            let shown = if prop.ends_with(".key") {
                "[hidden]"
            } else {
                value
            };
            return Err(refuse(prop, shown, "unset: per-bucket S3A settings are not read; set the fs.s3a.* property or s3.ssea.name"));
        }
    }
    if let Some(acl) = get("fs.s3a.acl.default") {
        if !acl.eq_ignore_ascii_case("private") {
            return Err(refuse("fs.s3a.acl.default", acl, "Private (object_store sends no x-amz-acl; use the bucket's Object Ownership setting and policy)"));
        }
    }
    let mut out = BTreeMap::new();
    let algorithm = [
        "fs.s3a.encryption.algorithm",
        "fs.s3a.server-side-encryption-algorithm",
    ]
    .into_iter()
    .find_map(|p| get(p).map(|v| (p, v)));
    let Some((prop, algorithm)) = algorithm else {
        return Ok(out);
    };
    let kind = match algorithm.to_ascii_uppercase().as_str() {
        "SSE-S3" | "AES256" => "AES256",
        "SSE-KMS" => "aws:kms",
        "DSSE-KMS" => "aws:kms:dsse",
        "SSE-C" => "sse-c",
        _ => return Err(refuse(
            prop,
            algorithm,
            "SSE-S3, AES256, SSE-KMS, DSSE-KMS or SSE-C (client-side encryption is not supported)",
        )),
    };
    out.insert("aws_server_side_encryption".into(), kind.into());
    let secret = ["fs.s3a.encryption.key", "fs.s3a.server-side-encryption.key"]
        .into_iter()
        .find_map(get);
    match (kind, secret) {
        ("sse-c", Some(k)) => out.insert("aws_sse_customer_key_base64".into(), k.into()),
        (k, Some(id)) if k.starts_with("aws:kms") => {
            out.insert("aws_sse_kms_key_id".into(), id.into())
        }
        _ => None,
    };
    Ok(out)
}

/// The `<property><name>..</name><value>..</value></property>` pairs of a Hadoop XML file.
fn properties(xml: &str) -> BTreeMap<String, String> {
    // Hadoop's files are flat and simple; a full XML parser would add a dependency for nothing.
    let re = regex::Regex::new(
        r"(?s)<property>.*?<name>\s*(.*?)\s*</name>.*?<value>\s*(.*?)\s*</value>.*?</property>",
    )
    .expect("constant regex");
    re.captures_iter(xml)
        .map(|c| (unescape(&c[1]), unescape(&c[2])))
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn to_store_options(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let get = |k: &str| props.get(k).filter(|v| !v.is_empty());
    for (hadoop, option) in [
        ("fs.s3a.access.key", "access_key_id"),
        ("fs.s3a.secret.key", "secret_access_key"),
        ("fs.s3a.session.token", "token"),
        ("fs.s3a.endpoint.region", "region"),
    ] {
        if let Some(v) = get(hadoop) {
            out.insert(option.to_string(), v.clone());
        }
    }
    let ssl = get("fs.s3a.connection.ssl.enabled").is_none_or(|v| v != "false");
    if let Some(endpoint) = get("fs.s3a.endpoint") {
        let endpoint = if endpoint.contains("://") {
            endpoint.clone()
        } else if ssl {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        };
        if endpoint.starts_with("http://") {
            out.insert("allow_http".into(), "true".into());
        }
        out.insert("endpoint".into(), endpoint);
    }
    if let Some(path_style) = get("fs.s3a.path.style.access") {
        let virtual_hosted = if path_style == "true" {
            "false"
        } else {
            "true"
        };
        out.insert("virtual_hosted_style_request".into(), virtual_hosted.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE_SITE: &str = r#"<?xml version="1.0"?>
<configuration>
  <property>
    <name>fs.s3a.access.key</name>
    <value>AKIA&amp;X</value>
  </property>
  <property><name>fs.s3a.secret.key</name><value>s3cret</value></property>
  <property><name>fs.s3a.endpoint</name><value>127.0.0.1:5000</value></property>
  <property><name>fs.s3a.connection.ssl.enabled</name><value>false</value></property>
  <property><name>fs.s3a.path.style.access</name><value>true</value></property>
  <property><name>fs.defaultFS</name><value>hdfs://x</value></property>
</configuration>"#;

    #[test]
    fn reads_s3a_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("core-site.xml"), CORE_SITE).unwrap();
        let o = s3_options("hadoop.conf.dir", dir.path().to_str().unwrap()).unwrap();
        assert_eq!(o["access_key_id"], "AKIA&X");
        assert_eq!(o["secret_access_key"], "s3cret");
        assert_eq!(o["endpoint"], "http://127.0.0.1:5000");
        assert_eq!(o["allow_http"], "true");
        assert_eq!(o["virtual_hosted_style_request"], "false");
        assert_eq!(o.len(), 5);
    }

    /// S3A's encryption and canned-ACL properties were ignored like every other property:
    /// files went out unencrypted although core-site.xml asked for encryption.
    #[test]
    fn s3a_encryption_is_honoured_and_other_acls_refused() {
        let site = |props: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            let body: String = props
                .iter()
                .map(|(k, v)| format!("<property><name>{k}</name><value>{v}</value></property>"))
                .collect();
            std::fs::write(
                dir.path().join("core-site.xml"),
                format!("<configuration>{body}</configuration>"),
            )
            .unwrap();
            let path = dir.path().to_str().unwrap().to_string();
            (dir, path)
        };
        let (_d, p) = site(&[
            ("fs.s3a.encryption.algorithm", "SSE-KMS"),
            ("fs.s3a.encryption.key", "arn:k"),
            ("fs.s3a.acl.default", "Private"),
        ]);
        let o = s3_options("hadoop.conf.dir", &p).unwrap();
        assert_eq!(o["aws_server_side_encryption"], "aws:kms");
        assert_eq!(o["aws_sse_kms_key_id"], "arn:k");
        let (_d, p) = site(&[("fs.s3a.server-side-encryption-algorithm", "AES256")]);
        let o = s3_options("hadoop.conf.dir", &p).unwrap();
        assert_eq!(o["aws_server_side_encryption"], "AES256");
        let (_d, p) = site(&[
            ("fs.s3a.encryption.algorithm", "SSE-C"),
            ("fs.s3a.encryption.key", "a2V5"),
        ]);
        let o = s3_options("hadoop.conf.dir", &p).unwrap();
        assert_eq!(o["aws_server_side_encryption"], "sse-c");
        assert_eq!(o["aws_sse_customer_key_base64"], "a2V5");
        for (prop, value) in [
            ("fs.s3a.acl.default", "BucketOwnerFullControl"),
            ("fs.s3a.encryption.algorithm", "CSE-KMS"),
            ("fs.s3a.bucket.b.encryption.algorithm", "SSE-KMS"),
        ] {
            let (_d, p) = site(&[(prop, value)]);
            let e = s3_options("hadoop.conf.dir", &p).unwrap_err().to_string();
            assert!(e.contains(prop) && e.contains("hadoop.conf.dir"), "{e}");
        }
    }

    #[test]
    fn missing_dir_gives_nothing() {
        let o = s3_options("hadoop.conf.dir", "/nonexistent/hadoop-conf").unwrap();
        assert!(o.is_empty());
    }

    #[test]
    fn empty_dir_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let o = s3_options("hadoop.conf.dir", dir.path().to_str().unwrap()).unwrap();
        assert!(o.is_empty());
    }
}
