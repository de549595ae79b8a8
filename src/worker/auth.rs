//! Optional HTTP basic authentication of the REST API: worker keys `rest.basic.auth.user` and
//! `rest.basic.auth.password` (the password may be a `${env:VAR}` or `${file:path:key}`
//! reference, resolved at start, so it stays out of the properties file). With them set, every
//! request but `GET /health` must carry `Authorization: Basic` with those credentials, or gets
//! 401 with a Connect-style error body and `WWW-Authenticate: Basic`. `/health` stays open so
//! that liveness probes and the Docker healthcheck need no secret; it tells nothing about jobs.
//!
//! Kafka Connect's own way, `rest.extension.classes=...BasicAuthSecurityRestExtension` with a
//! JAAS file given to the JVM, cannot be read here: that setting is refused with a pointer to
//! these keys rather than ignored (ignoring it would leave the API open).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

use super::config::WorkerConfigError;

pub const USER: &str = "rest.basic.auth.user";
pub const PASSWORD: &str = "rest.basic.auth.password";
const EXTENSIONS: &str = "rest.extension.classes";

/// The one user allowed in.
#[derive(Clone)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BasicAuth {{ user: {:?}, password: [hidden] }}",
            self.user
        )
    }
}

impl BasicAuth {
    /// From the worker keys: `None` when neither is set; both or neither must be.
    pub fn from_keys(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<BasicAuth>, WorkerConfigError> {
        if let Some(ext) = get(EXTENSIONS).filter(|v| v.contains("BasicAuthSecurityRestExtension"))
        {
            return Err(WorkerConfigError::Invalid {
                key: EXTENSIONS.into(),
                value: ext,
                allowed: "no JAAS-based REST extension here: set rest.basic.auth.user and rest.basic.auth.password instead",
            });
        }
        let invalid = |key: &str, value: &str, allowed| WorkerConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            allowed,
        };
        match (get(USER), get(PASSWORD)) {
            (None, None) => Ok(None),
            (Some(user), _) if user.contains(':') => {
                Err(invalid(USER, &user, "a user name without ':'"))
            }
            (Some(user), Some(password)) => {
                let password = super::jobs::resolve_providers(&password).map_err(|_| {
                    invalid(
                        PASSWORD,
                        "[hidden]",
                        "a password, or a ${env:..} / ${file:..} reference that resolves",
                    )
                })?;
                Ok(Some(BasicAuth { user, password }))
            }
            (Some(_), None) => Err(WorkerConfigError::Missing(PASSWORD)),
            (None, Some(_)) => Err(WorkerConfigError::Missing(USER)),
        }
    }

    /// Whether an `Authorization` header carries these credentials.
    pub fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", self.user, self.password);
        same(&decoded, expected.as_bytes())
    }
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The axum middleware: lets `/health` and authorized requests through, answers the rest 401.
pub async fn require(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_end_matches('/');
    if path == "/health" || auth.allows(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let mut resp = super::rest::error(401, "User cannot access the resource.");
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"streamx\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        }
    }

    fn basic(user_pass: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn only_the_configured_credentials_pass() {
        let auth = BasicAuth::from_keys(keys(&[(USER, "admin"), (PASSWORD, "s3cret")]))
            .unwrap()
            .unwrap();
        assert!(auth.allows(Some(&basic("admin:s3cret"))));
        assert!(!auth.allows(Some(&basic("admin:wrong"))));
        assert!(!auth.allows(Some(&basic("admin:s3cre"))));
        assert!(!auth.allows(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!auth.allows(None));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn keys_come_in_pairs_and_the_jaas_extension_is_refused() {
        assert!(BasicAuth::from_keys(keys(&[])).unwrap().is_none());
        let e = BasicAuth::from_keys(keys(&[(USER, "a")])).unwrap_err();
        assert!(e.to_string().contains(PASSWORD), "{e}");
        let e = BasicAuth::from_keys(keys(&[(USER, "a:b"), (PASSWORD, "p")])).unwrap_err();
        assert!(e.to_string().contains(USER), "{e}");
        let ext =
            "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension";
        let e = BasicAuth::from_keys(keys(&[(EXTENSIONS, ext)])).unwrap_err();
        assert!(e.to_string().contains("rest.basic.auth.user"), "{e}");
    }

    #[test]
    fn the_password_may_come_from_the_environment() {
        std::env::set_var("STREAMX_AUTH_TEST_PASSWORD", "from-env");
        let auth = BasicAuth::from_keys(keys(&[
            (USER, "u"),
            (PASSWORD, "${env:STREAMX_AUTH_TEST_PASSWORD}"),
        ]))
        .unwrap()
        .unwrap();
        assert!(auth.allows(Some(&basic("u:from-env"))));
    }
}
