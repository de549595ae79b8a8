//! A latency-adding [`ObjectStore`] wrapper: a real store underneath, every request made a fixed
//! time later, as if the store were that far away. Tests and benches use it to see what a
//! distant store (an S3 region 60 ms away) costs where an emulator on the loopback answers in a
//! millisecond and hides every round trip made one after another.
//!
//! ```text
//!  CommitLog ──► DelayedStore ──(sleep `delay`, then the call)──► real store
//!                  └─ counts calls and the most ever in flight at once
//! ```
//!
//! Every call waits `delay` before it is made: `put`, `get`, `head`, `delete` (each path of a
//! delete stream), `list` (before its first entry), `copy`, `rename`, and each part, completion
//! and abort of a multipart upload. The wrapper also records how many calls were in flight at
//! once at most ([`DelayedStore::peak_in_flight`]), so a test can tell store requests made
//! concurrently from requests made in turn without timing anything.
//!
//! In-process tests build one with [`DelayedStore::new`]; processes get one from
//! `STREAMX_STORE_DELAY_MS=<ms>` (see [`DELAY_ENV`]), read by `Store::with_url` next to the fault
//! rules of [`super::faults`]. Unset, no wrapper exists and nothing costs anything.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// The environment variable read by `Store::with_url`: milliseconds added to every store call.
pub const DELAY_ENV: &str = "STREAMX_STORE_DELAY_MS";

/// Parses the value of [`DELAY_ENV`] (whole milliseconds).
pub fn parse_delay(value: &str) -> std::result::Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{DELAY_ENV}: '{value}' is not a number of milliseconds"))
}

/// Calls made and in flight, shared by the wrapper and the futures and streams it returns.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// One call in flight; ends when dropped.
struct InFlight(Arc<Counters>);

impl Counters {
    fn enter(self: &Arc<Self>) -> InFlight {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(self.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The wrapper. Share it through `Arc` to read its counters while it is in use.
pub struct DelayedStore {
    inner: Arc<dyn ObjectStore>,
    delay: Duration,
    counters: Arc<Counters>,
}

impl fmt::Debug for DelayedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DelayedStore({:?}, {})", self.delay, self.inner)
    }
}

impl fmt::Display for DelayedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DelayedStore({:?}, {})", self.delay, self.inner)
    }
}

impl DelayedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, delay: Duration) -> Self {
        DelayedStore {
            inner,
            delay,
            counters: Arc::default(),
        }
    }

    /// The delay added to every call.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Calls made so far (a list, a delete-stream path and a multipart part count one each).
    pub fn calls(&self) -> u64 {
        self.counters.calls.load(Ordering::Relaxed)
    }

    /// The most calls ever in flight at once (waiting out their delay or being made).
    pub fn peak_in_flight(&self) -> usize {
        self.counters.peak.load(Ordering::SeqCst)
    }

    /// Forgets the peak (the calls in flight now stay counted), e.g. between a test's set-up and
    /// the part it measures.
    pub fn reset_peak(&self) {
        let now = self.counters.in_flight.load(Ordering::SeqCst);
        self.counters.peak.store(now, Ordering::SeqCst);
    }

    /// Runs `call` after the delay, counted as in flight from start to end.
    async fn delayed<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let _in_flight = self.counters.enter();
        tokio::time::sleep(self.delay).await;
        call.await
    }
}

/// A multipart upload whose every request is delayed and counted like the wrapper's own.
#[derive(Debug)]
struct DelayedUpload {
    inner: Box<dyn MultipartUpload>,
    delay: Duration,
    counters: Arc<Counters>,
}

#[async_trait]
impl MultipartUpload for DelayedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let in_flight = self.counters.enter();
        let (delay, part) = (self.delay, self.inner.put_part(data));
        Box::pin(async move {
            let _in_flight = in_flight;
            tokio::time::sleep(delay).await;
            part.await
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let _in_flight = self.counters.enter();
        tokio::time::sleep(self.delay).await;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        let _in_flight = self.counters.enter();
        tokio::time::sleep(self.delay).await;
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for DelayedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.delayed(self.inner.put_opts(location, payload, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self
            .delayed(self.inner.put_multipart_opts(location, opts))
            .await?;
        Ok(Box::new(DelayedUpload {
            inner,
            delay: self.delay,
            counters: self.counters.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.delayed(self.inner.get_opts(location, options)).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.delayed(self.inner.get_ranges(location, ranges)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // Each path waits out the delay before the inner store sees it (one request per path,
        // as object_store's S3 client makes for a single delete).
        let (delay, counters) = (self.delay, self.counters.clone());
        let delayed = locations.then(move |p| {
            let in_flight = counters.enter();
            async move {
                let _in_flight = in_flight;
                tokio::time::sleep(delay).await;
                p
            }
        });
        self.inner.delete_stream(delayed.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (delay, counters) = (self.delay, self.counters.clone());
        let listing = self.inner.list(prefix);
        futures::stream::once(async move {
            let in_flight = counters.enter();
            tokio::time::sleep(delay).await;
            // In flight until the listing is read to its end (or dropped).
            listing.map(move |entry| {
                let _in_flight = &in_flight;
                entry
            })
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.delayed(self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.delayed(self.inner.copy_opts(from, to, options)).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.delayed(self.inner.rename_opts(from, to, options))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;

    fn store(ms: u64) -> DelayedStore {
        let inner = Arc::new(object_store::memory::InMemory::new());
        DelayedStore::new(inner, Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn every_call_waits_out_the_delay() {
        let store = store(40);
        let path = Path::from("a/b");
        let started = std::time::Instant::now();
        store.put(&path, PutPayload::from("x")).await.unwrap();
        store.head(&path).await.unwrap();
        let listed: Vec<_> = store
            .list(Some(&Path::from("a")))
            .try_collect()
            .await
            .unwrap();
        store.delete(&path).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(4 * 40));
        assert_eq!(store.calls(), 4);
        assert_eq!(store.peak_in_flight(), 1, "one call after another");
    }

    #[tokio::test]
    async fn counts_the_most_calls_in_flight_at_once() {
        let store = store(30);
        let paths: Vec<Path> = (0..5).map(|i| Path::from(format!("missing/{i}"))).collect();
        let answers = futures::future::join_all(paths.iter().map(|p| store.head(p))).await;
        assert!(answers.iter().all(|a| a.is_err()), "nothing there");
        assert_eq!(store.peak_in_flight(), 5);
        store.reset_peak();
        store.head(&Path::from("missing/0")).await.unwrap_err();
        assert_eq!(store.peak_in_flight(), 1);
    }

    #[test]
    fn parses_the_delay_in_milliseconds() {
        assert_eq!(parse_delay(" 60 ").unwrap(), Duration::from_millis(60));
        assert!(parse_delay("60ms").unwrap_err().contains(DELAY_ENV));
    }
}
