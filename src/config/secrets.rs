//! Secrets in configurations: config providers and masking.
//!
//! - [`resolve_providers`]: `${env:VAR}` (an environment variable) and `${file:path:key}` (a key of
//!   a `.properties` file), as Kafka Connect's `EnvVarConfigProvider` / `FileConfigProvider`.
//!   `streamx ingest`, `check-config` and `compact` resolve them when a config is loaded
//!   ([`super::RawConfig::resolved`]); the worker resolves a job's when its tasks start, so the
//!   stored config keeps the reference. This is the one implementation.
//! - [`shown`]: a value as it may be printed (check-config output, logs, error messages, the
//!   worker's validate answers): `[hidden]` for secret keys ([`super::keys::is_secret`]), and
//!   the user info of any URL inside a value replaced (`https://[hidden]@host:8081`).

use std::sync::OnceLock;

/// What a secret (or the credentials of a URL) is shown as.
pub const HIDDEN: &str = "[hidden]";

/// `${env:VAR}` and `${file:path:key}` references in `value` resolved; an unresolvable one is an
/// error naming the reference (never a resolved value).
pub fn resolve_providers(value: &str) -> Result<String, String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re =
        RE.get_or_init(|| regex::Regex::new(r"\$\{(env|file):([^}]*)\}").expect("constant regex"));
    let mut err = None;
    let out = re.replace_all(value, |c: &regex::Captures| {
        let found = match &c[1] {
            "env" => std::env::var(&c[2]).ok(),
            _ => c[2].rsplit_once(':').and_then(|(path, key)| {
                let text = std::fs::read_to_string(path).ok()?;
                let pairs = super::properties::parse(&text, path).ok()?;
                pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }),
        };
        found.unwrap_or_else(|| {
            err = Some(format!(
                "config provider reference {} cannot be resolved",
                &c[0]
            ));
            String::new()
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

/// `value` of `key` as it may be printed: [`HIDDEN`] for a secret key, else with the credentials
/// of any URL in it masked.
pub fn shown(key: &str, value: &str) -> String {
    if super::keys::is_secret(key) {
        HIDDEN.to_string()
    } else {
        mask_urls(value)
    }
}

/// `text` with the user info of every `scheme://user:password@host` replaced by [`HIDDEN`].
pub fn mask_urls(text: &str) -> String {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s,]*@").expect("constant regex")
    });
    re.replace_all(text, format!("${{1}}{HIDDEN}@").as_str())
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_keys_and_url_credentials() {
        assert_eq!(shown("sasl.jaas.config", "x password=\"p\";"), HIDDEN);
        assert_eq!(shown("value.converter.basic.auth.user.info", "u:p"), HIDDEN);
        assert_eq!(shown("value.converter.bearer.auth.token", "t"), HIDDEN);
        assert_eq!(
            shown(
                "value.converter.schema.registry.url",
                "https://u:p%40ss@a:8081/x,http://v:q@b"
            ),
            "https://[hidden]@a:8081/x,http://[hidden]@b"
        );
        assert_eq!(shown("store.url", "s3://bucket/a@b"), "s3://bucket/a@b");
        assert_eq!(shown("flush.size", "10"), "10");
    }

    #[test]
    fn providers() {
        std::env::set_var("STREAMX_SECRETS_TEST_VAR", "v1");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.properties");
        std::fs::write(&file, "k=from:file\n").unwrap();
        let r = format!(
            "${{env:STREAMX_SECRETS_TEST_VAR}}-${{file:{}:k}}",
            file.display()
        );
        assert_eq!(resolve_providers(&r).unwrap(), "v1-from:file");
        let e = resolve_providers("${env:STREAMX_SECRETS_TEST_NOPE}").unwrap_err();
        assert!(e.contains("STREAMX_SECRETS_TEST_NOPE"), "{e}");
        assert_eq!(resolve_providers("plain").unwrap(), "plain");
    }
}
