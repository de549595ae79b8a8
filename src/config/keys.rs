//! The registry of known configuration keys: one table ([`KEYS`]) with each key's default and a
//! one-line description, the pass-through prefixes ([`PREFIXES`]), aliases ([`canonical`]), the
//! "did you mean" suggestion for unknown keys ([`suggest`]) and the secret test ([`is_secret`]).
//!
//! Keys are case-sensitive, as in Kafka Connect; a key that differs only in case gets a suggestion.

/// One known configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub name: &'static str,
    /// The value used when the key is not set; `None` = required or optional without default.
    pub default: Option<&'static str>,
    /// One line for `--help`-style listings and documentation.
    pub doc: &'static str,
}

const fn key(name: &'static str, default: Option<&'static str>, doc: &'static str) -> KeySpec {
    KeySpec { name, default, doc }
}

/// Every key StreamX knows, including the Kafka Connect keys it accepts and ignores or maps.
pub static KEYS: &[KeySpec] = &[
    // --- the job ---
    key("name", Some("streamx"), "Name of the job; used in the default group.id and client.id."),
    key("topics", None, "Comma-separated topics to consume; exactly one of topics / topics.regex."),
    key("topics.regex", None, "Regular expression of topics to consume (^-anchored; checked with Rust regex syntax at config validation)."),
    key("bootstrap.servers", None, "Kafka brokers to consume from, e.g. localhost:9092 (required)."),
    key("group.id", None, "Kafka consumer group; default streamx-<name>."),
    // --- rotation ---
    key("flush.size", None, "Records per commit of one Kafka partition (>= 1); unset = no record limit."),
    key("rotate.size.bytes", Some("67108864"), "Estimated encoded bytes per commit of one Kafka partition (>= 1024)."),
    key("rotate.interval.ms", None, "Record-time span of a file, also the idle timeout; -1 = unset."),
    key("rotate.schedule.interval.ms", None, "Wall-clock rotation boundaries (multiples since the epoch, UTC); -1 = unset."),
    // --- output ---
    key("topics.dir", Some("topics"), "Directory inside store.url under which each topic gets its files."),
    key("store.url", None, "Where files go: a path, file://, s3://bucket, gs://bucket or az://container (alias s3.url)."),
    key("format.class", Some("parquet"), "Output format: parquet, avro, json (JSON lines), csv or raw (Kafka Connect class names accepted; alias format)."),
    key("avro.codec", Some("null"), "Avro output compression: null, deflate, snappy or zstandard."),
    key("compression.type", Some("none"), "JSON lines output compression: none or gzip (alias s3.compression.type)."),
    key("compression.level", Some("6"), "gzip level of JSON lines output, 0-9."),
    key("csv.header", Some("true"), "CSV output: write a header line."),
    key("csv.delimiter", Some(","), "CSV output: field delimiter, one character (\\t for tab)."),
    key("csv.quote", Some("\""), "CSV output: quote character."),
    key("csv.quote.style", Some("necessary"), "CSV output: quote only when needed (necessary) or every field (always)."),
    key("parquet.codec.level", None, "Parquet compression level (zstd 1-22, gzip 0-9); unset = the codec's default."),
    key("parquet.row.group.bytes", Some("67108864"), "Parquet: estimated bytes after which a row group closes."),
    key("parquet.page.bytes", Some("1048576"), "Parquet: data page size in bytes."),
    key("parquet.dictionary", Some("true"), "Parquet: dictionary encoding."),
    key("parquet.dictionary.page.bytes", Some("1048576"), "Parquet: dictionary size per column chunk in bytes before the column falls back to plain encoding."),
    key("parquet.statistics", Some("page"), "Parquet statistics: none, chunk or page."),
    key("parquet.codec", Some("snappy"), "Parquet compression: snappy, zstd, gzip, lz4 or none."),
    key("filename.offset.zero.pad.width", Some("10"), "Digits of the zero-padded offsets in file names (1..=20)."),
    // --- input ---
    key("input.format", Some("json"), "How record values are decoded: json, connect-json, avro, json-schema or raw (alias value.converter; Kafka Connect class names accepted)."),
    key("value.converter.schema.registry.url", None, "Avro / JSON Schema input: Schema Registry URL(s), comma-separated."),
    key("value.converter.basic.auth.credentials.source", None, "Avro / JSON Schema input: USER_INFO or URL (Confluent semantics)."),
    key("value.converter.basic.auth.user.info", None, "Avro / JSON Schema input: user:password for the Schema Registry (secret)."),
    key("value.converter.bearer.auth.credentials.source", None, "Avro / JSON Schema input: STATIC_TOKEN to send value.converter.bearer.auth.token to the Schema Registry."),
    key("value.converter.bearer.auth.token", None, "Avro / JSON Schema input: bearer token for the Schema Registry (secret)."),
    key("value.converter.schema.registry.ssl.truststore.location", None, "Avro / JSON Schema input: CA certificates trusted for an https Schema Registry, a PEM or PKCS12 file (JKS refused); unset = the public web roots."),
    key("value.converter.schema.registry.ssl.truststore.password", None, "Avro / JSON Schema input: password of a PKCS12 Schema Registry truststore (secret)."),
    key("value.converter.schema.registry.ssl.truststore.type", None, "Avro / JSON Schema input: PEM or PKCS12; unset = guessed from the file."),
    key("value.converter.schema.registry.ssl.keystore.location", None, "Avro / JSON Schema input: client certificate and key for the Schema Registry (mutual TLS), a PEM file holding both or a PKCS12 file."),
    key("value.converter.schema.registry.ssl.keystore.password", None, "Avro / JSON Schema input: password of a PKCS12 Schema Registry keystore (secret)."),
    key("value.converter.schema.registry.ssl.keystore.type", None, "Avro / JSON Schema input: PEM or PKCS12; unset = guessed from the file."),
    key("value.converter.schema.registry.ssl.key.password", None, "Avro / JSON Schema input: password of an encrypted PEM private key in the Schema Registry keystore (secret)."),
    key("value.converter.schema.registry.ssl.endpoint.identification.algorithm", Some("https"), "Avro / JSON Schema input: https = the registry certificate must name the URL's host (the only mode supported)."),
    key("value.avro.schema", None, "Avro input without registry: the one Avro schema (JSON) of plain Avro values."),
    key("value.connect.schema", None, "Connect JSON input: the output schema as Connect schema JSON; unset = the first record's."),
    key("behavior.on.null.values", Some("fail"), "Tombstones: fail (a bad record, per errors.tolerance), ignore (skip) or write (a row of nulls)."),
    key("schema.compatibility", Some("NONE"), "Avro schema evolution: NONE, BACKWARD, FORWARD or FULL (kafka-connect-hdfs meanings)."),
    key("store.kafka.keys", Some("false"), "Write the record key as column _key (binary)."),
    key("store.kafka.headers", Some("false"), "Write the record headers as column _headers (list of key/value)."),
    key("value.schema", None, "Declared schema of JSON values, e.g. `id BIGINT, name STRING`; unset = inferred."),
    key("include.kafka.metadata", Some("false"), "Add _topic, _partition, _offset, _timestamp, _key and _headers columns."),
    key("value.schema.hints", None, "Types fixed for some inferred JSON columns, e.g. `ts TIMESTAMP, amount DECIMAL(10,2)`; the rest is inferred."),
    key("json.schema.evolution", Some("add-new-columns"), "Inferred JSON schema evolution: add-new-columns, rescue, fail-on-new-columns or none."),
    key("json.schema.max.fields", Some("1000"), "Most fields (at every level) an inferred JSON schema grows to; keys past it go to the rescued-data column (1..=100000)."),
    key("json.schema.max.versions", Some("100"), "Most versions an inferred JSON schema has per topic; past it the schema is frozen and new fields go to the rescued-data column (1..=100000)."),
    key("json.rescued.data.column", Some("_rescued_data"), "Column keeping, as JSON text, the fields of an inferred-schema JSON record that fit no column."),
    key("decode.batch.records", Some("2048"), "Records decoded together (1..=1000000)."),
    // --- errors ---
    key("errors.tolerance", Some("none"), "none: stop on a bad record; all: skip it (and send it to the DLQ if set)."),
    key("errors.deadletterqueue.topic.name", None, "Topic that receives records skipped under errors.tolerance=all."),
    key("errors.deadletterqueue.context.headers.enable", Some("true"), "Accepted for Kafka Connect compatibility; StreamX always adds the error headers."),
    key("errors.log.enable", Some("true"), "Accepted for Kafka Connect compatibility; skipped records are always logged."),
    // --- commit ---
    key("commit.fenced.backoff.ms", Some("30000"), "Pause of a partition that lost a commit race before it is recovered again."),
    key("commit.history.keep", Some("10"), "Commit records kept per Kafka partition; older ones are pruned (>= 2)."),
    key("staging.cleanup.age.ms", Some("21600000"), "Age after which a staged file of this job that no commit explains is deleted (1000..=604800000, at most 7 days; other jobs' files wait 7 days); a writer commits any file it staged before half this age."),
    key("commit.takeover.job", None, "Name of another job whose commit chains this job may continue (that job must no longer run); without it, a topic partition whose newest commit another job made is refused."),
    // --- compaction (src/compact/config.rs) ---
    key("compact.target.file.size.bytes", Some("134217728"), "streamx compact: the size compacted files aim at (outputs land within 0.75-1.5x of it, except one remainder per directory)."),
    key("compact.min.input.files", Some("5"), "streamx compact: small files a directory needs before it is compacted (>= 2)."),
    key("compact.small.file.ratio", Some("0.5"), "streamx compact: a file below this fraction of the target size is small (0 < r <= 1)."),
    key("compact.min.age.ms", Some("3600000"), "streamx compact: a directory is compacted only when no file was committed into it for this long."),
    key("compact.parallelism", Some("2"), "streamx compact: directories compacted at once (1..=256)."),
    key("compact.max.bytes.per.run", Some("107374182400"), "streamx compact: input bytes one run takes on at most (whole directories)."),
    key("compact.retention.ms", Some("86400000"), "streamx compact: compaction records older than this are pruned, the newest of each directory kept (>= 60000)."),
    key("compact.input.grace.ms", Some("3600000"), "streamx compact: compacted inputs are moved out of their directory into _streamx/compaction-trash and deleted by a later run once their swap is older than this (streamx query can still read an input it listed before the swap); 0 = at the next run."),
    key("compact.hive.swap", Some("files"), "streamx compact with hive.integration=true: files = swap files inside the partition directory (Hive readers may see a row twice during one publish -> delete step); location = point the partition at the staged outputs with alter_partition for the swap, then back (metastore readers never see a row twice)."),
    // --- Hive Metastore (src/hive/config.rs) ---
    key("hive.integration", Some("false"), "Register a Hive table per topic and its partitions after every commit."),
    key("hive.metastore.uris", None, "Hive metastores, thrift://host:port[,thrift://host2:port]; required with hive.integration=true."),
    key("hive.database", Some("default"), "Hive database of the tables; created if missing."),
    key("hive.table.name", None, "Hive table name; default the topic name, lower-cased, other than [a-z0-9_] -> _."),
    key("hive.location.scheme.map", Some("s3=s3a"), "Store URL schemes rewritten for Hive table locations, from=to,... (s3=s3 keeps s3://)."),
    key("hive.table.properties", None, "Extra table properties (TBLPROPERTIES), k=v,k2=v2."),
    key("hive.retry.backoff.max.ms", Some("30000"), "Longest pause between registration attempts while the metastore is unreachable."),
    // --- Kafka Connect keys accepted and ignored or mapped ---
    key("connector.class", None, "Kafka Connect: one of StreamX's connector class names (com.qubole.streamx.s3.S3SinkConnector, io.confluent.connect.s3.S3SinkConnector, io.confluent.connect.hdfs.HdfsSinkConnector or their short names)."),
    key("tasks.max", Some("1"), "Kafka Connect: consumers the job runs in one worker process (1..=1024); `streamx ingest` runs one."),
    key("s3.part.size", Some("26214400"), "Confluent S3 sink: multipart part size in bytes (5 MiB..=5 GiB); checked, but StreamX uploads each file in one request."),
    key("hadoop.conf.dir", None, "The original StreamX's Hadoop config directory: S3 credentials, endpoint and path style read from its core-site.xml / hdfs-site.xml fs.s3a.* keys, and its fs.s3a.encryption.* / server-side-encryption* settings (store.* options win; fs.s3a.acl.default other than Private, CSE and per-bucket security settings refused)."),
    key("key.converter", None, "Accepted; keys are written as bytes in _key; only meaningful in a later version."),
    key("value.converter.schemas.enable", None, "JSON input: true = Kafka Connect envelopes (default for the JsonConverter class name), false = plain JSON."),
    key("key.converter.schemas.enable", None, "Accepted; only meaningful in a later version."),
    key("storage.class", None, "Kafka Connect only; ignored (the store follows from store.url)."),
    key("partitioner.class", Some("Default"), "Default (partition=<kafka partition>), Field, TimeBased, Hourly or Daily; Connect class names accepted."),
    key("partition.by", None, "Partition rule in SQL: expressions with names, e.g. `region, date_format(_timestamp, '%Y-%m-%d') AS dt`."),
    key("partition.by.file", None, "A .sql file holding the partition.by rule (see sql/)."),
    key("partition.field.name", None, "Field partitioner: comma-separated fields; nested ones as a.b.c."),
    key("path.format", None, "TimeBased partitioner: Joda-style directory pattern, e.g. 'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH."),
    key("partition.duration.ms", None, "TimeBased partitioner: bucket length in milliseconds (>= 1)."),
    key("locale", Some("en"), "TimeBased partitioner: locale of month/day names in path.format (English names only)."),
    key("timezone", Some("UTC"), "Time zone of time-based directories (IANA name, e.g. Europe/Berlin)."),
    key("timestamp.extractor", Some("Record"), "Record time for time partitioning and rotate.interval.ms: Record, RecordField or Wallclock."),
    key("timestamp.field", None, "RecordField extractor: the field (nested: a.b) holding epoch time or an ISO-8601 string."),
    key("timestamp.field.unit", Some("ms"), "RecordField extractor: unit of numeric timestamps, ms or s."),
    key("transform.sql", None, "SQL applied to every batch before partitioning: SELECT ... FROM records [WHERE ...]."),
    key("metrics.listen", None, "host:port where `streamx ingest` serves GET /metrics (Prometheus text), e.g. 127.0.0.1:9464; unset = not served (the worker serves /metrics on its REST port)."),
    key("memory.budget.bytes", Some("536870912"), "Memory all open files of a process share; when reached the largest are flushed first (>= 1048576). A job run by streamx worker draws on the worker's memory.budget.bytes instead."),
    key("s3.bucket.name", None, "Kafka Connect S3: when store.url is unset, store.url = s3://<bucket>."),
    key("s3.region", None, "Kafka Connect S3: mapped to the store option region."),
    key("aws.access.key.id", None, "Kafka Connect S3: mapped to the store option access_key_id."),
    key("aws.secret.access.key", None, "Kafka Connect S3: mapped to the store option secret_access_key (secret)."),
    key("s3.ssea.name", None, "Kafka Connect S3: server-side encryption of every object StreamX writes to S3 (staged, published by copy, commit records, compaction outputs, schema versions): AES256, aws:kms or aws:kms:dsse; unset or empty = the bucket's default."),
    key("s3.sse.kms.key.id", None, "Kafka Connect S3: the KMS key of s3.ssea.name=aws:kms / aws:kms:dsse (refused with any other)."),
    key("s3.sse.customer.key", None, "Kafka Connect S3: SSE-C, the base64 256-bit key every object is written and read with (secret)."),
    key("s3.sse.customer.algorithm", None, "Kafka Connect S3: SSE-C algorithm; AES256 only, and only with s3.sse.customer.key."),
    key("s3.acl.canned", None, "Kafka Connect S3: only private (what every object gets); other canned ACLs are refused (object_store cannot send x-amz-acl): use the bucket's Object Ownership and policy instead."),
];

