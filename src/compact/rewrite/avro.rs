//! Avro object container files: blocks are copied as they are encoded (no decoding), behind the
//! first input's header and with its sync marker. Inputs must share the schema and codec
//! (`avro.schema`, `avro.codec`); other mixes are [`MergeError::Incompatible`] (projecting rows
//! to the newest schema is not built yet).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Finished, MergeError, Merger, MergerFactory, TempOutput};
use crate::compact::plan::DataFile;

const MAGIC: &[u8; 4] = b"Obj\x01";

pub fn factory() -> MergerFactory {
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
