//! The Kafka Connect REST API over [`Worker`] (axum, HTTP/1): paths, status codes, shapes and
//! `{"error_code", "message"}` errors as Kafka Connect's (shared/notes/connect-rest.md). Every
//! path also answers with a trailing slash. Handlers that write to the config topic run on the
//! blocking pool (the write waits for its read-back).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::service::{config_from_json, info_json, ApiError, Worker};
use super::store::TargetState;
use crate::config::keys;

/// The Kafka version reported by `GET /`: tools (kcctl) switch features by it.
pub const KAFKA_VERSION: &str = "3.9.0";

type W = State<Arc<Worker>>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status >= 500 {
            tracing::error!(error = %self, "request failed");
        }
        error(status, &self.to_string())
    }
}

/// A Connect-style error answer: `{"error_code": status, "message": ...}`.
pub fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error_code": status, "message": message});
    (code, Json(body)).into_response()
}

/// The router of every endpoint.
pub fn router(worker: Arc<Worker>) -> Router {
    let routes: Vec<(&str, MethodRouter<Arc<Worker>>)> = vec![
        ("/", get(server_info)),
        ("/health", get(health)),
        ("/metrics", get(metrics)),
        ("/connectors", get(list).post(create)),
        ("/connectors/{name}", get(info).delete(delete)),
        (
            "/connectors/{name}/config",
            get(config).put(put_config).patch(patch_config),
        ),
        ("/connectors/{name}/status", get(status)),
        ("/connectors/{name}/tasks", get(tasks)),
        ("/connectors/{name}/tasks/{task}/status", get(task_status)),
        (
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        ),
        ("/connectors/{name}/pause", put(pause)),
        ("/connectors/{name}/resume", put(resume)),
        ("/connectors/{name}/stop", put(stop)),
        ("/connectors/{name}/restart", post(restart)),
        ("/connectors/{name}/topics", get(topics)),
        ("/connectors/{name}/offsets", get(offsets)),
        ("/connector-plugins", get(plugins)),
        ("/connector-plugins/{plugin}/config/validate", put(validate)),
    ];
    let mut router = Router::new();
    for (path, method) in routes {
        if path != "/" {
            router = router.route(&format!("{path}/"), method.clone());
        }
        router = router.route(path, method);
    }
    let auth = worker.config.basic_auth.clone();
    let router = router
        .fallback(|| async { error(404, "HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async { error(405, "HTTP 405 Method Not Allowed") })
        .with_state(worker);
    match auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            super::auth::require,
        )),
        None => router,
    }
}

/// Runs a blocking operation (a config topic write) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::BadRequest(format!("request aborted: {e}")))?
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

/// `key=value` pairs of a query string (repeated keys kept).
fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn server_info(State(w): W) -> Json<Value> {
    Json(json!({
        "version": KAFKA_VERSION,
        "commit": format!("streamx-{}", env!("CARGO_PKG_VERSION")),
        "kafka_cluster_id": w.cluster_id,
    }))
}

async fn health() -> Json<Value> {
    Json(
        json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}),
    )
}

async fn metrics(State(w): W) -> Response {
    crate::metrics::http::response(&w.jobs.metrics())
}

async fn list(State(w): W, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let expand: Vec<String> = query_pairs(&query)
        .into_iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v)
        .collect();
    let names = w.names();
    if expand.is_empty() {
        return Ok(Json(json!(names)));
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        if expand.iter().any(|e| e == "status") {
            entry.insert("status".into(), w.status(&name)?);
        }
        if expand.iter().any(|e| e == "info") {
            entry.insert("info".into(), w.info(&name)?);
        }
        out.insert(name, Value::Object(entry));
    }
    Ok(Json(Value::Object(out)))
}

async fn create(State(w): W, body: Bytes) -> Result<Response, ApiError> {
    let body = body_json(&body)?;
    let name = body["name"]
        .as_str()
        .ok_or_else(|| ApiError::BadRequest("the request needs a \"name\"".into()))?
        .to_string();
    let config = config_from_json(body.get("config").unwrap_or(&json!({})))?;
    let (w2, n2) = (w.clone(), name.clone());
    blocking(move || w2.put(&n2, config, true)).await?;
    let info = w.info(&name)?;
    let location = connector_path(&name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    )
        .into_response())
}

