//! [`RegistryClient`]: a small synchronous Confluent Schema Registry client (schemas by id).
//!
//! `GET {url}/schemas/ids/{id}` answers `{"schema": "<schema text>", "schemaType": "AVRO",
//! "references": [...]}` (`schemaType` is absent for Avro on older registries). Answers are cached
//! by id for the life of the client (schema ids are immutable); clones share the cache, so one
//! client can serve the decoders of every partition.
//!
//! Failures: connection errors, timeouts, HTTP 408/429 and 5xx are retried on the next URL of the
//! comma-separated list, then, after every URL failed, again after an exponential backoff, up to
//! [`RegistryConfig::attempts`] rounds ([`RegistryError::Unavailable`]). HTTP 404 is final
//! ([`RegistryError::NotFound`]), as are other 4xx answers such as 401/403
//! ([`RegistryError::Refused`]). Errors name the URL (user info stripped) and the schema id; the
//! password is never part of any message or `Debug` output.
//!
//! Basic auth follows the Confluent client keys: `basic.auth.credentials.source=USER_INFO` with
//! `basic.auth.user.info=user:password`, or `URL` with the credentials in the URL
//! (`https://user:password@host:8081`); `bearer.auth.credentials.source=STATIC_TOKEN` sends
//! `bearer.auth.token` instead. Over https the trusted CAs and a client certificate come from
//! `schema.registry.ssl.*` ([`crate::config::formats::RegistrySettings`], read as PEM by the
//! config); without a truststore the public web roots are trusted. The certificate must name the
//! URL's host. A TLS failure (unknown CA, wrong host, refused client certificate) is final
//! ([`RegistryError::Tls`]), not retried: it names the URL and the cause.
//!
//! Schema references (JSON Schema `$ref` to other subjects) are fetched with
//! `GET {url}/subjects/{subject}/versions/{version}` ([`SchemaSource::referenced`], not cached:
//! decoders keep what they resolved).
//!
//! [`SchemaSource`] abstracts "schema text by id" so the Avro decoder can also be fed from memory
//! ([`StaticSchemas`]: tests, benchmarks, schemas pinned in config).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

use crate::Origin;

/// Per-request timeout (connect + send + receive) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rounds over all URLs by default.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// Largest answer body accepted.
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Longest part of a server's error body quoted in an error.
const MAX_QUOTED: usize = 300;

/// Errors of the registry client. Messages name the URL and schema id, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid schema registry config: {0}")]
    Config(String),
    #[error("schema id {id} not found in the schema registry at {url}: {message}")]
    NotFound {
        url: String,
        id: u32,
        message: String,
    },
    #[error(
        "schema registry at {url} refused the request for schema id {id}: HTTP {status}: {message}"
    )]
    Refused {
        url: String,
        id: u32,
        status: u16,
        message: String,
    },
    #[error("TLS connection to the schema registry at {url} failed: {message}")]
    Tls { url: String, message: String },
    #[error("schema registry unavailable for schema id {id} after {attempts} round(s) over {urls} URL(s); last error: {last}")]
    Unavailable {
        id: u32,
        attempts: u32,
        urls: usize,
        last: String,
    },
    #[error("schema registry at {url} sent an invalid answer for schema id {id}: {message}")]
    InvalidResponse {
        url: String,
        id: u32,
        message: String,
    },
}

impl RegistryError {
    /// Who has to act: bad config, credentials and unknown ids are the user's; outages external.
    pub fn origin(&self) -> Origin {
        match self {
            RegistryError::Config(_)
            | RegistryError::NotFound { .. }
            | RegistryError::Refused { .. }
            | RegistryError::Tls { .. } => Origin::User,
            RegistryError::Unavailable { .. } | RegistryError::InvalidResponse { .. } => {
                Origin::External
            }
        }
    }
}

/// One schema as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    pub id: u32,
    /// The schema text (Avro: JSON).
    pub schema: String,
    /// `schemaType` as answered, `AVRO` when absent.
    pub schema_type: String,
    /// Schema references (other subjects' schemas this one builds on), as registered.
    pub references: Vec<SchemaReference>,
}

/// One entry of a schema's `references`: the schema registered as `subject` version `version`,
/// which the referencing schema names `name` (JSON Schema: the `$ref` target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i64,
}

/// Where schemas come from, by id.
pub trait SchemaSource: Send + Sync {
    fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError>;

