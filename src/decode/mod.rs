//! Decoding: Kafka records (copied into a [`RecordBuffer`]) into Arrow [`RecordBatch`]es.
//!
//! Owns the value decoders ([`json`], [`raw`], [`avro`]: Confluent wire format through the
//! [`registry`] client or plain Avro with a configured schema, evolution rules in
//! [`avro_compat`]; [`protobuf`]: Confluent `ProtobufConverter` values, schemas and references
//! through [`protobuf_schema`]; [`connect_json`]: Kafka Connect `JsonConverter` envelopes;
//! [`json_schema`]: Confluent JSON Schema values, columns from the registered schema by
//! [`json_schema_map`], decoded by the JSON decoder), the Kafka
//! metadata columns ([`metadata`]) and the inferred JSON schemas a topic's partitions share
//! ([`shared_schema`]).
//! Hot path contract: no per-record intermediate value tree; JSON goes through the one-pass
//! [`json_direct`] decoder, or arrow-json's tape decoder where that one gives up, Avro through
//! arrow-avro's decoder, raw bytes become a `BinaryArray` built from the buffer's contiguous
//! bytes.
//!
//! A decoder never drops a record silently: every input row either appears in the output batch
//! (in input order) or is listed in [`Decoded::rejected`] with its index and cause, so the caller
//! can apply `errors.tolerance` and name topic/partition/offset.

pub mod avro;
pub mod avro_compat;
mod avro_feed;
pub mod buffer;
pub mod connect_json;
pub mod connect_schema;
pub mod json;
pub mod json_direct;
pub mod json_schema;
pub mod json_schema_map;
pub mod metadata;
pub mod protobuf;
mod protobuf_arrow;
pub mod protobuf_schema;
pub mod raw;
pub mod registry;
pub mod sample;
pub mod schema_store;
pub mod shared_schema;
pub mod untyped;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

pub use buffer::RecordBuffer;

use crate::config::{Config, InputFormat};

/// Why a single record could not be decoded. The caller adds topic/partition/offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Errors of a whole decode call (not of one record): ours, the schema's, or the registry's.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot infer a JSON schema for topic '{topic}' from its first records: {message}")]
    Inference { topic: String, message: String },
    #[error("internal decode error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The schema registry could not be asked (unreachable, auth, 5xx after retries): nothing of
    /// the buffer was decoded; decoding the same buffer later may succeed.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// A configured schema is unusable (invalid JSON, unsupported type, ...).
    #[error("invalid {what}: {message}")]
    Schema { what: String, message: String },
    /// `json.schema.evolution=fail-on-new-columns` and a record has fields the schema lacks.
    #[error(
        "topic '{topic}' offset {offset}: new JSON fields {fields:?} are not in the inferred \
         schema and json.schema.evolution=fail-on-new-columns"
    )]
    NewColumns {
        topic: String,
        offset: i64,
        fields: Vec<String>,
    },
    /// A schema version would not read back from its stored text as the same schema (a bug:
    /// stored, it would make readers see other fields and store a spurious version).
    #[error("version {version} of the inferred schema of topic '{topic}' does not survive storing: {message}")]
    SchemaText {
        topic: String,
        version: u64,
        message: String,
    },
    /// The stored schema versions of a topic could not be read or written.
    #[error("schema versions of topic '{topic}' at {path}: {message}")]
    SchemaStore {
        topic: String,
        path: String,
        message: String,
    },
}

impl DecodeError {
    /// Who has to act: the registry errors are external, a bad configured schema is the user's.
    pub fn origin(&self) -> crate::Origin {
        match self {
            DecodeError::Inference { .. }
            | DecodeError::Schema { .. }
            | DecodeError::NewColumns { .. } => crate::Origin::User,
            DecodeError::SchemaStore { .. } => crate::Origin::External,
            DecodeError::Arrow(_) | DecodeError::SchemaText { .. } => crate::Origin::Internal,
            DecodeError::Registry(e) => e.origin(),
        }
    }
}

/// The result of decoding a buffer.
#[derive(Debug)]
pub struct Decoded {
    /// One row per accepted record, in buffer order, value columns only.
    pub batch: RecordBatch,
    /// Buffer indexes (ascending) of the records that were not decoded, with the cause.
    pub rejected: Vec<(usize, RecordError)>,
}

impl Decoded {
    /// Buffer indexes of the rows of `batch`, in order (all indexes not rejected).
    pub fn accepted_indexes(&self, buffer_len: usize) -> Vec<usize> {
        survivors(buffer_len, self.rejected.iter().map(|(i, _)| *i))
    }
}

