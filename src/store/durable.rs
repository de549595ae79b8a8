//! Local disk that survives a power cut: object_store's [`LocalFileSystem`] writes through the page
//! cache and never calls `fsync`, so after a crash of the machine (not only of the process) a
//! commit object could exist while the files it names are empty or missing. [`DurableLocal`]
//! wraps it and, before a write call returns, makes what the call changed durable:
//!
//! ```text
//!  put(path)          ──► LocalFileSystem::put ──► fsync(file) ──► fsync(each dir up to the root)
//!  rename/copy(a, b)  ──► LocalFileSystem::...  ──► fsync(b)    ──► fsync(dirs of b, dir of a)
//!  delete(path)       ──► LocalFileSystem::delete (not synced: a lost delete is only garbage)
//! ```
//!
//! Directories up to the store root are synced because `put` creates missing parents, and a new
//! directory entry is durable only once its parent is synced. The commit protocol's order (stage,
//! then create the commit object, then publish) therefore holds on disk too: a commit object that
//! survives a power cut names staged files that survived it.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Called with every path synced, in order (for tests of the ordering).
pub type SyncObserver = Arc<dyn Fn(&std::path::Path) + Send + Sync>;

/// [`LocalFileSystem`] with `fsync` after every write.
pub struct DurableLocal {
    inner: Arc<LocalFileSystem>,
    root: PathBuf,
    observer: Option<SyncObserver>,
}

impl fmt::Debug for DurableLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableLocal({})", self.root.display())
    }
}

impl fmt::Display for DurableLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableLocal({})", self.root.display())
    }
}

impl DurableLocal {
    /// `root` must be the directory `inner` was created with (`new_with_prefix`).
    pub fn new(inner: LocalFileSystem, root: PathBuf) -> Self {
        DurableLocal {
            inner: Arc::new(inner),
            root,
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: SyncObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Syncs `location`'s file and every directory from its parent up to the root.
    async fn sync_path(&self, location: &Path) -> Result<()> {
        let file = self.inner.path_to_filesystem(location)?;
        let root = self.root.clone();
        let observer = self.observer.clone();
        tokio::task::spawn_blocking(move || sync_file_and_parents(&file, &root, observer))
            .await
            .map_err(|e| generic(format!("fsync task failed: {e}")))?
    }

    /// Syncs the parent directory of `location` (after an entry was removed from it).
    async fn sync_parent(&self, location: &Path) -> Result<()> {
        let file = self.inner.path_to_filesystem(location)?;
        let observer = self.observer.clone();
        tokio::task::spawn_blocking(move || match file.parent() {
            Some(dir) => sync_one(dir, &observer),
            None => Ok(()),
        })
        .await
        .map_err(|e| generic(format!("fsync task failed: {e}")))?
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "DurableLocal",
        source: message.into(),
    }
}

fn sync_one(path: &std::path::Path, observer: &Option<SyncObserver>) -> Result<()> {
    let f = std::fs::File::open(path)
        .map_err(|e| generic(format!("open {} for fsync: {e}", path.display())))?;
    f.sync_all()
        .map_err(|e| generic(format!("fsync {}: {e}", path.display())))?;
    if let Some(o) = observer {
        o(path);
    }
    Ok(())
}

fn sync_file_and_parents(
    file: &std::path::Path,
    root: &std::path::Path,
    observer: Option<SyncObserver>,
) -> Result<()> {
    sync_one(file, &observer)?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        sync_one(d, &observer)?;
        if d == root || !d.starts_with(root) {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for DurableLocal {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.sync_path(location).await?;
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // Not used by the commit protocol (files are staged with one put).
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        self.sync_path(to).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await?;
        self.sync_path(to).await?;
        self.sync_parent(from).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use std::sync::Mutex;

    #[tokio::test]
    async fn put_and_rename_sync_the_file_and_its_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let synced = Arc::new(Mutex::new(Vec::<PathBuf>::new()));
        let seen = synced.clone();
        let store = DurableLocal::new(
            LocalFileSystem::new_with_prefix(&root).unwrap(),
            root.clone(),
        )
        .with_observer(Arc::new(move |p| {
            seen.lock().unwrap().push(p.to_path_buf())
        }));
        store
            .put(&Path::from("a/b/f.txt"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        let got = std::mem::take(&mut *synced.lock().unwrap());
        assert_eq!(
            got,
            vec![
                root.join("a/b/f.txt"),
                root.join("a/b"),
                root.join("a"),
                root.clone()
            ]
        );
        store
            .rename(&Path::from("a/b/f.txt"), &Path::from("c/g.txt"))
            .await
            .unwrap();
        let got = std::mem::take(&mut *synced.lock().unwrap());
        assert_eq!(
            got,
            vec![
                root.join("c/g.txt"),
                root.join("c"),
                root.clone(),
                root.join("a/b")
            ]
        );
    }
}
