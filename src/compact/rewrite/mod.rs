//! Rewrites: the inputs of one directory, in row order, into target-sized output files staged
//! under `_streamx/compaction-staging/`.
//!
//! ```text
//!  for each input (one GET, one small file in memory at a time):
//!      Merger::append ──► output on local disk (a temp file; never a directory in memory)
//!      rolls_after(real output size, estimated rest, target)? ──► upload, start the next output
//! ```
//!
//! One [`Merger`] per format: [`parquet`] (encoded column chunks copied for large row groups,
//! small ones decoded and re-encoded), [`concat`](mod@concat) (JSON lines, CSV with one header,
//! raw; gzip members concatenated) and [`avro`] (blocks copied, or rows projected to the newest
//! schema, [`schema`]). A directory whose files cannot be merged is reported ([`MergeError`]) and
//! nothing of it is published.

pub mod avro;
pub mod concat;
pub mod parquet;
pub mod schema;

use std::io::{Read, Seek, SeekFrom};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::error::{store_err, CompactError};
use super::journal::RecordOutput;
use super::plan::{rolls_after, DataFile, DirPlan};
use crate::commit::Layout;
use crate::config::{Config, OutputFormat};
use crate::store::Store;

/// Why inputs could not be merged.
#[derive(Debug)]
pub enum MergeError {
    /// An input is not a valid file of the format.
    Corrupt(String),
    /// The inputs cannot share one output (schemas, headers).
    Incompatible(String),
    /// Writing the output failed.
    Write(String),
    /// An input is gone (another compactor swapped the directory meanwhile).
    Gone,
}

/// A finished output on local disk.
pub struct Finished {
    pub file: std::fs::File,
    pub bytes: u64,
    pub rows: u64,
}

/// Appends inputs, in order, into one output file.
pub trait Merger: Send {
    fn append(&mut self, input: &DataFile, data: Bytes) -> Result<(), MergeError>;
    /// Bytes of the output so far (written plus an estimate of what is buffered).
    fn size(&self) -> u64;
    /// Writes out what is buffered, so that [`Merger::size`] is exact (before an output is
    /// closed on its size).
    fn settle(&mut self) -> Result<(), MergeError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<Finished, MergeError>;
}

/// Makes a new [`Merger`] for each output of one directory.
pub type MergerFactory = Box<dyn Fn() -> Result<Box<dyn Merger>, MergeError> + Send + Sync>;

/// What a rewrite needs from the job's configuration.
#[derive(Clone)]
pub struct RewriteSettings {
    pub format: OutputFormat,
    pub ext: &'static str,
    pub csv_header: bool,
    pub parquet: parquet::ParquetSettings,
    pub avro_codec: crate::format::avro::AvroCodec,
    pub target_bytes: u64,
}

impl RewriteSettings {
    pub fn from_config(config: &Config) -> Self {
        RewriteSettings {
            format: config.format,
            ext: config.file_extension(),
            csv_header: config.formats.csv.header,
            parquet: parquet::ParquetSettings {
                codec: config.parquet_codec,
                options: config.formats.parquet,
            },
            avro_codec: config.formats.avro_codec,
            target_bytes: config.compact.target_bytes,
        }
    }
}

/// Where and as what one directory's outputs are staged.
pub struct Staging<'a> {
    pub store: &'a Store,
    pub layout: &'a Layout,
    pub handle: tokio::runtime::Handle,
    pub seq: u64,
    pub run: &'a str,
}

/// Rewrites the inputs of `plan` into staged outputs (blocking: call from a blocking thread).
/// On error, whatever was staged is deleted again.
pub fn rewrite(
    settings: &RewriteSettings,
    staging: &Staging<'_>,
    plan: &DirPlan,
    on_input: &(dyn Fn(u64) + Sync),
) -> Result<Vec<RecordOutput>, CompactError> {
    let mut staged = Vec::new();
    let result = rewrite_into(settings, staging, plan, on_input, &mut staged);
    if result.is_err() {
        for o in &staged {
            let path = staging.store.path(&o.staging);
            let _ = staging.handle.block_on(staging.store.inner.delete(&path));
        }
    }
    result.map(|()| staged)
}

fn rewrite_into(
    settings: &RewriteSettings,
    staging: &Staging<'_>,
    plan: &DirPlan,
    on_input: &(dyn Fn(u64) + Sync),
    staged: &mut Vec<RecordOutput>,
) -> Result<(), CompactError> {
    let dir_name = format!("{}/{}", plan.topic, plan.dir);
    let merge_err = |path: &str, e: MergeError| match e {
        MergeError::Corrupt(message) => CompactError::CorruptInput {
            dir: dir_name.clone(),
            path: path.to_string(),
            message,
        },
        MergeError::Incompatible(detail) => CompactError::Incompatible {
            dir: dir_name.clone(),
            detail,
        },
        MergeError::Write(message) => CompactError::Write {
            dir: dir_name.clone(),
            message,
        },
        MergeError::Gone => CompactError::InputGone {
            dir: dir_name.clone(),
            path: path.to_string(),
        },
    };
    let factory = factory(settings, staging, plan).map_err(|(path, e)| merge_err(&path, e))?;
    let total = plan.input_bytes();
    let (mut done, mut in_current) = (0u64, 0u64);
    let mut merger: Option<Box<dyn Merger>> = None;
    for input in &plan.inputs {
        let data = fetch(staging, input).map_err(|e| match e {
            CompactError::StoreOp { source, .. }
                if matches!(*source, object_store::Error::NotFound { .. }) =>
            {
                merge_err(&input.path, MergeError::Gone)
            }
            e => e,
        })?;
        if merger.is_none() {
            merger = Some(factory().map_err(|e| merge_err(&input.path, e))?);
        }
        let m = merger.as_mut().expect("a merger");
        m.append(input, data)
            .map_err(|e| merge_err(&input.path, e))?;
        done += input.bytes;
        in_current += input.bytes;
        on_input(input.bytes);
        // The rest's output size, estimated with this output's ratio of output to input bytes.
        let rest = |m: &dyn Merger| {
            ((total - done) as u128 * m.size() as u128 / in_current.max(1) as u128) as u64
        };
        let target = settings.target_bytes;
        let mut rolls = rolls_after(m.size(), rest(m.as_ref()), target);
        if rolls {
            // Judged on the real size: what is buffered is written out first.
            m.settle().map_err(|e| merge_err(&input.path, e))?;
            rolls = rolls_after(m.size(), rest(m.as_ref()), target);
        }
        if rolls {
            let finished = merger.take().expect("merger").finish();
            let finished = finished.map_err(|e| merge_err("", e))?;
            staged.push(upload(settings, staging, plan, staged.len(), finished)?);
            in_current = 0;
        }
    }
    if let Some(m) = merger {
        let finished = m.finish().map_err(|e| merge_err("", e))?;
        staged.push(upload(settings, staging, plan, staged.len(), finished)?);
    }
    Ok(())
}

