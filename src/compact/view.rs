//! [`JournalView`]: an object store that lists a topic as of one consistent moment of its
//! compaction swaps, so that a listing reader built on it (`streamx query`) never sees a row
//! twice.
//!
//! ```text
//!  list(prefix) ──► inner listing ──► records of the topic (read after the listing)
//!        for each record with inputs still listed and outputs already listed:
//!            every output listed ──► hide its listed inputs    (publish done, delete running)
//!            some outputs listed ──► hide its listed outputs   (publish running)
//! ```
//!
//! A record whose inputs are all gone is finished; one with no output listed has not
//! published. Only these two mixed cases can show a row twice, and inputs leave their directory
//! only after every output is published, so the rule is exact for one listing.
//!
//! A reader that listed an input before its swap and opens it after finds it in the trash
//! (`_streamx/compaction-trash/<topic>/<dir>/<seq>/<name>`, kept for `compact.input.grace.ms`):
//! reads that miss go there.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use super::journal::{relative, Journal};
use crate::commit::Layout;
use crate::store::Store;

/// A read view of a store that hides the files of in-flight compaction swaps (see the module
/// doc). Writes go through unchanged.
#[derive(Debug, Clone)]
pub struct JournalView {
    store: Store,
    journal: Journal,
}

impl JournalView {
    pub fn new(store: Store, topics_dir: &str) -> Self {
        let journal = Journal::new(store.clone(), Layout::new(topics_dir));
        JournalView { store, journal }
    }

    /// The keys (store paths) to hide from a listing of the topic directories it touches.
    async fn hidden(&self, listed: &[ObjectMeta]) -> HashSet<Path> {
        let keys: HashSet<&Path> = listed.iter().map(|m| &m.location).collect();
        let topics_root = self.store.path(self.journal.layout().topics_dir());
        let topics: HashSet<String> = listed
            .iter()
            .filter_map(|m| relative(&topics_root, &m.location))
            .filter_map(|rel| Some(rel.split_once('/')?.0.to_string()))
            .filter(|t| !t.starts_with('_'))
            .collect();
        let mut hidden = HashSet::new();
        for topic in topics {
            let Ok(records) = self.journal.list(&topic).await else {
                continue;
            };
            for (dir, seqs) in records {
                for l in seqs {
                    let Ok(r) = self.journal.read(&topic, &dir, l.seq).await else {
                        continue;
                    };
                    let listed = |rel: &str| keys.contains(&self.store.path(rel));
                    let inputs: Vec<&str> = r
                        .inputs
                        .iter()
                        .map(|i| i.path.as_str())
                        .filter(|p| listed(p))
                        .collect();
                    let outputs: Vec<&str> = r
                        .outputs
                        .iter()
                        .map(|o| o.final_path.as_str())
                        .filter(|p| listed(p))
                        .collect();
                    if inputs.is_empty() || outputs.is_empty() {
                        continue;
                    }
                    let hide = if outputs.len() == r.outputs.len() {
                        inputs
                    } else {
                        outputs
                    };
                    hidden.extend(hide.into_iter().map(|p| self.store.path(p)));
                }
            }
        }
        hidden
    }
}

impl JournalView {
    /// Where a data file a compaction moved out of its directory waits out
    /// `compact.input.grace.ms` (the newest swap's trash naming it), for a reader that listed it
    /// before the swap.
    async fn trashed(&self, location: &Path) -> Option<Path> {
        let layout = self.journal.layout();
        let rel = relative(&self.store.path(layout.topics_dir()), location)?;
        let (topic_dir, name) = rel.rsplit_once('/')?;
        let (topic, dir) = topic_dir.split_once('/').unwrap_or((topic_dir, ""));
        if topic.starts_with('_') {
            return None;
        }
        let root = layout.compaction_trash_root();
        let root_path = self.store.path(&root);
        let prefix = self.store.path(&format!("{root}/{topic_dir}"));
        let listed: Vec<ObjectMeta> = self
            .store
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .ok()?;
        listed
            .into_iter()
            .filter(|m| m.location.filename() == Some(name))
            .filter_map(|m| {
                let (t, d, seq) =
                    Layout::parse_compaction_trash(&relative(&root_path, &m.location)?)?;
                (t == topic && d == dir).then_some((seq, m.location))
            })
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, moved)| moved)
    }
}

impl fmt::Display for JournalView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JournalView({})", self.store.url)
    }
}

#[async_trait]
impl ObjectStore for JournalView {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.store.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.store.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        match self.store.inner.get_opts(location, options.clone()).await {
            Err(object_store::Error::NotFound { path, source }) => {
                match self.trashed(location).await {
                    Some(moved) => self.store.inner.get_opts(&moved, options).await,
                    None => Err(object_store::Error::NotFound { path, source }),
                }
            }
            other => other,
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match self.store.inner.get_ranges(location, ranges).await {
            Err(object_store::Error::NotFound { path, source }) => {
                match self.trashed(location).await {
                    Some(moved) => self.store.inner.get_ranges(&moved, ranges).await,
                    None => Err(object_store::Error::NotFound { path, source }),
                }
            }
            other => other,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.store.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            let listed: Vec<ObjectMeta> =
                this.store.inner.list(prefix.as_ref()).try_collect().await?;
            let hidden = this.hidden(&listed).await;
            Ok::<_, object_store::Error>(futures::stream::iter(
                listed
                    .into_iter()
                    .filter(move |m| !hidden.contains(&m.location))
                    .map(Ok),
            ))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.store.inner.list_with_delimiter(prefix).await?;
        let hidden = self.hidden(&result.objects).await;
        result.objects.retain(|m| !hidden.contains(&m.location));
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.store.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.store.inner.rename_opts(from, to, options).await
    }
}