/// Keys that Kafka Connect sinks accept but that mean nothing to StreamX: accepted with one log
/// line naming the reason, so the Confluent and kafka-connect-hdfs quickstart configs run as
/// they are. `(key, reason)`.
pub const NO_MEANING: &[(&str, &str)] = &[
    (
        "schema.generator.class",
        "StreamX derives Hive schemas from the data itself",
    ),
    (
        "schema.cache.size",
        "StreamX keeps every schema it has seen",
    ),
    ("hadoop.home", "StreamX needs no Hadoop installation"),
    (
        "logs.dir",
        "StreamX keeps no write-ahead log: commits are objects in the store",
    ),
    (
        "s3.part.retries",
        "retries follow the object store client's policy",
    ),
    (
        "s3.retry.backoff.ms",
        "retries follow the object store client's policy",
    ),
    (
        "retry.backoff.ms",
        "retries follow the object store client's policy",
    ),
    (
        "enhanced.avro.schema.support",
        "Avro schemas are always read in full",
    ),
    (
        "connect.meta.data",
        "Connect metadata is not written into Avro schemas",
    ),
];

/// Why `key` is accepted without effect, when it is one of [`NO_MEANING`].
pub fn no_meaning(key: &str) -> Option<&'static str> {
    NO_MEANING
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