/// The directory's merger factory; an error comes with the input it concerns (if one).
fn factory(
    settings: &RewriteSettings,
    staging: &Staging<'_>,
    plan: &DirPlan,
) -> Result<MergerFactory, (String, MergeError)> {
    Ok(match settings.format {
        OutputFormat::Parquet => {
            let footers = plan
                .inputs
                .iter()
                .map(|f| {
                    parquet::footer(staging, f)
                        .map(|m| (f.clone(), m))
                        .map_err(|e| (f.path.clone(), e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            parquet::factory(&settings.parquet, &footers).map_err(|e| (String::new(), e))?
        }
        OutputFormat::Avro => {
            let heads = plan
                .inputs
                .iter()
                .map(|f| {
                    avro::head(staging, f)
                        .map(|h| (f.clone(), h))
                        .map_err(|e| (f.path.clone(), e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            avro::factory(&heads, settings.avro_codec).map_err(|e| (String::new(), e))?
        }
        OutputFormat::Json | OutputFormat::Raw => concat::factory(settings.ext, false),
        OutputFormat::Csv => concat::factory(settings.ext, settings.csv_header),
    })
}

/// One input, whole (inputs are small files by selection).
pub(crate) fn fetch(staging: &Staging<'_>, input: &DataFile) -> Result<Bytes, CompactError> {
    let path = staging.store.path(&input.path);
    staging
        .handle
        .block_on(async { staging.store.inner.get(&path).await?.bytes().await })
        .map_err(|e| store_err("get (compaction input)", &path, e))
}

/// Files up to this size are uploaded with one put; larger ones in parts of this size.
const PART_BYTES: usize = 8 << 20;

/// Uploads a finished output to its staging key.
fn upload(
    settings: &RewriteSettings,
    staging: &Staging<'_>,
    plan: &DirPlan,
    n: usize,
    mut finished: Finished,
) -> Result<RecordOutput, CompactError> {
    let name = Layout::compaction_output_name(&plan.topic, staging.seq, n, settings.ext);
    let rel =
        staging
            .layout
            .compaction_staging(&plan.topic, &plan.dir, staging.seq, staging.run, &name);
    let path = staging.store.path(&rel);
    let io_err = |e: std::io::Error| CompactError::Write {
        dir: format!("{}/{}", plan.topic, plan.dir),
        message: format!("reading back the temporary output: {e}"),
    };
    finished.file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let store = &staging.store.inner;
    staging.handle.block_on(async {
        if finished.bytes as usize <= PART_BYTES {
            let mut buf = Vec::with_capacity(finished.bytes as usize);
            finished.file.read_to_end(&mut buf).map_err(io_err)?;
            store
                .put(&path, PutPayload::from(buf))
                .await
                .map_err(|e| store_err("put (stage compacted)", &path, e))?;
            return Ok(());
        }
        let upload = store
            .put_multipart(&path)
            .await
            .map_err(|e| store_err("put_multipart (stage compacted)", &path, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = finished.file.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| store_err("put part (stage compacted)", &path, e))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| store_err("complete multipart (stage compacted)", &path, e))?;
        Ok::<(), CompactError>(())
    })?;
    Ok(RecordOutput {
        staging: rel,
        final_path: format!("{}/{name}", staging.layout.data_dir(&plan.topic, &plan.dir)),
        bytes: finished.bytes,
        rows: finished.rows,
    })
}

/// A byte-appended output on local disk (the text formats and Avro).
pub struct TempOutput {
    out: std::io::BufWriter<std::fs::File>,
    bytes: u64,
    pub rows: u64,
}

impl TempOutput {
    pub fn new() -> Result<Self, MergeError> {
        Ok(TempOutput {
            out: std::io::BufWriter::new(temp_file()?),
            bytes: 0,
            rows: 0,
        })
    }

    pub fn write(&mut self, b: &[u8]) -> Result<(), MergeError> {
        std::io::Write::write_all(&mut self.out, b)
            .map_err(|e| MergeError::Write(e.to_string()))?;
        self.bytes += b.len() as u64;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> Result<Finished, MergeError> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| MergeError::Write(e.to_string()))?;
        Ok(Finished {
            file,
            bytes: self.bytes,
            rows: self.rows,
        })
    }
}

/// A new anonymous temporary file for an output.
pub(crate) fn temp_file() -> Result<std::fs::File, MergeError> {
    tempfile::tempfile()
        .map_err(|e| MergeError::Write(format!("cannot create a temporary file: {e}")))
}
