//! Object stores: turns `store.url` and `store.*` options into an [`ObjectStore`] and a root path.
//!
//! One backend per scheme, all through the object_store crate: a plain path or `file://` (local
//! disk, the embedded default), `s3://bucket[/prefix]`, `az://container[/prefix]` (also
//! `abfs(s)://`, `azure://`) and `gs://bucket[/prefix]`. Options are handed to each builder's
//! `with_config` under object_store's own key names (`endpoint`, `region`, `access_key_id`,
//! `secret_access_key`, `allow_http`, `use_emulator`, `account_name`, ...), after the builder has
//! read the usual environment variables (`AWS_*`, `AZURE_*`, `GOOGLE_*`).
//!
//! The exactly-once protocol needs `PutMode::Create` (conditional create): local disk, S3 (and
//! S3-compatible stores with `If-None-Match`), Azure and GCS all provide it. Some S3-compatible
//! servers accept the header and ignore it; [`Store::probe_conditional_create`] finds out before
//! anything is written. Local disk is wrapped in [`durable::DurableLocal`] (fsync after writes);
//! `STREAMX_STORE_FAULTS` wraps any store in a [`faults::FaultyStore`] (crash tests only), and
//! `STREAMX_STORE_DELAY_MS` in a [`delayed::DelayedStore`] (a store that far away, for tests and
//! benches).

pub mod delayed;
pub mod durable;
pub mod faults;

use std::str::FromStr;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store.url {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("unknown option 'store.{key}' for a {scheme} store{}", allowed_hint(.scheme))]
    UnknownOption { scheme: &'static str, key: String },
    #[error("cannot create local store directory {path}: {source}")]
    LocalDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot configure the {scheme} store for {url}: {source}")]
    Build {
        scheme: &'static str,
        url: String,
        source: object_store::Error,
    },
    #[error("store {url} is unreachable or refuses access: {source}")]
    Unreachable {
        url: String,
        source: object_store::Error,
    },
    #[error("store {url} is unreachable: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("store {url} does not honour conditional writes: {detail}. StreamX's exactly-once commit needs a create that fails when the key exists (PutMode::Create). {hint}")]
    NoConditionalWrites {
        url: String,
        detail: String,
        hint: &'static str,
    },
    /// `STREAMX_STORE_FAULTS` or `STREAMX_STORE_DELAY_MS` is malformed.
    #[error("{0}")]
    Faults(String),
}

fn allowed_hint(scheme: &str) -> String {
    match scheme {
        "s3" => " (e.g. endpoint, region, access_key_id, secret_access_key, allow_http)".into(),
        "azure" => " (e.g. account_name, access_key, use_emulator, endpoint, allow_http)".into(),
        "gcs" => " (e.g. service_account_path, service_account_key)".into(),
        _ => String::new(),
    }
}

impl StoreError {
    pub fn origin(&self) -> Origin {
        match self {
            StoreError::Unreachable { .. } | StoreError::Timeout { .. } => Origin::External,
            StoreError::NoConditionalWrites { .. } => Origin::External,
            _ => Origin::User,
        }
    }
}

/// An object store and the root under which StreamX writes (`topics.dir` goes below it).
#[derive(Debug, Clone)]
pub struct Store {
    pub inner: Arc<dyn ObjectStore>,
    pub root: Path,
    /// The URL as configured, for messages and table locations.
    pub url: String,
}

impl Store {
    /// Builds the store for `url` with `store.*` options (prefix removed).
    pub fn with_url<'a>(
        url: &str,
        options: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Store, StoreError> {
        let mut store = Self::build(url, options)?;
        if let Ok(spec) = std::env::var(faults::FAULTS_ENV) {
            let rules = faults::FaultRule::parse_list(&spec).map_err(StoreError::Faults)?;
            tracing::warn!(
                rules = rules.len(),
                "store faults injected ({})",
                faults::FAULTS_ENV
            );
            store.inner = Arc::new(faults::FaultyStore::with_rules(store.inner, rules));
        }
        if let Ok(ms) = std::env::var(delayed::DELAY_ENV) {
            let delay = delayed::parse_delay(&ms).map_err(StoreError::Faults)?;
            tracing::warn!(?delay, "every store call delayed ({})", delayed::DELAY_ENV);
            store.inner = Arc::new(delayed::DelayedStore::new(store.inner, delay));
        }
        Ok(store)
    }

