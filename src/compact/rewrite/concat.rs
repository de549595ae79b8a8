//! JSON lines, CSV and raw: outputs are the inputs' bytes concatenated. Gzipped JSON lines
//! concatenate as gzip members (a valid multi-member gzip file); CSV keeps the first input's
//! header and drops the others' (which must be equal).

use std::io::Read;

use bytes::Bytes;

use super::{Finished, MergeError, Merger, MergerFactory, TempOutput};
use crate::compact::plan::DataFile;

/// Concatenates inputs; `csv_header`: every input starts with a header line.
pub struct ConcatMerger {
    out: TempOutput,
    gzip: bool,
    csv_header: bool,
    header: Option<Bytes>,
}

pub fn factory(ext: &'static str, csv_header: bool) -> MergerFactory {
    let gzip = ext.ends_with(".gz");
    Box::new(move || {
        Ok(Box::new(ConcatMerger {
            out: TempOutput::new()?,
            gzip,
            csv_header,
            header: None,
        }) as Box<dyn Merger>)
    })
}

/// Lines of a text file (a last line without its newline counts).
fn count_lines(data: &[u8]) -> u64 {
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"))
}

impl ConcatMerger {
    /// The body of a CSV input with the header split off and checked against the first one.
    fn strip_header(&mut self, data: Bytes) -> Result<Bytes, MergeError> {
        let end = data
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| i + 1);
        let header = data.slice(..end);
        match &self.header {
            None => {
                self.header = Some(header);
                Ok(data)
            }
            Some(first) if *first == header => Ok(data.slice(end..)),
            Some(first) => Err(MergeError::Incompatible(format!(
                "CSV headers differ: {:?} and {:?}",
                String::from_utf8_lossy(first).trim_end(),
                String::from_utf8_lossy(&header).trim_end()
            ))),
        }
    }
}

impl Merger for ConcatMerger {
    fn append(&mut self, _input: &DataFile, data: Bytes) -> Result<(), MergeError> {
        let rows = if self.gzip {
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(&data[..])
                .read_to_end(&mut text)
                .map_err(|e| MergeError::Corrupt(format!("not valid gzip: {e}")))?;
            count_lines(&text)
        } else {
            count_lines(&data)
        };
        let data = if self.csv_header {
            self.out.rows += rows.saturating_sub(1);
            self.strip_header(data)?
        } else {
            self.out.rows += rows;
            data
        };
        self.out.write(&data)?;
        // A text input whose last line has no newline would run into the next input's first.
        if !self.gzip && !data.is_empty() && !data.ends_with(b"\n") {
            self.out.write(b"\n")?;
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