    /// The schema a reference of schema `of` points to (`GET /subjects/{subject}/versions/{v}`).
    /// Sources without subjects answer [`RegistryError::NotFound`].
    fn referenced(
        &self,
        of: u32,
        reference: &SchemaReference,
    ) -> Result<Arc<RegisteredSchema>, RegistryError> {
        Err(RegistryError::NotFound {
            url: "(static schemas)".to_string(),
            id: of,
            message: format!(
                "reference '{}' (subject '{}' version {}) cannot be resolved here",
                reference.name, reference.subject, reference.version
            ),
        })
    }
}

/// Schemas held in memory, for tests, benchmarks and schemas pinned in config.
#[derive(Debug, Default, Clone)]
pub struct StaticSchemas {
    schemas: HashMap<u32, Arc<RegisteredSchema>>,
}

impl StaticSchemas {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an Avro schema under `id`.
    pub fn with(mut self, id: u32, avro_schema_json: &str) -> Self {
        let schema = RegisteredSchema {
            id,
            schema: avro_schema_json.to_string(),
            schema_type: "AVRO".to_string(),
            references: Vec::new(),
        };
        self.schemas.insert(id, Arc::new(schema));
        self
    }

    /// Adds a schema of type `schema_type` (`JSON`, `AVRO`, ...) under `id`.
    pub fn with_typed(mut self, id: u32, schema_type: &str, schema: &str) -> Self {
        let schema = RegisteredSchema {
            id,
            schema: schema.to_string(),
            schema_type: schema_type.to_string(),
            references: Vec::new(),
        };
        self.schemas.insert(id, Arc::new(schema));
        self
    }
}

impl SchemaSource for StaticSchemas {
    fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        self.schemas
            .get(&id)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound {
                url: "(static schemas)".to_string(),
                id,
                message: "no such id".to_string(),
            })
    }
}

/// Basic auth credentials; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    /// Parses `user:password` (the password may contain ':').
    pub fn from_user_info(user_info: &str) -> Result<Self, RegistryError> {
        match user_info.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.to_string(),
                password: password.to_string(),
            }),
            _ => Err(RegistryError::Config(
                "basic.auth.user.info must be 'user:password'".to_string(),
            )),
        }
    }

    fn header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A bearer token; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([hidden])")
    }
}

/// The ureq TLS settings of `tls`: only its CAs trusted when it has some, its client
/// certificate presented when it has one.
fn tls_config(
    tls: &crate::config::formats::PemMaterial,
) -> Result<ureq::tls::TlsConfig, RegistryError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let certs = |pem: &str, what: &str| -> Result<Vec<Certificate<'static>>, RegistryError> {
        let mut out = Vec::new();
        for item in ureq::tls::parse_pem(pem.as_bytes()) {
            if let PemItem::Certificate(c) =
                item.map_err(|e| RegistryError::Config(format!("{what}: {e}")))?
            {
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err(RegistryError::Config(format!(
                "{what} holds no certificate"
            )));
        }
        Ok(out)
    };
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &tls.ca_pem {
        let roots = certs(ca, "schema.registry.ssl.truststore")?;
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    if let Some((chain, key)) = &tls.client {
        let chain = certs(chain, "schema.registry.ssl.keystore")?;
        let key = PrivateKey::from_pem(key.as_bytes()).map_err(|e| {
            RegistryError::Config(format!("schema.registry.ssl.keystore private key: {e}"))
        })?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(builder.build())
}

/// Client settings (the config keys are wired by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URLs without user info or trailing '/', tried in order.
    pub urls: Vec<String>,
    pub credentials: Option<Credentials>,
    /// `Authorization: Bearer` token (used when no basic credentials are set).
    pub bearer: Option<Token>,
    /// Trusted CAs and client certificate, PEM (from `schema.registry.ssl.*`).
    pub tls: crate::config::formats::PemMaterial,
    /// Timeout of one request (connect, send, receive).
    pub timeout: Duration,
    /// Rounds over all URLs before giving up (at least 1).
    pub attempts: u32,
    /// Pause after the first failed round; doubles after each round up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RegistryConfig {
    /// Settings for `schema.registry.url` (one URL or several, comma-separated).
    pub fn new(urls: &str) -> Result<Self, RegistryError> {
        let mut parsed = Vec::new();
        for raw in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (url, _) = split_user_info(raw)?;
            parsed.push(url);
        }
        if parsed.is_empty() {
            return Err(RegistryError::Config(
                "schema.registry.url has no URL".to_string(),
            ));
        }
        Ok(RegistryConfig {
            urls: parsed,
            credentials: None,
            bearer: None,
            tls: Default::default(),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        })
    }

    /// The client settings of the `value.converter.*` registry keys.
    pub fn from_settings(
        s: &crate::config::formats::RegistrySettings,
    ) -> Result<Self, RegistryError> {
        let mut rc = RegistryConfig::new(&s.urls)?;
        if let Some(source) = &s.credentials_source {
            rc = rc.with_basic_auth(source, s.user_info.as_deref(), &s.urls)?;
        } else if let Some(info) = &s.user_info {
            rc = rc.with_basic_auth("USER_INFO", Some(info), &s.urls)?;
        }
        rc.bearer = s.bearer_token.clone().map(Token);
        rc.tls = s.tls.clone();
        // Checked now so that a bad PEM fails at config time.
        tls_config(&rc.tls)?;
        Ok(rc)
    }

    /// Applies `basic.auth.credentials.source` (`USER_INFO` or `URL`) with
    /// `basic.auth.user.info` (used by `USER_INFO`) and the raw `schema.registry.url` (`URL`).
    pub fn with_basic_auth(
        mut self,
        credentials_source: &str,
        user_info: Option<&str>,
        raw_urls: &str,
    ) -> Result<Self, RegistryError> {
        let credentials = match credentials_source.trim().to_ascii_uppercase().as_str() {
            "USER_INFO" => {
                let info = user_info.ok_or_else(|| {
                    RegistryError::Config(
                        "basic.auth.credentials.source=USER_INFO needs basic.auth.user.info"
                            .to_string(),
                    )
                })?;
                Credentials::from_user_info(info)?
            }
            "URL" => {
                let mut found = None;
                for raw in raw_urls.split(',').map(str::trim) {
                    if let (_, Some(info)) = split_user_info(raw)? {
                        found = Some(Credentials::from_user_info(&info)?);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    RegistryError::Config(
                        "basic.auth.credentials.source=URL but no URL has user:password@"
                            .to_string(),
                    )
                })?
            }
            other => {
                return Err(RegistryError::Config(format!(
                    "basic.auth.credentials.source '{other}' is not supported (USER_INFO or URL)"
                )))
            }
        };
        self.credentials = Some(credentials);
        Ok(self)
    }
}

