//! `GET /metrics` over HTTP: the response both servers send (the worker's REST API and the
//! small server `streamx ingest` starts with `metrics.listen`), and that small server: one
//! thread, a current-thread tokio runtime, axum, stopped when the [`MetricsServer`] is dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{encode_prometheus, Metrics, PROMETHEUS_CONTENT_TYPE};

/// The `/metrics` answer for these jobs' counters.
pub fn response(jobs: &[(String, Arc<Metrics>)]) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        encode_prometheus(jobs),
    )
        .into_response()
}

/// A running metrics server; dropping it stops the server and joins its thread.
pub struct MetricsServer {
    /// Where it listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `GET /metrics` with `metrics` labelled `job="<job>"` on `addr` until dropped. The
/// address is bound before this returns, so a port in use is an error here.
pub fn serve(addr: SocketAddr, job: &str, metrics: Arc<Metrics>) -> std::io::Result<MetricsServer> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let jobs = vec![(job.to_string(), metrics)];
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let jobs = jobs.clone();
            async move { response(&jobs) }
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("streamx-metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::warn!(error = %e, "metrics server failed");
                }
            })
        })?;
    tracing::info!(%addr, "serving GET /metrics");
    Ok(MetricsServer {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_counters_until_dropped() {
        let metrics = Arc::new(Metrics::default());
        Metrics::add(&metrics.records_written, 42);
        let server = serve("127.0.0.1:0".parse().unwrap(), "j", metrics).unwrap();
        let url = format!("http://{}/metrics", server.addr);
        let mut resp = ureq::get(&url).call().unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(ct, PROMETHEUS_CONTENT_TYPE);
        let text = resp.body_mut().read_to_string().unwrap();
        assert!(
            text.contains("streamx_records_written_total{job=\"j\"} 42"),
            "{text}"
        );
        drop(server);
        assert!(ureq::get(&url).call().is_err(), "stopped with the server");
    }
}
