//! Test helpers: a minimal schema registry, Avro encoding through the `apache-avro` crate,
//! record buffers, and the Python read-back checker.
#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use streamx::decode::avro::{AvroDecoder, AvroDecoderOptions};
use streamx::decode::registry::StaticSchemas;
use streamx::decode::{Decoded, RecordBuffer};

/// A buffer holding `values` (None = tombstone) at offsets 0..n.
pub fn buffer(values: &[Option<Vec<u8>>]) -> RecordBuffer {
    let mut b = RecordBuffer::new(false, false);
    for (i, v) in values.iter().enumerate() {
        b.push(i as i64, 0, None, v.as_deref(), Vec::new);
    }
    b
}

/// Avro binary of `value` (an `apache_avro::types::Value`) written with `schema` by the
/// apache-avro crate, never assembled by hand.
pub fn avro_datum(schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    apache_avro::to_avro_datum(schema, value).expect("apache-avro encodes the test value")
}

/// `datum` framed in the Confluent wire format with schema `id`.
pub fn confluent(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(datum);
    framed
}

/// The Python of the test venv (`STREAMX_TEST_PYTHON` overrides); see scripts/setup_venv.sh.
pub fn python() -> PathBuf {
    match std::env::var("STREAMX_TEST_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => panic!(
            "STREAMX_TEST_PYTHON is not set: run the tests with scripts/test.sh, whose services \
             venv has fastavro, pyarrow and duckdb (or `scripts/services.sh install` and point \
             STREAMX_TEST_PYTHON at $HOME/.cache/streamx/venv/bin/python)"
        ),
    }
}

/// Runs `scripts/readback.py <format> <file> <expected>` and fails the test with its report.
pub fn readback(format: &str, file: &Path, expected: &serde_json::Value) {
    if let Err(report) = try_readback(format, file, expected) {
        panic!("{report}");
    }
}

/// Like [`readback`], returning the checker's report on a mismatch.
pub fn try_readback(format: &str, file: &Path, expected: &serde_json::Value) -> Result<(), String> {
    let dir = file.parent().expect("file in a directory");
    let expected_path = dir.join(format!(
        "{}.expected.json",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    std::fs::write(&expected_path, serde_json::to_vec_pretty(expected).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/readback.py");
    let out = Command::new(python())
        .arg(script)
        .arg(format)
        .arg(file)
        .arg(&expected_path)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stdout.starts_with("OK") {
        Ok(())
    } else {
        Err(format!(
            "readback {format} {} failed:\n{stdout}\n{stderr}",
            file.display()
        ))
    }
}

/// Parses an Avro schema with apache-avro.
pub fn schema(json: &str) -> apache_avro::Schema {
    apache_avro::Schema::parse_str(json).unwrap()
}

/// A Confluent decoder whose schemas come from memory.
pub fn static_decoder(schemas: &[(u32, &str)], options: AvroDecoderOptions) -> AvroDecoder {
    let mut source = StaticSchemas::new();
    for (id, json) in schemas {
        source = source.with(*id, json);
    }
    AvroDecoder::confluent(Arc::new(source), options).unwrap()
}

/// Indexes of the rejected records.
pub fn rejected(d: &Decoded) -> Vec<usize> {
    d.rejected.iter().map(|(i, _)| *i).collect()
}

/// The cause given for record `index` ("" if it was not rejected).
pub fn cause(d: &Decoded, index: usize) -> String {
    d.rejected
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, e)| e.0.clone())
        .unwrap_or_default()
}

pub fn i64s(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let c = batch.column_by_name(name).unwrap();
    c.as_primitive::<Int64Type>().iter().collect()
}

pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = batch.column_by_name(name).unwrap();
    let c = c.as_any().downcast_ref::<StringArray>().unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}