/// Splits `scheme://user:pass@host/...` into the URL without user info and the user info.
fn split_user_info(raw: &str) -> Result<(String, Option<String>), RegistryError> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(RegistryError::Config(format!(
            "schema registry URL '{}' has no scheme (http:// or https://)",
            redact(raw)
        )));
    };
    if scheme != "http" && scheme != "https" {
        return Err(RegistryError::Config(format!(
            "schema registry URL '{}' must be http or https",
            redact(raw)
        )));
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (info, host) = match authority.rsplit_once('@') {
        Some((info, host)) => (Some(info.to_string()), host),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(RegistryError::Config(format!(
            "schema registry URL '{}' has no host",
            redact(raw)
        )));
    }
    let url = format!("{scheme}://{host}{}", path.trim_end_matches('/'));
    Ok((url, info))
}

/// A URL as it may be shown: user info replaced.
fn redact(raw: &str) -> String {
    match raw.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://[hidden]@{host}{}", &rest[end..]),
                None => raw.to_string(),
            }
        }
        None => match raw.rsplit_once('@') {
            Some((_, host)) => format!("[hidden]@{host}"),
            None => raw.to_string(),
        },
    }
}

/// One failed request: retry elsewhere/later, or give up now.
enum Attempt {
    Retry(String),
    Final(RegistryError),
}

/// The Confluent Schema Registry client. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct RegistryClient {
    config: Arc<RegistryConfig>,
    agent: ureq::Agent,
    auth_header: Option<String>,
    cache: Arc<Mutex<HashMap<u32, Arc<RegisteredSchema>>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish()
    }
}

impl RegistryClient {
    /// A client of `config`. Panics on TLS material ureq cannot use, which
    /// [`RegistryConfig::from_settings`] refuses (use [`RegistryClient::try_new`] otherwise).
    pub fn new(config: RegistryConfig) -> Self {
        Self::try_new(config).expect("TLS material is checked by RegistryConfig::from_settings")
    }

