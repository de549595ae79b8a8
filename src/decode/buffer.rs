//! [`RecordBuffer`]: Kafka records of one partition copied out of librdkafka into contiguous
//! buffers, waiting to be decoded together.

/// A header of a Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Records of one Kafka partition, in offset order. Values are stored back to back in `values`
/// (`value_ends[i]` is the end of value i); keys likewise. Headers are kept only when
/// `keep_headers` was set (they are needed only for metadata columns and the dead letter queue).
#[derive(Debug, Default)]
pub struct RecordBuffer {
    pub values: Vec<u8>,
    pub value_ends: Vec<usize>,
    /// false where the record's value is null (a tombstone).
    pub value_present: Vec<bool>,
    pub keys: Vec<u8>,
    pub key_ends: Vec<usize>,
    pub key_present: Vec<bool>,
    pub offsets: Vec<i64>,
    /// Record timestamps, epoch milliseconds (-1 when the broker gave none).
    pub timestamps: Vec<i64>,
    pub headers: Vec<Vec<Header>>,
    pub keep_keys: bool,
    pub keep_headers: bool,
}

impl RecordBuffer {
    pub fn new(keep_keys: bool, keep_headers: bool) -> Self {
        RecordBuffer {
            keep_keys,
            keep_headers,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Bytes of values (and keys) held, for memory accounting.
    pub fn byte_size(&self) -> usize {
        self.values.len() + self.keys.len()
    }

    pub fn push(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl FnOnce() -> Vec<Header>,
    ) {
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
        self.value_present.push(value.is_some());
        if let Some(v) = value {
            self.values.extend_from_slice(v);
        }
        self.value_ends.push(self.values.len());
        if self.keep_keys {
            self.key_present.push(key.is_some());
            if let Some(k) = key {
                self.keys.extend_from_slice(k);
            }
            self.key_ends.push(self.keys.len());
        }
        if self.keep_headers {
            self.headers.push(headers());
        }
    }

    /// The value of record `i`, `None` for a tombstone.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        if !self.value_present[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.value_ends[i - 1] };
        Some(&self.values[start..self.value_ends[i]])
    }

    /// The key of record `i` (`None` if null or keys are not kept).
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        if !self.keep_keys || !self.key_present[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        Some(&self.keys[start..self.key_ends[i]])
    }

    pub fn clear(&mut self) {
        self.values.clear();
        self.value_ends.clear();
        self.value_present.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.key_present.clear();
        self.offsets.clear();
        self.timestamps.clear();
        self.headers.clear();
    }
}