/// `/connectors/<name>` with the name percent-encoded as one path segment (UTF-8), as Kafka
/// Connect's `Location` header: a header value is ASCII, and `/`, `?`, `%` must not change the
/// path. The routes decode it back.
fn connector_path(name: &str) -> String {
    let mut url = url::Url::parse("http://worker/connectors").expect("a valid URL");
    url.path_segments_mut()
        .expect("an http URL has path segments")
        .push(name);
    url.path().to_string()
}

async fn info(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(w.info(&name)?))
}

async fn config(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(w.config(&name)?)))
}

async fn put_config(
    State(w): W,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = config_from_json(&body_json(&body)?)?;
    let (w2, n2) = (w.clone(), name.clone());
    let created = blocking(move || w2.put(&n2, config, false)).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(w.info(&name)?)).into_response())
}

async fn patch_config(
    State(w): W,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let patch = body_json(&body)?;
    let w2 = w.clone();
    let config: BTreeMap<String, String> = blocking(move || w2.patch(&name, &patch)).await?;
    let name = config.get("name").cloned().unwrap_or_default();
    Ok(Json(info_json(&name, &config)))
}

async fn status(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(w.status(&name)?))
}

async fn tasks(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = w.info(&name)?;
    let config = info["config"].clone();
    let tasks: Vec<Value> = info["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|id| json!({"id": id, "config": config}))
        .collect();
    Ok(Json(json!(tasks)))
}

async fn task_status(
    State(w): W,
    Path((name, task)): Path<(String, usize)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(w.task_status(&name, task)?))
}

async fn restart_task(
    State(w): W,
    Path((name, task)): Path<(String, usize)>,
) -> Result<StatusCode, ApiError> {
    w.task_status(&name, task)?;
    // Task numbers are per status call (this worker's tasks first): a task restart restarts
    // the job's tasks on every worker.
    blocking(move || w.restart(&name, false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_target(w: Arc<Worker>, name: String, state: TargetState) -> Result<(), ApiError> {
    blocking(move || w.set_target(&name, state)).await
}

async fn pause(State(w): W, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    set_target(w, name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(w): W, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    set_target(w, name, TargetState::Running).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(w): W, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    set_target(w, name, TargetState::Stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(w): W,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(&query);
    let flag = |k: &str| {
        pairs
            .iter()
            .any(|(q, v)| q == k && v.eq_ignore_ascii_case("true"))
    };
    let (include_tasks, only_failed) = (flag("includeTasks"), flag("onlyFailed"));
    let (w2, n2) = (w.clone(), name.clone());
    blocking(move || w2.restart(&n2, only_failed)).await?;
    if include_tasks || only_failed {
        let mut status = w.status(&name)?;
        status["connector"]["state"] = json!("RESTARTING");
        return Ok((StatusCode::ACCEPTED, Json(status)).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete(State(w): W, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(move || w.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn topics(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(w.topics(&name).await?))
}

async fn offsets(State(w): W, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(w.offsets(&name).await?))
}

async fn plugins() -> Json<Value> {
    let version = env!("CARGO_PKG_VERSION");
    let list: Vec<Value> = keys::CONNECTOR_CLASSES
        .iter()
        .filter(|c| c.contains('.'))
        .map(|c| json!({"class": c, "type": "sink", "version": version}))
        .collect();
    Json(json!(list))
}

async fn validate(
    State(w): W,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let short = plugin.rsplit('.').next().unwrap_or(&plugin);
    if !keys::is_connector_class(&plugin) && !keys::is_connector_class(short) {
        return Err(ApiError::BadRequest(format!(
            "Failed to find any class that implements Connector and which name matches {plugin}"
        )));
    }
    let config = config_from_json(&body_json(&body)?)?;
    let class = config
        .get("connector.class")
        .cloned()
        .unwrap_or_else(|| plugin.clone());
    Ok(Json(w.validate_infos(&class, &config)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn locations_percent_encode_the_name() {
        assert_eq!(super::connector_path("clicks"), "/connectors/clicks");
        assert_eq!(
            super::connector_path("commandes-é-日本"),
            "/connectors/commandes-%C3%A9-%E6%97%A5%E6%9C%AC"
        );
        assert_eq!(super::connector_path("a b%c?"), "/connectors/a%20b%25c%3F");
    }
}
