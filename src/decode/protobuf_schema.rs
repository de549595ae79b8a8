//! Protobuf schemas of the Confluent Schema Registry: fetched by id with their `references`
//! (imported files, fetched by subject and version, recursively), and compiled into descriptors
//! by protox (pure Rust; the well-known `google/protobuf/*.proto` files ship with it, so a
//! schema may import them without registering them, as Confluent's serializers do by default).
//!
//! A schema text is either a `.proto` file (what Confluent's registry answers) or the base64 of a
//! serialized `FileDescriptorProto` (what Confluent's serializers register, and what some
//! registries and `?format=serialized` answer): both are accepted.
//!
//! [`ProtoSchemas`] abstracts the registry so tests and benchmarks can serve schemas from memory
//! ([`StaticProtoSchemas`]).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use prost::Message;
use prost_reflect::{FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::registry::{RegistryClient, RegistryError, SchemaSource};

/// Deepest chain of references followed (a cycle or a runaway registry stops here).
const MAX_REFERENCE_DEPTH: usize = 32;

/// An imported file of a schema: the import path, and where the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i64,
}

/// A schema as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoSchemaText {
    pub schema: String,
    /// `schemaType` (`PROTOBUF` for these).
    pub schema_type: String,
    pub references: Vec<Reference>,
}

/// Where protobuf schemas come from.
pub trait ProtoSchemas: Send + Sync {
    /// Schema `id` with its references.
    fn by_id(&self, id: u32) -> Result<ProtoSchemaText, RegistryError>;
    /// Version `version` of `subject` (a reference of schema `for_id`, which errors name).
    fn by_subject(
        &self,
        subject: &str,
        version: i64,
        for_id: u32,
    ) -> Result<ProtoSchemaText, RegistryError>;
}

impl ProtoSchemas for RegistryClient {
    fn by_id(&self, id: u32) -> Result<ProtoSchemaText, RegistryError> {
        Ok(proto_text(&*self.schema_by_id(id)?))
    }

    fn by_subject(
        &self,
        subject: &str,
        version: i64,
        for_id: u32,
    ) -> Result<ProtoSchemaText, RegistryError> {
        let reference = crate::decode::registry::SchemaReference {
            name: subject.to_string(),
            subject: subject.to_string(),
            version,
        };
        Ok(proto_text(&*self.referenced(for_id, &reference)?))
    }
}

/// A registry answer as the Protobuf compiler takes it.
fn proto_text(registered: &crate::decode::registry::RegisteredSchema) -> ProtoSchemaText {
    let references = registered
        .references
        .iter()
        .map(|r| Reference {
            name: r.name.clone(),
            subject: r.subject.clone(),
            version: r.version,
        })
        .collect();
    ProtoSchemaText {
        schema: registered.schema.clone(),
        schema_type: registered.schema_type.clone(),
        references,
    }
}

/// Protobuf schemas held in memory (tests, benchmarks).
#[derive(Debug, Default, Clone)]
pub struct StaticProtoSchemas {
    ids: HashMap<u32, ProtoSchemaText>,
    subjects: HashMap<(String, i64), ProtoSchemaText>,
}

impl StaticProtoSchemas {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds schema `id` (`.proto` text) importing `references`.
    pub fn with(mut self, id: u32, proto: &str, references: Vec<Reference>) -> Self {
        self.ids.insert(id, text(proto, references));
        self
    }

    /// Adds version `version` of `subject`.
    pub fn with_subject(mut self, subject: &str, version: i64, proto: &str) -> Self {
        self.subjects
            .insert((subject.to_string(), version), text(proto, Vec::new()));
        self
    }
}

fn text(proto: &str, references: Vec<Reference>) -> ProtoSchemaText {
    ProtoSchemaText {
        schema: proto.to_string(),
        schema_type: "PROTOBUF".to_string(),
        references,
    }
}

fn not_found(id: u32, what: String) -> RegistryError {
    RegistryError::NotFound {
        url: "(static schemas)".to_string(),
        id,
        message: what,
    }
}

impl ProtoSchemas for StaticProtoSchemas {
    fn by_id(&self, id: u32) -> Result<ProtoSchemaText, RegistryError> {
        self.ids
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id, "no such id".into()))
    }

    fn by_subject(&self, s: &str, v: i64, id: u32) -> Result<ProtoSchemaText, RegistryError> {
        self.subjects
            .get(&(s.to_string(), v))
            .cloned()
            .ok_or_else(|| not_found(id, format!("no subject {s} version {v}")))
    }
}

