//! Avro object container files. When every input has the same schema and codec (`avro.schema`,
//! `avro.codec`), blocks are copied as they are encoded (no decoding), behind the first input's
//! header and with its sync marker. Otherwise rows are decoded (arrow-avro) and projected to the
//! newest input's schema (older rows read null for newer columns), then encoded as ingest
//! encodes them; an incompatible mix is [`MergeError::Incompatible`], naming the fields.

use std::collections::BTreeMap;

use arrow::datatypes::SchemaRef;
use arrow_avro::reader::ReaderBuilder;
use bytes::Bytes;
use object_store::ObjectStoreExt;

use super::schema::{check_compatible, project};
use super::{Finished, MergeError, Merger, MergerFactory, Staging, TempOutput};
use crate::compact::plan::DataFile;
use crate::format::avro::{AvroCodec, AvroFileWriter, AvroWriterOptions};
use crate::format::FileWriter;

const MAGIC: &[u8; 4] = b"Obj\x01";

/// Bytes read from the start of a file for its header (a second read fetches the whole file).
const HEADER_GUESS: u64 = 64 * 1024;

/// An input's header: what must match for a block copy, and its bytes.
pub struct Head {
    header: Header,
    raw: Bytes,
}

/// The header of an input, read with one ranged GET (two for a header over 64 KiB).
pub fn head(staging: &Staging<'_>, input: &DataFile) -> Result<Head, MergeError> {
    let path = staging.store.path(&input.path);
    let get = |end: u64| {
        staging
            .handle
            .block_on(staging.store.inner.get_range(&path, 0..end))
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => MergeError::Gone,
                e => corrupt(e.to_string()),
            })
    };
    let parse = |data: Bytes| {
        let mut c = Cursor {
            data: &data,
            pos: 0,
        };
        let header = c.header()?;
        let raw = data.slice(..c.pos);
        Ok::<_, MergeError>(Head { header, raw })
    };
    match parse(get(input.bytes.min(HEADER_GUESS))?) {
        Err(_) if input.bytes > HEADER_GUESS => parse(get(input.bytes)?),
        other => other,
    }
}

fn arrow_schema(head: &Head) -> Result<SchemaRef, MergeError> {
    ReaderBuilder::new()
        .build(&head.raw[..])
        .map(|r| r.schema())
        .map_err(|e| corrupt(e.to_string()))
}

/// Block copy when every header matches, else rows projected to the newest input's schema.
pub fn factory(heads: &[(DataFile, Head)], codec: AvroCodec) -> Result<MergerFactory, MergeError> {
    let key = |h: &Head| {
        let m = &h.header.metadata;
        (m.get("avro.schema").cloned(), m.get("avro.codec").cloned())
    };
    if heads.windows(2).all(|w| key(&w[0].1) == key(&w[1].1)) {
        return Ok(copy_factory());
    }
    let newest = heads
        .iter()
        .max_by(|a, b| (a.0.modified_ms, a.0.name()).cmp(&(b.0.modified_ms, b.0.name())))
        .ok_or_else(|| MergeError::Write("no inputs".into()))?;
    let schema = arrow_schema(&newest.1)?;
    for (file, h) in heads {
        check_compatible(&schema, arrow_schema(h)?.as_ref())
            .map_err(|e| MergeError::Incompatible(format!("{}: {e}", file.name())))?;
    }
    Ok(Box::new(move || {
        let writer = AvroFileWriter::new(schema.clone(), AvroWriterOptions { codec })
            .map_err(|e| MergeError::Write(e.to_string()))?;
        Ok(Box::new(AvroProjector {
            writer: Box::new(writer),
            schema: schema.clone(),
        }) as Box<dyn Merger>)
    }))
}

/// Rows of inputs with other schemas, projected to the newest and encoded again.
pub struct AvroProjector {
    writer: Box<AvroFileWriter>,
    schema: SchemaRef,
}

