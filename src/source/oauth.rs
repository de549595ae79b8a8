//! SASL/OAUTHBEARER tokens that StreamX makes itself, for librdkafka's token refresh: Amazon
//! MSK IAM tokens, and the unsecured JWTs of librdkafka's development mode.
//!
//! ```text
//!  librdkafka (token expired, or 80% of its lifetime gone)
//!     | OAUTHBEARER_TOKEN_REFRESH event with `sasl.oauthbearer.config`
//!     v
//!  ClientContext::generate_oauth_token  (every Kafka client context of StreamX: [`AuthContext`],
//!     |                                    the ingest consumer's, the DLQ producer's)
//!     v
//!  token_for(config) --"aws_msk_iam region=R"--> MSK IAM: AWS credentials (object_store's chain:
//!                   |                            env, web identity, ECS, EC2 metadata), a SigV4
//!                   |                            presigned `kafka-cluster:Connect` URL, base64url
//!                   +--otherwise---------------> an unsecured JWT (`principal=...`), as librdkafka
//! ```
//!
//! The MSK token is what aws-msk-iam-sasl-signer (Python, Go, JS) makes, byte for byte up to the
//! `User-Agent` parameter (a test checks this against the Python signer's output): MSK brokers
//! with IAM access control accept it on their SASL_SSL IAM listener with `sasl.mechanism=
//! OAUTHBEARER`. The config module turns the Java client's forms (`sasl.mechanism=AWS_MSK_IAM`,
//! the `IAMLoginModule`, the IAM callback handler classes) into that. librdkafka's own OIDC
//! method (`sasl.oauthbearer.method=oidc`) never comes here: librdkafka handles it internally.
//!
//! A failure (no credentials, a metadata endpoint that does not answer) is reported to
//! librdkafka, which logs it as an authentication error: ingest stops naming it (fail fast).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

use crate::config::msk_iam::OAUTHBEARER_CONFIG as MSK_IAM_MARKER;

/// How long an MSK token is valid (the signers' default).
const MSK_TOKEN_SECONDS: u64 = 900;

/// How long fetching AWS credentials may take before the refresh fails.
const CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("Amazon MSK IAM: cannot get AWS credentials (from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, a web identity token, the ECS or EC2 metadata endpoint): {0}")]
    Credentials(String),
    #[error("Amazon MSK IAM: no region in sasl.oauthbearer.config '{0}'")]
    NoRegion(String),
    #[error("the unsecured OAUTHBEARER token needs principal=<name> in sasl.oauthbearer.config")]
    NoPrincipal,
}

/// The token for a client whose `sasl.oauthbearer.config` is `config`.
pub fn token_for(config: Option<&str>) -> Result<OAuthToken, OAuthError> {
    let config = config.unwrap_or_default();
    let mut words = config.split_whitespace();
    if words.next() == Some(MSK_IAM_MARKER) {
        let region = words
            .find_map(|w| w.strip_prefix("region="))
            .ok_or_else(|| OAuthError::NoRegion(config.to_string()))?;
        let credentials = aws_credentials(region)?;
        return Ok(msk_iam_token(&credentials, region, SystemTime::now()));
    }
    unsecured_jwt(config, SystemTime::now())
}

/// The AWS credentials for `region`, from object_store's credential chain (the one the S3
/// store uses when its keys are not in the config), cached and refreshed by it.
fn aws_credentials(
    region: &str,
) -> Result<std::sync::Arc<object_store::aws::AwsCredential>, OAuthError> {
    static STORE: OnceLock<Result<object_store::aws::AmazonS3, String>> = OnceLock::new();
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let store = STORE.get_or_init(|| {
        object_store::aws::AmazonS3Builder::from_env()
            .with_region(region)
            .with_bucket_name("streamx-msk-iam")
            .build()
            .map_err(|e| e.to_string())
    });
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    let (store, runtime) = match (store, runtime) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => return Err(OAuthError::Credentials(e.clone())),
    };
    // On a thread of its own: the refresh may be served on a thread inside another runtime.
    let fetch = async {
        tokio::time::timeout(CREDENTIAL_TIMEOUT, store.credentials().get_credential()).await
    };
    let result = std::thread::scope(|s| s.spawn(|| runtime.block_on(fetch)).join());
    match result {
        Ok(Ok(Ok(credential))) => Ok(credential),
        Ok(Ok(Err(e))) => Err(OAuthError::Credentials(e.to_string())),
        Ok(Err(_)) => Err(OAuthError::Credentials(format!(
            "no answer within {CREDENTIAL_TIMEOUT:?}"
        ))),
        Err(_) => Err(OAuthError::Credentials(
            "the credential fetch panicked".into(),
        )),
    }
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4's rule).
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// The MSK IAM token at `now`: a SigV4 query-presigned `GET https://kafka.<region>.amazonaws.com/
/// ?Action=kafka-cluster:Connect` (service `kafka-cluster`, 900 s), base64url without padding.
pub fn msk_iam_token(
    credentials: &object_store::aws::AwsCredential,
    region: &str,
    now: SystemTime,
) -> OAuthToken {
    let time = chrono::DateTime::<chrono::Utc>::from(now);
    let amz_date = time.format("%Y%m%dT%H%M%SZ").to_string();
    let day = time.format("%Y%m%d").to_string();
    let host = format!("kafka.{region}.amazonaws.com");
    let scope = format!("{day}/{region}/kafka-cluster/aws4_request");
    // In the order the signers write them; the canonical query string sorts them.
    let mut params = vec![
        ("Action", "kafka-cluster:Connect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", credentials.key_id),
        ),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", MSK_TOKEN_SECONDS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &credentials.token {
        params.push(("X-Amz-Security-Token", token.clone()));
    }
    let query = |ps: &[(&str, String)]| -> String {
        ps.iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut sorted = params.clone();
    sorted.sort();
    let empty_payload = hex::encode(ring::digest::digest(&ring::digest::SHA256, b""));
    let canonical = format!(
        "GET\n/\n{}\nhost:{host}\n\nhost\n{empty_payload}",
        query(&sorted)
    );
    let hashed = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ));
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashed}");
    let hmac = |key: &[u8], data: &str| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        ring::hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
    };
    let mut key = format!("AWS4{}", credentials.secret_key).into_bytes();
    for part in [day.as_str(), region, "kafka-cluster", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &to_sign));
    let url = format!(
        "https://{host}/?{}&X-Amz-Signature={signature}&User-Agent={}",
        query(&params),
        encode(&format!("streamx/{}", env!("CARGO_PKG_VERSION")))
    );
    let signed_at = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    OAuthToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        principal_name: "streamx-msk-iam".into(),
        lifetime_ms: ((signed_at + MSK_TOKEN_SECONDS) * 1000) as i64,
    }
}