    /// A client of `config`; fails only on TLS material that ureq cannot use (checked by
    /// [`RegistryConfig::from_settings`] already).
    pub fn try_new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls_config(&config.tls)?)
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .user_agent("streamx-schema-registry-client")
            .build()
            .new_agent();
        let auth_header = match (&config.credentials, &config.bearer) {
            (Some(c), _) => Some(c.header()),
            (None, Some(Token(t))) => Some(format!("Bearer {t}")),
            (None, None) => None,
        };
        Ok(RegistryClient {
            config: Arc::new(config),
            agent,
            auth_header,
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Number of schemas cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Fetches schema `id`, trying every URL per round, with backoff between rounds.
    fn fetch(&self, id: u32) -> Result<RegisteredSchema, RegistryError> {
        self.fetch_path(&format!("schemas/ids/{id}"), id)
    }

    /// Fetches `{url}/{path}` (a schema answer); errors name schema `id` (the one asked for, or
    /// the one whose reference is resolved).
    fn fetch_path(&self, path: &str, id: u32) -> Result<RegisteredSchema, RegistryError> {
        self.retrying(
            id,
            |url| url.to_string(),
            |url| self.fetch_once(url, path, id),
        )
    }

    /// `once` on every URL in turn until one answers, `attempts` rounds with a doubling backoff
    /// between them; a final error ends it at once. `label` names a URL in the last error kept.
    fn retrying<T>(
        &self,
        id: u32,
        label: impl Fn(&str) -> String,
        once: impl Fn(&str) -> Result<T, Attempt>,
    ) -> Result<T, RegistryError> {
        let attempts = self.config.attempts.max(1);
        let mut backoff = self.config.initial_backoff;
        let mut last = String::new();
        for round in 1..=attempts {
            for url in &self.config.urls {
                match once(url) {
                    Ok(answer) => return Ok(answer),
                    Err(Attempt::Final(e)) => return Err(e),
                    Err(Attempt::Retry(message)) => last = format!("{}: {message}", label(url)),
                }
            }
            if round < attempts {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
        }
        Err(RegistryError::Unavailable {
            id,
            attempts,
            urls: self.config.urls.len(),
            last,
        })
    }

    fn fetch_once(&self, url: &str, path: &str, id: u32) -> Result<RegisteredSchema, Attempt> {
        let body = self.get_once(url, &format!("/{path}"), id, url)?;
        parse_schema(&body, id).map_err(|message| {
            Attempt::Final(RegistryError::InvalidResponse {
                url: url.to_string(),
                id,
                message,
            })
        })
    }

    /// One `GET {url}{path}`: the body of a `200` answer; `404` and other refusals are final,
    /// timeouts, `429` and `5xx` retried. Errors name `shown` and schema `id`.
    fn get_once(&self, url: &str, path: &str, id: u32, shown: &str) -> Result<String, Attempt> {
        let mut request = self.agent.get(format!("{url}{path}")).header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json",
        );
        if let Some(auth) = &self.auth_header {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| classify(url, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| Attempt::Retry(format!("reading the answer: {e}")))?;
        let url = shown.to_string();
        match status {
            200 => Ok(body),
            404 => Err(Attempt::Final(RegistryError::NotFound {
                url,
                id,
                message: error_message(&body),
            })),
            408 | 429 | 500..=599 => Err(Attempt::Retry(format!(
                "HTTP {status}: {}",
                error_message(&body)
            ))),
            _ => Err(Attempt::Final(RegistryError::Refused {
                url,
                id,
                status,
                message: error_message(&body),
            })),
        }
    }
}

impl SchemaSource for RegistryClient {
    fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(hit);
        }
        let schema = Arc::new(self.fetch(id)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    fn referenced(
        &self,
        of: u32,
        reference: &SchemaReference,
    ) -> Result<Arc<RegisteredSchema>, RegistryError> {
        let path = format!(
            "subjects/{}/versions/{}",
            url_encode(&reference.subject),
            reference.version
        );
        self.fetch_path(&path, of)
            .map(Arc::new)
            .map_err(|e| match e {
                RegistryError::NotFound { url, id, message } => RegistryError::NotFound {
                    url,
                    id,
                    message: format!(
                        "reference '{}' (subject '{}' version {}): {message}",
                        reference.name, reference.subject, reference.version
                    ),
                },
                other => other,
            })
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a subject in a URL path).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A failed call: TLS failures are final (retrying cannot fix a certificate), the rest retried.
/// rustls reports handshake failures as I/O errors of kind `InvalidData` on an https URL.
fn classify(url: &str, e: ureq::Error) -> Attempt {
    let tls = |message: String| {
        Attempt::Final(RegistryError::Tls {
            url: url.to_string(),
            message,
        })
    };
    match e {
        ureq::Error::Rustls(e) => tls(e.to_string()),
        ureq::Error::Tls(e) => tls(e.to_string()),
        ureq::Error::Pem(e) => tls(e.to_string()),
        ureq::Error::Io(io)
            if url.starts_with("https://") && io.kind() == std::io::ErrorKind::InvalidData =>
        {
            tls(io.to_string())
        }
        other => Attempt::Retry(other.to_string()),
    }
}

/// Parses a `GET /schemas/ids/{id}` answer.
fn parse_schema(body: &str, id: u32) -> Result<RegisteredSchema, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let schema = value
        .get("schema")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "no string field 'schema'".to_string())?;
    let schema_type = match value.get("schemaType") {
        None | Some(serde_json::Value::Null) => "AVRO".to_string(),
        Some(serde_json::Value::String(t)) => t.to_ascii_uppercase(),
        Some(other) => return Err(format!("'schemaType' is not a string: {other}")),
    };
    let references = match value.get("references") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(list)) => {
            list.iter().map(parse_reference).collect::<Result<_, _>>()?
        }
        Some(other) => return Err(format!("'references' is not an array: {other}")),
    };
    // A subject-version answer carries the schema's own id.
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or(id);
    Ok(RegisteredSchema {
        id,
        schema: schema.to_string(),
        schema_type,
        references,
    })
}