/// Logs that `key` is ignored, once per process (workers validate the same configs often).
pub fn log_ignored_once(key: &str, why: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|k| k == key) {
        seen.push(key.to_string());
        tracing::info!(key, "config key accepted and ignored: {why}");
    }
}

/// The `connector.class` values that mean StreamX (Kafka Connect sink class names users have in
/// their configs, and short names). Compared ignoring case.
pub const CONNECTOR_CLASSES: &[&str] = &[
    "com.qubole.streamx.s3.S3SinkConnector",
    "io.confluent.connect.s3.S3SinkConnector",
    "io.confluent.connect.hdfs.HdfsSinkConnector",
    "S3SinkConnector",
    "HdfsSinkConnector",
    "S3Sink",
    "StreamX",
];

/// True when `class` is one of [`CONNECTOR_CLASSES`] (ignoring case).
pub fn is_connector_class(class: &str) -> bool {
    CONNECTOR_CLASSES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(class.trim()))
}

/// Prefixes whose keys are passed through unchecked: `consumer.*` to the librdkafka consumer,
/// `producer.*` to the dead letter queue producer, `store.*` to the object store.
pub const PREFIXES: &[&str] = &["consumer.", "producer.", "store."];

/// Alternative spellings, mapped to the canonical key: `(alias, canonical)`.
pub const ALIASES: &[(&str, &str)] = &[
    ("s3.url", "store.url"),
    ("value.converter", "input.format"),
    ("format", "format.class"),
    ("s3.compression.type", "compression.type"),
];