    fn build<'a>(
        url: &str,
        options: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Store, StoreError> {
        let options: Vec<(&String, &String)> = options.into_iter().collect();
        if !url.contains("://") || url.starts_with("file://") {
            return Self::local(url, &options);
        }
        let invalid = |message: String| StoreError::InvalidUrl {
            url: url.to_string(),
            message,
        };
        let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if parsed.host_str().unwrap_or("").is_empty() {
            return Err(invalid("no bucket or container name".into()));
        }
        let inner = cloud_store(url, &parsed, options)?;
        // For az:// URLs object_store takes the container from the host; the path is our root.
        Ok(Store {
            inner,
            root: Path::from(parsed.path().trim_matches('/')),
            url: url.to_string(),
        })
    }

    /// A local directory (created if missing), fsynced by [`durable::DurableLocal`].
    fn local(url: &str, options: &[(&String, &String)]) -> Result<Store, StoreError> {
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::InvalidUrl {
                url: url.to_string(),
                message: "empty path".into(),
            });
        }
        if let Some((k, _)) = options.first() {
            return Err(StoreError::UnknownOption {
                scheme: "local",
                key: (*k).clone(),
            });
        }
        let dir_err = |source| StoreError::LocalDir {
            path: path.to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(dir_err)?;
        let fs = LocalFileSystem::new_with_prefix(path).map_err(|source| StoreError::Build {
            scheme: "local",
            url: url.to_string(),
            source,
        })?;
        let root = std::fs::canonicalize(path).map_err(dir_err)?;
        Ok(Store {
            inner: Arc::new(durable::DurableLocal::new(fs, root)),
            root: Path::default(),
            url: url.to_string(),
        })
    }

    /// A path below the root. Segments are taken as they are (`Path::parse`), not
    /// percent-encoded again, so Hive-escaped directory names (`region=a%2Fb`) and non-ASCII
    /// values reach the store exactly as Hive, Spark and DataFusion expect them.
    pub fn path(&self, relative: &str) -> Path {
        let rel = relative
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let full = if self.root.as_ref().is_empty() {
            rel
        } else {
            format!("{}/{rel}", self.root)
        };
        // Only `.`/`..` segments fail to parse; those are encoded instead.
        Path::parse(&full).unwrap_or_else(|_| Path::from(full.as_str()))
    }

    /// Creates `path` unless it exists (`PutMode::Create`; `AlreadyExists` when it does): the
    /// atomic step of commits and compaction records.
    pub async fn create(&self, path: &Path, body: Vec<u8>) -> object_store::Result<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.inner
            .put_opts(path, PutPayload::from(body), opts)
            .await
            .map(|_| ())
    }

    /// Names of the "directories" directly below `prefix` (common prefixes of a delimited
    /// listing), sorted.
    pub async fn child_dir_names(&self, prefix: &Path) -> object_store::Result<Vec<String>> {
        let listed = self.inner.list_with_delimiter(Some(prefix)).await?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Fails fast when the store cannot be listed (unreachable endpoint, missing bucket, bad
    /// credentials). Called before anything is consumed.
    pub async fn check_reachable(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        let list = self.inner.list_with_delimiter(Some(&self.root));
        match tokio::time::timeout(timeout, list).await {
            Ok(r) => r.map(|_| ()).map_err(|source| StoreError::Unreachable {
                url: self.url.clone(),
                source,
            }),
            Err(_) => Err(StoreError::Timeout {
                url: self.url.clone(),
                secs: timeout.as_secs(),
            }),
        }
    }
}

/// The S3, Azure or GCS client for `url`, with `store.*` options under object_store's key names.
fn cloud_store(
    url: &str,
    parsed: &Url,
    options: Vec<(&String, &String)>,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let bucket_url = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
    let build_err = |scheme: &'static str| {
        move |source| StoreError::Build {
            scheme,
            url: url.to_string(),
            source,
        }
    };
    fn keys<K: FromStr>(
        scheme: &'static str,
        options: Vec<(&String, &String)>,
    ) -> Result<Vec<(K, String)>, StoreError> {
        options
            .into_iter()
            .map(|(k, v)| {
                let key = K::from_str(k).map_err(|_| StoreError::UnknownOption {
                    scheme,
                    key: k.clone(),
                })?;
                Ok((key, v.clone()))
            })
            .collect()
    }
    Ok(match parsed.scheme() {
        "s3" | "s3a" => {
            let b = AmazonS3Builder::from_env().with_url(bucket_url.replace("s3a://", "s3://"));
            let b = keys::<AmazonS3ConfigKey>("s3", options)?
                .into_iter()
                .fold(b, |b, (k, v)| b.with_config(k, v));
            Arc::new(b.build().map_err(build_err("s3"))?)
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let b = MicrosoftAzureBuilder::from_env().with_url(url);
            let b = keys::<AzureConfigKey>("azure", options)?
                .into_iter()
                .fold(b, |b, (k, v)| b.with_config(k, v));
            Arc::new(b.build().map_err(build_err("azure"))?)
        }
        "gs" => {
            let b = GoogleCloudStorageBuilder::from_env().with_url(bucket_url);
            let b = keys::<GoogleConfigKey>("gcs", options)?
                .into_iter()
                .fold(b, |b, (k, v)| b.with_config(k, v));
            Arc::new(b.build().map_err(build_err("gcs"))?)
        }
        other => {
            return Err(StoreError::InvalidUrl {
                url: url.to_string(),
                message: format!(
                    "unsupported scheme '{other}': use a path, file://, s3://, az:// or gs://"
                ),
            })
        }
    })
}