/// One `references` entry: `{"name", "subject", "version"}`.
fn parse_reference(value: &serde_json::Value) -> Result<SchemaReference, String> {
    let text = |k: &str| {
        value
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("a reference has no string '{k}': {value}"))
    };
    Ok(SchemaReference {
        name: text("name")?,
        subject: text("subject")?,
        version: value
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| format!("a reference has no integer 'version': {value}"))?,
    })
}

/// The `message` of a Confluent error body, else the body itself (shortened).
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string());
    let mut short: String = message.chars().take(MAX_QUOTED).collect();
    if short.len() < message.len() {
        short.push('…');
    }
    if short.is_empty() {
        "(empty body)".to_string()
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_and_user_info() {
        let c = RegistryConfig::new(" http://a:8081/ ,https://u:p%40ss@b:8082/sr").unwrap();
        assert_eq!(c.urls, vec!["http://a:8081", "https://b:8082/sr"]);
        let raw = "http://a:8081,https://u:secret@b:8082";
        let c = RegistryConfig::new(raw)
            .unwrap()
            .with_basic_auth("URL", None, raw)
            .unwrap();
        assert_eq!(c.credentials.as_ref().unwrap().user, "u");
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(RegistryConfig::new("").is_err());
        assert!(RegistryConfig::new("ftp://x").is_err());
        let err = RegistryConfig::new("u:secret@host")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn user_info_credentials() {
        let c = RegistryConfig::new("http://a")
            .unwrap()
            .with_basic_auth("user_info", Some("fred:pa:ss"), "http://a")
            .unwrap();
        let creds = c.credentials.unwrap();
        assert_eq!(creds.user, "fred");
        assert_eq!(creds.header(), "Basic ZnJlZDpwYTpzcw==");
        assert!(!format!("{creds:?}").contains("pa:ss"));
        let missing =
            RegistryConfig::new("http://a")
                .unwrap()
                .with_basic_auth("USER_INFO", None, "http://a");
        assert!(matches!(missing, Err(RegistryError::Config(_))));
        let bad = RegistryConfig::new("http://a").unwrap().with_basic_auth(
            "SASL_INHERIT",
            None,
            "http://a",
        );
        assert!(bad.unwrap_err().to_string().contains("SASL_INHERIT"));
        assert!(Credentials::from_user_info("nocolon").is_err());
    }

    #[test]
    fn answers() {
        let s = parse_schema(r#"{"schema":"\"string\""}"#, 3).unwrap();
        assert_eq!(
            (s.schema.as_str(), s.schema_type.as_str()),
            ("\"string\"", "AVRO")
        );
        let s = parse_schema(
            r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":2}]}"#,
            4,
        )
        .unwrap();
        assert_eq!(s.schema_type.as_str(), "PROTOBUF");
        assert_eq!(
            s.references,
            vec![SchemaReference {
                name: "a.proto".into(),
                subject: "a".into(),
                version: 2
            }]
        );
        assert!(parse_schema(r#"{"schema":"{}","references":[{}]}"#, 1).is_err());
        assert!(parse_schema("{}", 1).is_err());
        assert!(parse_schema("nope", 1).is_err());
        assert_eq!(
            error_message(r#"{"error_code":40403,"message":"Schema 9 not found"}"#),
            "Schema 9 not found"
        );
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(
            error_message(&"x".repeat(1000)).chars().count(),
            MAX_QUOTED + 1
        );
    }
}