/// The canonical name of `key` (itself unless it is an alias).
pub fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, canonical)| canonical)
}

/// The registry entry of `key` (after resolving aliases).
pub fn spec(key: &str) -> Option<&'static KeySpec> {
    let key = canonical(key);
    KEYS.iter().find(|k| k.name == key)
}

/// The default value of `key`, if it has one.
pub fn default_of(key: &str) -> Option<&'static str> {
    spec(key).and_then(|k| k.default)
}

/// True for a registry key or an alias of one (not for prefixed pass-through keys).
pub fn is_known(key: &str) -> bool {
    spec(key).is_some()
}

/// The pass-through prefix of `key` (`consumer.`, `producer.`, `store.`), when it has one and
/// something follows it. `store.url` is a known key, not a store option.
pub fn prefix_of(key: &str) -> Option<&'static str> {
    if is_known(key) {
        return None;
    }
    PREFIXES
        .iter()
        .copied()
        .find(|p| key.len() > p.len() && key.starts_with(p))
}

/// True when the configuration accepts `key`: known, an alias, or under a pass-through prefix.
pub fn is_accepted(key: &str) -> bool {
    is_known(key)
        || prefix_of(key).is_some()
        || super::kafka_security::is_security_key(key)
        || is_key_converter_registry_key(key)
}

