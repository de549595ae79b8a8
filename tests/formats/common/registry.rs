//! A minimal stand-in for the Confluent Schema Registry: no real registry can be installed here,
//! so tests run this tiny HTTP/1.1 server on 127.0.0.1 (std `TcpListener`, one request per
//! connection). It serves `GET /schemas/ids/{id}` like Confluent (`{"schema": "..."}`, 404 with
//! `error_code` 40403), optionally checks basic auth, can answer 503 to the first N requests or
//! never answer (to test timeouts), and counts requests. Producers can register schemas as with
//! Confluent (`POST /subjects/{subject}/versions`, answered `{"id": n}`, the same id for a schema
//! the subject already has), and `GET /subjects/{subject}/versions/{version}` serves references.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct State {
    schemas: Mutex<HashMap<u32, serde_json::Value>>,
    /// Fixed `GET /subjects/{subject}/versions/{version}` answers, by decoded path
    /// ([`TestRegistry::add_subject`]).
    subject_answers: Mutex<HashMap<String, serde_json::Value>>,
    /// Subject -> schema ids of its versions 1, 2, ... (registered with POST).
    subjects: Mutex<HashMap<String, Vec<u32>>>,
    auth: Mutex<Option<String>>,
    fail_first: AtomicUsize,
    hang: AtomicBool,
    requests: AtomicUsize,
    stop: AtomicBool,
    held: Mutex<Vec<TcpStream>>,
}

/// The running server; stopped when dropped.
pub struct TestRegistry {
    pub url: String,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl TestRegistry {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(&s, stream);
                }
            }
        });
        TestRegistry {
            url,
            state,
            thread: Some(thread),
        }
    }

    /// Registers an Avro schema (answered without `schemaType`, like Confluent for Avro).
    pub fn add(&self, id: u32, avro_schema: &str) -> &Self {
        let body = serde_json::json!({ "schema": avro_schema });
        self.state.schemas.lock().unwrap().insert(id, body);
        self
    }

    /// Registers a raw answer body.
    pub fn add_raw(&self, id: u32, body: serde_json::Value) -> &Self {
        self.state.schemas.lock().unwrap().insert(id, body);
        self
    }

    /// Registers version `version` of `subject` (schema references are fetched so).
    pub fn add_subject(&self, subject: &str, version: i64, body: serde_json::Value) -> &Self {
        let path = format!("/subjects/{subject}/versions/{version}");
        self.state
            .subject_answers
            .lock()
            .unwrap()
            .insert(path, body);
        self
    }

    /// Requires `Authorization: Basic base64(user:password)`.
    pub fn require_basic_auth(&self, user: &str, password: &str) -> &Self {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        *self.state.auth.lock().unwrap() = Some(format!("Basic {token}"));
        self
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn require_bearer(&self, token: &str) -> &Self {
        *self.state.auth.lock().unwrap() = Some(format!("Bearer {token}"));
        self
    }

    /// The `host:port` the server listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Answers 503 to the next `n` requests.
    pub fn fail_next(&self, n: usize) -> &Self {
        self.state.fail_first.store(n, Ordering::SeqCst);
        self
    }

    /// Accepts connections but never answers.
    pub fn hang(&self) -> &Self {
        self.state.hang.store(true, Ordering::SeqCst);
        self
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.held.lock().unwrap().clear();
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(state: &State, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut auth = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    if state.stop.load(Ordering::SeqCst) {
        return;
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.hang.load(Ordering::SeqCst) {
        state.held.lock().unwrap().push(stream);
        return;
    }
    let (status, body) = answer(state, &request_line, auth.as_deref(), &body);
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

fn answer(
    state: &State,
    request_line: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, serde_json::Value) {
    use serde_json::json;
    if state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (503, json!({"error_code": 50300, "message": "try later"}));
    }
    if let Some(expected) = state.auth.lock().unwrap().as_deref() {
        if auth != Some(expected) {
            return (401, json!({"error_code": 401, "message": "Unauthorized"}));
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let decoded = percent_decode(path);
    if let Some(answer) = state.subject_answers.lock().unwrap().get(&decoded).cloned() {
        return (200, answer);
    }
    if let Some(rest) = decoded.strip_prefix("/subjects/") {
        return subject_request(state, request_line.starts_with("POST"), rest, body);
    }
    let id = path
        .strip_prefix("/schemas/ids/")
        .and_then(|id| id.parse::<u32>().ok());
    match id.and_then(|id| state.schemas.lock().unwrap().get(&id).cloned()) {
        Some(body) => (200, body),
        None => (
            404,
            json!({"error_code": 40403, "message": format!("Schema {} not found", id.unwrap_or(0))}),
        ),
    }
}

/// `%XX` escapes decoded (the client encodes subjects such as `a/b.proto`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /subjects/{s}/versions` (register) and `GET /subjects/{s}/versions/{v}`.
fn subject_request(state: &State, post: bool, rest: &str, body: &[u8]) -> (u16, serde_json::Value) {
    use serde_json::json;
    let not_found = || {
        (
            404,
            json!({"error_code": 40401, "message": "Subject not found"}),
        )
    };
    let Some((subject, version)) = rest.split_once("/versions") else {
        return not_found();
    };
    let mut schemas = state.schemas.lock().unwrap();
    let mut subjects = state.subjects.lock().unwrap();
    if post {
        let Ok(mut request) = serde_json::from_slice::<serde_json::Value>(body) else {
            return (422, json!({"error_code": 42201, "message": "invalid body"}));
        };
        if let Some(obj) = request.as_object_mut() {
            obj.retain(|k, _| matches!(k.as_str(), "schema" | "schemaType" | "references"));
        }
        let versions = subjects.entry(subject.to_string()).or_default();
        if let Some(id) = versions.iter().find(|id| schemas.get(id) == Some(&request)) {
            return (200, json!({ "id": id }));
        }
        let id = schemas.keys().max().map_or(1, |m| m + 1);
        schemas.insert(id, request);
        versions.push(id);
        return (200, json!({ "id": id }));
    }
    let versions = subjects.get(subject).cloned().unwrap_or_default();
    let index = match version.trim_start_matches('/') {
        "latest" => versions.len(),
        v => v.parse::<usize>().unwrap_or(0),
    };
    match index.checked_sub(1).and_then(|i| versions.get(i)) {
        Some(id) => {
            let mut answer = schemas[id].clone();
            answer["id"] = json!(id);
            answer["subject"] = json!(subject);
            answer["version"] = json!(index);
            (200, answer)
        }
        None => not_found(),
    }
}