/// The indexes `0..n` that are not in `excluded` (ascending): the rows a stage kept.
pub fn survivors(n: usize, excluded: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut excluded = excluded.into_iter().peekable();
    (0..n)
        .filter(|i| {
            if excluded.peek() == Some(i) {
                excluded.next();
                false
            } else {
                true
            }
        })
        .collect()
}

/// Turns the values of a [`RecordBuffer`] into a RecordBatch.
///
/// Contract: `decode` is called with a non-empty buffer; the output schema is the one returned by
/// `schema()` after the call, and changes between calls only when the value schema evolves (a
/// newer compatible Avro writer schema, a JSON schema widened by another partition of the
/// topic); null values (tombstones) are rejected with a cause saying so.
pub trait ValueDecoder: Send {
    fn decode(&mut self, buffer: &RecordBuffer) -> Result<Decoded, DecodeError>;
    /// The value schema, once known (JSON inference needs a first buffer).
    fn schema(&self) -> Option<SchemaRef>;
}

/// The Schema Registry client of a configuration (shared by every decoder of a process, so
/// schemas are fetched once), or `None` when values are neither registry-framed Avro nor JSON
/// Schema.
pub fn registry_for(config: &Config) -> Result<Option<registry::RegistryClient>, DecodeError> {
    let f = &config.formats;
    let settings = match (&f.avro, f.protobuf.as_ref().or(f.json_schema.as_ref())) {
        (Some(crate::config::formats::AvroSource::Registry(settings)), _) => settings,
        (_, Some(settings)) => settings,
        _ => return Ok(None),
    };
    let rc = registry::RegistryConfig::from_settings(settings)?;
    Ok(Some(registry::RegistryClient::try_new(rc)?))
}

/// Builds the value decoder for one topic from the config; `inferred` is the topic's inferred JSON
/// schema shared by its partitions (used when no `value.schema` is declared); `registry` is the
/// shared client from [`registry_for`].
pub fn decoder_for(
    config: &Config,
    topic: &str,
    inferred: Option<std::sync::Arc<shared_schema::TopicSchema>>,
    registry: Option<&registry::RegistryClient>,
) -> Result<Box<dyn ValueDecoder>, DecodeError> {
    let (topic, n) = (topic.to_string(), config.decode_batch_records);
    Ok(
        match (config.input_format, &config.value_schema, inferred) {
            (InputFormat::Raw, _, _) => Box::new(raw::RawDecoder::new()),
            (InputFormat::Json, Some(declared), _) => {
                Box::new(json::JsonDecoder::new(topic, Some(declared.clone()), n))
            }
            (InputFormat::Json, None, Some(shared)) => Box::new(json::JsonDecoder::shared(
                topic,
                shared,
                config.formats.json.evolution,
                n,
            )),
            (InputFormat::Json, None, None) => Box::new(json::JsonDecoder::new(topic, None, n)),
            (InputFormat::ConnectJson, _, _) => Box::new(connect_json::ConnectJsonDecoder::new(
                connect_json::ConnectJsonOptions {
                    schema: config.formats.connect_schema.clone(),
                    batch_records: n,
                    ..Default::default()
                },
            )?),
            (InputFormat::Protobuf, _, _) => match registry {
                Some(client) => Box::new(protobuf::ProtobufDecoder::new(std::sync::Arc::new(
                    client.clone(),
                ))),
                None => {
                    return Err(DecodeError::Schema {
                        what: "Protobuf input".into(),
                        message: "no Schema Registry client".into(),
                    })
                }
            },
            (InputFormat::JsonSchema, _, _) => match registry {
                Some(client) => Box::new(json_schema::JsonSchemaDecoder::new(
                    topic,
                    std::sync::Arc::new(client.clone()),
                    config.formats.compatibility,
                    n,
                )),
                None => {
                    return Err(DecodeError::Schema {
                        what: "JSON Schema input".into(),
                        message: "no Schema Registry client".into(),
                    })
                }
            },
            (InputFormat::Avro, _, _) => {
                let options = avro::AvroDecoderOptions {
                    reader_schema: None,
                    compat: config.formats.compatibility,
                    batch_records: n,
                };
                match (&config.formats.avro, registry) {
                    (Some(crate::config::formats::AvroSource::Fixed(schema)), _) => {
                        Box::new(avro::AvroDecoder::plain(schema, options)?)
                    }
                    (_, Some(client)) => Box::new(avro::AvroDecoder::confluent(
                        std::sync::Arc::new(client.clone()),
                        options,
                    )?),
                    _ => {
                        return Err(DecodeError::Schema {
                            what: "Avro input".into(),
                            message: "no Schema Registry client and no value.avro.schema".into(),
                        })
                    }
                }
            }
        },
    )
}
