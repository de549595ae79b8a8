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

    /// Moves every record of `other` (same `keep_keys` / `keep_headers`) after this buffer's
    /// records, leaving `other` empty: one copy per column instead of one per record.
    pub fn append(&mut self, other: &mut RecordBuffer) {
        debug_assert_eq!(
            (self.keep_keys, self.keep_headers),
            (other.keep_keys, other.keep_headers)
        );
        let (values_base, keys_base) = (self.values.len(), self.keys.len());
        self.values.extend_from_slice(&other.values);
        self.value_ends
            .extend(other.value_ends.iter().map(|end| end + values_base));
        self.value_present.extend_from_slice(&other.value_present);
        self.keys.extend_from_slice(&other.keys);
        self.key_ends
            .extend(other.key_ends.iter().map(|end| end + keys_base));
        self.key_present.extend_from_slice(&other.key_present);
        self.offsets.extend_from_slice(&other.offsets);
        self.timestamps.extend_from_slice(&other.timestamps);
        self.headers.append(&mut other.headers);
        other.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str) -> Vec<Header> {
        vec![Header {
            key: key.into(),
            value: Some(key.as_bytes().to_vec()),
        }]
    }

    #[test]
    fn append_moves_every_record_after_the_buffered_ones() {
        let mut a = RecordBuffer::new(true, true);
        a.push(5, 50, Some(b"k5"), Some(b"v5"), || header("h5"));
        a.push(6, 60, None, None, || header("h6"));
        let mut b = RecordBuffer::new(true, true);
        b.push(7, 70, Some(b"key7"), Some(b"value7"), || header("h7"));
        b.push(8, 80, Some(b""), Some(b""), Vec::new);
        a.append(&mut b);
        assert!(b.is_empty() && b.values.is_empty() && b.headers.is_empty());
        assert_eq!(a.offsets, [5, 6, 7, 8]);
        assert_eq!(a.timestamps, [50, 60, 70, 80]);
        let values: Vec<_> = (0..4).map(|i| a.value(i)).collect();
        assert_eq!(values, [Some(&b"v5"[..]), None, Some(b"value7"), Some(b"")]);
        let keys: Vec<_> = (0..4).map(|i| a.key(i)).collect();
        assert_eq!(keys, [Some(&b"k5"[..]), None, Some(b"key7"), Some(b"")]);
        assert_eq!(
            a.headers,
            [header("h5"), header("h6"), header("h7"), vec![]]
        );
        assert_eq!(a.byte_size(), "v5value7k5key7".len());
    }
}
