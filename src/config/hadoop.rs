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
//! Other properties are ignored. A directory that does not exist here (the seed's example points
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
    Ok(to_store_options(&props))
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
