//! Formats and converters: Avro and JSON Schema decoding (Confluent framing through a minimal stand-in Schema
//! Registry, plain Avro), schema evolution, Kafka Connect JSON envelopes, and every output format
//! read back by independent readers (scripts/readback.py: fastavro, pyarrow, Python's json and
//! csv, duckdb). Avro inputs are written by the apache-avro crate, never by hand. One test binary
//! with a module per area.

mod common;

mod avro_decode;
mod avro_evolution;
mod connect_json;
mod end_to_end;
mod format_readback;
mod ingest;
mod json_schema;
mod protobuf;
mod registry;