/// `key.converter.<x>` where `value.converter.<x>` is a Schema Registry key: accepted as Connect
/// configs carry them (keys are written as bytes, so they are not used).
fn is_key_converter_registry_key(key: &str) -> bool {
    key.strip_prefix("key.converter.").is_some_and(|rest| {
        (rest.starts_with("schema.registry.")
            || rest.starts_with("basic.auth.")
            || rest.starts_with("bearer.auth."))
            && is_known(&format!("value.converter.{rest}"))
    })
}

/// "Did you mean": the known key or alias closest to `unknown` by edit distance (ignoring case),
/// when it is within `max(2, len/4)` edits. A misspelt prefix (`consumr.x`) suggests the prefixed
/// key (`consumer.x`).
pub fn suggest(unknown: &str) -> Option<String> {
    let lower = unknown.to_lowercase();
    let limit = (lower.chars().count() / 4).max(2);
    let candidates = KEYS
        .iter()
        .map(|k| k.name)
        .chain(ALIASES.iter().map(|(alias, _)| *alias));
    let best = candidates
        .map(|c| (levenshtein(&lower, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    if let Some((_, name)) = best {
        return Some(name.to_string());
    }
    // A misspelt pass-through prefix.
    let (head, rest) = unknown.split_once('.')?;
    if rest.is_empty() {
        return None;
    }
    let head = head.to_lowercase();
    PREFIXES
        .iter()
        .map(|p| (levenshtein(&head, p.trim_end_matches('.')), p))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| format!("{p}{rest}"))
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// True when the value of `key` must never be printed: passwords, secrets, tokens, JAAS configs,
/// access keys, account keys, credentials and Azure SAS keys/tokens.
pub fn is_secret(key: &str) -> bool {
    const PARTS: &[&str] = &[
        "password",
        "user.info",
        "secret",
        "token",
        "sasl.jaas",
        "access.key",
        "access_key",
        "account_key",
        "credentials",
        "ssl.key.pem",
        "ssl.keystore.key",
        "private",
        "customer.key",
        "customer_key",
    ];
    let lower = key.to_lowercase();
    // `sas` only as a whole word, so that `sasl.mechanism` stays visible.
    PARTS.iter().any(|p| lower.contains(p))
        || lower.split(['.', '_', '-']).any(|word| word == "sas")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_names_and_docs() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(!k.doc.is_empty(), "{} has a doc", k.name);
            assert!(
                KEYS[i + 1..].iter().all(|o| o.name != k.name),
                "{} is listed once",
                k.name
            );
            assert!(prefix_of(k.name).is_none());
        }
        for (alias, canonical) in ALIASES {
            assert!(is_known(canonical), "{alias} points at a known key");
            assert!(
                KEYS.iter().all(|k| k.name != *alias),
                "{alias} is not also a key"
            );
        }
    }

    #[test]
    fn aliases() {
        assert_eq!(canonical("s3.url"), "store.url");
        assert_eq!(canonical("value.converter"), "input.format");
        assert_eq!(canonical("format"), "format.class");
        assert_eq!(canonical("flush.size"), "flush.size");
        assert_eq!(canonical("whatever"), "whatever");
        assert!(is_known("s3.url") && is_known("format"));
    }

    #[test]
    fn defaults() {
        assert_eq!(default_of("name"), Some("streamx"));
        assert_eq!(default_of("rotate.size.bytes"), Some("67108864"));
        assert_eq!(default_of("format"), Some("parquet"));
        assert_eq!(default_of("value.converter"), Some("json"));
        assert_eq!(default_of("topics"), None);
        assert_eq!(default_of("nope"), None);
    }

    #[test]
    fn known_and_prefixed() {
        assert!(is_known("flush.size"));
        assert!(!is_known("consumer.fetch.min.bytes"));
        assert!(is_accepted("consumer.fetch.min.bytes"));
        assert!(is_accepted("store.endpoint"));
        assert_eq!(prefix_of("producer.acks"), Some("producer."));
        assert_eq!(prefix_of("store.url"), None);
        assert!(!is_accepted("consumer."));
        assert!(!is_accepted("flush.sise"));
    }

    #[test]
    fn levenshtein_distance() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("flush.sise", "flush.size"), 1);
        assert_eq!(levenshtein("été", "ete"), 2);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("flush.sise").as_deref(), Some("flush.size"));
        assert_eq!(suggest("Flush.Size").as_deref(), Some("flush.size"));
        assert_eq!(suggest("topic").as_deref(), Some("topics"));
        assert_eq!(
            suggest("bootstrap.server").as_deref(),
            Some("bootstrap.servers")
        );
        assert_eq!(
            suggest("rotate.intervall.ms").as_deref(),
            Some("rotate.interval.ms")
        );
        assert_eq!(suggest("s3.ur").as_deref(), Some("s3.url"));
        assert_eq!(
            suggest("consumr.auto.offset.reset").as_deref(),
            Some("consumer.auto.offset.reset")
        );
        assert_eq!(suggest("completely.unrelated.thing"), None);
        assert_eq!(suggest("xyz"), None);
    }

    #[test]
    fn secrets() {
        for k in [
            "consumer.sasl.password",
            "consumer.ssl.key.password",
            "consumer.sasl.jaas.config",
            "sasl.password",
            "sasl.jaas.config",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "ssl.keystore.key",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "aws.secret.access.key",
            "aws.access.key.id",
            "store.secret_access_key",
            "store.access_key_id",
            "store.token",
            "store.azure_storage_account_key",
            "store.sas_token",
            "store.azure_storage_sas_key",
            "store.google_application_credentials",
            "store.SESSION_TOKEN",
        ] {
            assert!(is_secret(k), "{k} is secret");
        }
        for k in [
            "consumer.sasl.mechanism",
            "consumer.sasl.username",
            "security.protocol",
            "ssl.truststore.location",
            "store.url",
            "store.region",
            "bootstrap.servers",
            "flush.size",
        ] {
            assert!(!is_secret(k), "{k} is not secret");
        }
    }
}