impl Merger for AvroProjector {
    fn append(&mut self, _input: &DataFile, data: Bytes) -> Result<(), MergeError> {
        let reader = ReaderBuilder::new()
            .build(&data[..])
            .map_err(|e| corrupt(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(e.to_string()))?;
            let batch = project(&batch, &self.schema)?;
            self.writer
                .write(&batch)
                .map_err(|e| MergeError::Write(e.to_string()))?;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.writer.estimated_size() as u64
    }

    fn finish(self: Box<Self>) -> Result<Finished, MergeError> {
        let rows = self.writer.rows() as u64;
        let bytes = self
            .writer
            .finish()
            .map_err(|e| MergeError::Write(e.to_string()))?;
        let mut out = TempOutput::new()?;
        out.write(&bytes)?;
        out.rows = rows;
        out.finish()
    }
}

fn copy_factory() -> MergerFactory {
    Box::new(|| {
        Ok(Box::new(AvroMerger {
            out: TempOutput::new()?,
            header: None,
        }) as Box<dyn Merger>)
    })
}

/// The parts of a container file's header that must match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    metadata: BTreeMap<String, Vec<u8>>,
    sync: [u8; 16],
}

pub struct AvroMerger {
    out: TempOutput,
    header: Option<Header>,
}

/// A cursor over an input with the Avro primitives the container format needs.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

fn corrupt(m: impl Into<String>) -> MergeError {
    MergeError::Corrupt(m.into())
}

impl<'a> Cursor<'a> {
    fn long(&mut self) -> Result<i64, MergeError> {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = *self
                .data
                .get(self.pos)
                .ok_or_else(|| corrupt("truncated number"))?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("number too long"));
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MergeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| corrupt("truncated block"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], MergeError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| corrupt("negative length"))?;
        self.take(n)
    }

    fn header(&mut self) -> Result<Header, MergeError> {
        if self.take(4)? != MAGIC {
            return Err(corrupt("not an Avro object container file (no magic)"));
        }
        let mut metadata = BTreeMap::new();
        loop {
            let mut count = self.long()?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = -count;
                self.long()?; // the block's byte size
            }
            for _ in 0..count {
                let key = String::from_utf8_lossy(self.bytes()?).into_owned();
                metadata.insert(key, self.bytes()?.to_vec());
            }
        }
        let sync = self.take(16)?.try_into().expect("16 bytes");
        Ok(Header { metadata, sync })
    }
}

impl AvroMerger {
    /// Checks an input's header against the first one's; the first one's is written out.
    fn start(&mut self, header: Header, raw: &[u8]) -> Result<[u8; 16], MergeError> {
        match &self.header {
            None => {
                self.out.write(raw)?;
                self.header = Some(header.clone());
                Ok(header.sync)
            }
            Some(first) => {
                for key in ["avro.schema", "avro.codec"] {
                    if first.metadata.get(key) != header.metadata.get(key) {
                        return Err(MergeError::Incompatible(format!(
                            "Avro files with different {key} (projection to the newest schema is not built yet)"
                        )));
                    }
                }
                Ok(first.sync)
            }
        }
    }
}

impl Merger for AvroMerger {
    fn append(&mut self, _input: &DataFile, data: Bytes) -> Result<(), MergeError> {
        let mut c = Cursor {
            data: &data,
            pos: 0,
        };
        let header = c.header()?;
        let own_sync = header.sync;
        let sync = self.start(header, &data[..c.pos])?;
        while c.pos < data.len() {
            let start = c.pos;
            let count = c.long()?;
            let size = c.long()?;
            let size = usize::try_from(size).map_err(|_| corrupt("negative block size"))?;
            c.take(size)?;
            let end = c.pos;
            if c.take(16)? != own_sync {
                return Err(corrupt("a block does not end with the file's sync marker"));
            }
            self.out.write(&data[start..end])?;
            self.out.write(&sync)?;
            self.out.rows += count.max(0) as u64;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.out.bytes()
    }

    fn finish(self: Box<Self>) -> Result<Finished, MergeError> {
        self.out.finish()
    }
}