/// Why a schema cannot be used: the registry could not be asked (fails the decode call), or the
/// schema itself is unusable (its records are rejected with this cause).
pub enum LoadError {
    Registry(RegistryError),
    Unusable(String),
}

/// Fetches schema `id` and its references and compiles it; the file of the schema.
pub fn load(source: &dyn ProtoSchemas, id: u32) -> Result<FileDescriptor, LoadError> {
    let main = match source.by_id(id) {
        Ok(s) => s,
        Err(e @ RegistryError::NotFound { .. }) => {
            return Err(LoadError::Unusable(format!("unknown schema id {id}: {e}")))
        }
        Err(e) => return Err(LoadError::Registry(e)),
    };
    if main.schema_type != "PROTOBUF" {
        return Err(LoadError::Unusable(format!(
            "schema id {id} is a {} schema, not Protobuf",
            main.schema_type
        )));
    }
    let main_name = format!("streamx-schema-id-{id}.proto");
    let mut files = HashMap::new();
    let mut pending: Vec<(Reference, usize)> =
        main.references.iter().map(|r| (r.clone(), 1)).collect();
    files.insert(main_name.clone(), main.schema);
    while let Some((r, depth)) = pending.pop() {
        if files.contains_key(&r.name) {
            continue;
        }
        if depth > MAX_REFERENCE_DEPTH {
            return Err(LoadError::Unusable(format!(
                "schema id {id}: references nest deeper than {MAX_REFERENCE_DEPTH}"
            )));
        }
        let s = match source.by_subject(&r.subject, r.version, id) {
            Ok(s) => s,
            Err(e @ RegistryError::NotFound { .. }) => {
                return Err(LoadError::Unusable(format!(
                    "schema id {id}: reference '{}' (subject {} version {}) not found: {e}",
                    r.name, r.subject, r.version
                )))
            }
            Err(e) => return Err(LoadError::Registry(e)),
        };
        pending.extend(s.references.iter().map(|r| (r.clone(), depth + 1)));
        files.insert(r.name.clone(), s.schema);
    }
    compile(&main_name, files).map_err(|e| {
        LoadError::Unusable(format!(
            "schema id {id} is not a usable Protobuf schema: {e}"
        ))
    })
}

/// Compiles `main` out of `files` (name -> `.proto` text or base64 `FileDescriptorProto`) and
/// the well-known types.
pub fn compile(main: &str, files: HashMap<String, String>) -> Result<FileDescriptor, String> {
    let mut chain = ChainFileResolver::new();
    chain.add(Texts(files));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler.open_file(main).map_err(|e| e.to_string())?;
    compiler
        .descriptor_pool()
        .get_file_by_name(main)
        .ok_or_else(|| format!("{main} is missing after compiling"))
}

/// Files by name from the registry's texts.
struct Texts(HashMap<String, String>);

impl FileResolver for Texts {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let Some(text) = self.0.get(name) else {
            return Err(protox::Error::file_not_found(name));
        };
        if let Some(mut proto) = serialized(text) {
            proto.name = Some(name.to_string());
            return Ok(File::from_file_descriptor_proto(proto));
        }
        File::from_source(name, text)
    }
}

/// The `FileDescriptorProto` of a base64 schema text, if it is one.
fn serialized(text: &str) -> Option<prost_types::FileDescriptorProto> {
    let t = text.trim();
    if t.is_empty() || t.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// The message that Confluent message indexes point at: `indexes[0]` among the file's top-level
/// messages, each next one among the previous message's nested messages (declaration order).
pub fn message_at(file: &FileDescriptor, indexes: &[u64]) -> Result<MessageDescriptor, String> {
    let (first, rest) = indexes.split_first().ok_or("no message index")?;
    let mut message = nth(file.messages(), *first).ok_or_else(|| {
        format!(
            "message index {first} is out of range: {} has {} top-level message(s)",
            file.package_name(),
            file.messages().len()
        )
    })?;
    for i in rest {
        message = nth(message.child_messages(), *i).ok_or_else(|| {
            format!(
                "nested message index {i} is out of range in {}",
                message.full_name()
            )
        })?;
    }
    Ok(message)
}

fn nth(mut it: impl Iterator<Item = MessageDescriptor>, i: u64) -> Option<MessageDescriptor> {
    it.nth(usize::try_from(i).ok()?)
}

/// A shared schema source.
pub type SharedProtoSchemas = Arc<dyn ProtoSchemas>;