impl Store {
    /// Refuses a store that accepts a conditional create of an existing key: creates one key
    /// under `<topics.dir>/_streamx/probe/` twice and expects the second create to be refused.
    pub async fn probe_conditional_create(&self, topics_dir: &str) -> Result<(), StoreError> {
        let key = format!(
            "{}/_streamx/probe/{}",
            topics_dir.trim_matches('/'),
            uuid::Uuid::new_v4().simple()
        );
        let path = self.path(&key);
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let refused = |detail: String| StoreError::NoConditionalWrites {
            url: self.url.clone(),
            detail,
            hint: self.conditional_write_hint(),
        };
        let first = self
            .inner
            .put_opts(&path, PutPayload::from_static(b"probe"), create())
            .await;
        match first {
            Ok(_) => {}
            Err(e @ object_store::Error::NotImplemented { .. }) => {
                return Err(refused(format!(
                    "a create of {path} was refused as unsupported ({e})"
                )))
            }
            Err(source) => {
                return Err(StoreError::Unreachable {
                    url: self.url.clone(),
                    source,
                })
            }
        }
        let second = self
            .inner
            .put_opts(&path, PutPayload::from_static(b"probe"), create())
            .await;
        let _ = self.inner.delete(&path).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Ok(_) => Err(refused(format!(
                "a second create of {path} succeeded although the key existed"
            ))),
            Err(source) => Err(StoreError::Unreachable {
                url: self.url.clone(),
                source,
            }),
        }
    }

    fn conditional_write_hint(&self) -> &'static str {
        match self.url.split("://").next().unwrap_or("") {
            "s3" | "s3a" => "Check 'store.conditional_put' (leave it unset or 'etag'; 'disabled' turns conditional writes off) and that the S3-compatible server supports 'If-None-Match: *' on PUT (AWS S3, MinIO, SeaweedFS and Ceph RGW do; older servers ignore it).",
            "az" | "azure" | "abfs" | "abfss" | "adl" => "Check that the endpoint is Azure Blob Storage or Azurite 3.x, which honour 'If-None-Match: *'.",
            "gs" => "Check that the endpoint is Google Cloud Storage (ifGenerationMatch=0).",
            _ => "Check that the directory is on a local file system that supports hard links (network file systems may not).",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn local_path_and_file_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let s = Store::with_url(p.to_str().unwrap(), &BTreeMap::new()).unwrap();
        assert!(p.is_dir());
        assert_eq!(
            s.path("topics/a/partition=0").as_ref(),
            "topics/a/partition=0"
        );
        let url = format!("file://{}", p.display());
        Store::with_url(&url, &BTreeMap::new()).unwrap();
    }

    #[test]
    fn s3_url_with_prefix_and_options() {
        let opts = BTreeMap::from([
            ("endpoint".to_string(), "http://127.0.0.1:1".to_string()),
            ("region".to_string(), "us-east-1".to_string()),
            ("allow_http".to_string(), "true".to_string()),
        ]);
        let s = Store::with_url("s3://bucket/some/prefix", &opts).unwrap();
        assert_eq!(s.path("topics").as_ref(), "some/prefix/topics");
    }

    #[test]
    fn unknown_option_is_named() {
        let opts = BTreeMap::from([("endpiont".to_string(), "x".to_string())]);
        let err = Store::with_url("s3://bucket", &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.endpiont"), "{err}");
    }

    #[test]
    fn gcs_builder_from_config() {
        // No GCS emulator accepts object_store's writes (see README); the builder is tested here.
        let opts = BTreeMap::from([(
            "service_account_key".to_string(),
            r#"{"private_key":"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n","client_email":"a@b.c","private_key_id":"x"}"#
                .to_string(),
        )]);
        let r = Store::with_url("gs://bucket/prefix", &opts);
        // Either it builds, or it fails naming the GCS store (an invalid key), never panics.
        match r {
            Ok(s) => assert_eq!(s.path("t").as_ref(), "prefix/t"),
            Err(e) => assert!(e.to_string().contains("gcs"), "{e}"),
        }
    }

    #[test]
    fn bad_scheme_is_rejected() {
        let err = Store::with_url("ftp://x/y", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme 'ftp'"), "{err}");
    }
}