/// librdkafka's unsecured JWT (`enable.sasl.oauthbearer.unsecure.jwt`, for development), made
/// as librdkafka makes it from `principal=<name> [scope=a,b] [lifeSeconds=N]
/// [principalClaimName=sub] [scopeClaimName=scope]`.
fn unsecured_jwt(config: &str, now: SystemTime) -> Result<OAuthToken, OAuthError> {
    let get = |name: &str| {
        config
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    };
    let principal = get("principal").ok_or(OAuthError::NoPrincipal)?;
    let life: u64 = get("lifeSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert(
        get("principalClaimName").unwrap_or("sub").into(),
        principal.into(),
    );
    claims.insert("iat".into(), now_s.into());
    claims.insert("exp".into(), (now_s + life).into());
    if let Some(scope) = get("scope") {
        let scopes: Vec<serde_json::Value> = scope.split(',').map(Into::into).collect();
        claims.insert(
            get("scopeClaimName").unwrap_or("scope").into(),
            scopes.into(),
        );
    }
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let payload = serde_json::Value::Object(claims).to_string();
    Ok(OAuthToken {
        token: format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(payload.as_bytes())),
        principal_name: principal.to_string(),
        lifetime_ms: ((now_s + life) * 1000) as i64,
    })
}

/// The context of StreamX's plain Kafka clients (worker topics, end-of-input checks): default
/// behaviour, plus the OAUTHBEARER tokens of [`token_for`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthContext;

impl ClientContext for AuthContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        Ok(token_for(config)?)
    }
}

impl ConsumerContext for AuthContext {}

impl ProducerContext for AuthContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(token: Option<&str>) -> object_store::aws::AwsCredential {
        object_store::aws::AwsCredential {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            token: token.map(str::to_string),
        }
    }

    fn decoded(token: &OAuthToken) -> String {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token.token)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// 2026-12-06T01:23:45Z.
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_520_225)
    }

    /// Made by aws-msk-iam-sasl-signer-python 1.0.2 (botocore 1.44.8) for these credentials,
    /// eu-west-1, its clock set to `at()`: `__construct_auth_token`, decoded, User-Agent cut.
    const SIGNER_URL: &str = "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261206%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261206T012345Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=d48de9cf016520f2580a229e60c55825d5bf48589eb471e302c7315fdf964d55";
    const SIGNER_URL_WITH_SESSION: &str = "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261206%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261206T012345Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2F%2F%2F%2F%2F%2F%2FwEaCXVzLWVhc3QtMSJHMEUCIQ%2Btoken%2Fwith%3Dchars&X-Amz-Signature=df296624ee297f67fa1f5f090eee7ea777efb83702904e8c36a135bfc51539b4";

    #[test]
    fn the_msk_token_is_the_signers_presigned_url() {
        let t = msk_iam_token(&credentials(None), "eu-west-1", at());
        let url = decoded(&t);
        let (signed, agent) = url.split_once("&User-Agent=").unwrap();
        assert_eq!(signed, SIGNER_URL);
        assert!(agent.starts_with("streamx%2F"), "{agent}");
        assert_eq!(t.lifetime_ms, (1_796_520_225 + 900) * 1000);
        assert!(!t.token.contains('=') && !t.token.contains('+') && !t.token.contains('/'));
    }

    #[test]
    fn a_session_token_is_signed_into_the_url() {
        let session = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with=chars";
        let t = msk_iam_token(&credentials(Some(session)), "eu-west-1", at());
        let url = decoded(&t);
        assert_eq!(
            url.split_once("&User-Agent=").unwrap().0,
            SIGNER_URL_WITH_SESSION
        );
    }

    #[test]
    fn an_msk_config_without_a_region_is_an_error() {
        let e = token_for(Some(MSK_IAM_MARKER)).err().unwrap();
        assert!(e.to_string().contains("no region"), "{e}");
    }

    #[test]
    fn the_unsecured_jwt_carries_principal_scope_and_lifetime() {
        let t = unsecured_jwt("principal=alice scope=a,b lifeSeconds=60", at()).unwrap();
        let parts: Vec<&str> = t.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], serde_json::json!(["a", "b"]));
        assert_eq!(claims["exp"], 1_796_520_225 + 60);
        assert_eq!(t.principal_name, "alice");
        assert!(unsecured_jwt("scope=a", at()).is_err());
    }
}
