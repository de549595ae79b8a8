//! Tests of [`Config::from_raw`](super::Config::from_raw): defaults, every typed key, unknown keys
//! with suggestions, error messages, aliases, Kafka Connect class names and conflicts.

use std::time::Duration;

use super::*;

const BASE: &[(&str, &str)] = &[
    ("topics", "orders"),
    ("bootstrap.servers", "localhost:9092"),
    ("store.url", "/tmp/out"),
];

fn raw_with(extra: &[(&str, &str)]) -> RawConfig {
    let mut raw = RawConfig::default();
    for (k, v) in BASE.iter().chain(extra) {
        raw.set(k, v, Source::Override);
    }
    raw
}

pub(super) fn ok(extra: &[(&str, &str)]) -> Config {
    Config::from_raw(&raw_with(extra)).expect("valid config")
}

pub(super) fn err(extra: &[(&str, &str)]) -> ConfigError {
    Config::from_raw(&raw_with(extra)).expect_err("invalid config")
}

fn without(key: &str, extra: &[(&str, &str)]) -> ConfigError {
    let mut raw = raw_with(extra);
    raw.entries.remove(key);
    Config::from_raw(&raw).expect_err("invalid config")
}

#[test]
fn defaults() {
    let c = ok(&[]);
    assert_eq!(c.name, "streamx");
    assert_eq!(c.group_id, "streamx-streamx");
    assert_eq!(c.topics, TopicSelection::List(vec!["orders".into()]));
    assert_eq!(c.start_from, StartFrom::Earliest);
    assert_eq!(c.rotation.flush_size, None);
    assert_eq!(c.rotation.max_bytes, Some(67_108_864));
    assert_eq!(c.rotation.interval, None);
    assert_eq!(c.topics_dir, "topics");
    assert_eq!(c.format, OutputFormat::Parquet);
    assert_eq!(c.parquet_codec, ParquetCodec::Snappy);
    assert_eq!(c.input_format, InputFormat::Json);
    assert!(c.value_schema.is_none());
    assert!(!c.include_kafka_metadata);
    assert_eq!(c.errors_tolerance, ErrorTolerance::None);
    assert_eq!(c.dlq_topic, None);
    assert_eq!(c.offset_pad_width, 10);
    assert_eq!(c.decode_batch_records, 2048);
    assert_eq!(c.fenced_backoff, Duration::from_secs(30));
}

#[test]
fn unknown_key_with_suggestion_comes_first() {
    let e = err(&[("flush.sise", "10"), ("parquet.codec", "brotli")]);
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, suggestion: Some(s) } if key == "flush.sise" && s == "flush.size"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "unknown config key 'flush.sise' (did you mean 'flush.size'?)"
    );
    let e = err(&[("zzzz.qqqq.wwww", "1")]);
    assert_eq!(e.to_string(), "unknown config key 'zzzz.qqqq.wwww'");
}

#[test]
fn bad_value_names_key_value_and_allowed() {
    let e = err(&[("parquet.codec", "brotli9")]).to_string();
    assert!(
        e.contains("parquet.codec") && e.contains("brotli9") && e.contains("snappy"),
        "{e}"
    );
    let e = err(&[("flush.size", "0")]).to_string();
    assert!(
        e.contains("flush.size") && e.contains("\"0\"") && e.contains(">= 1"),
        "{e}"
    );
    let e = err(&[("rotate.size.bytes", "100")]).to_string();
    assert!(e.contains(">= 1024"), "{e}");
    let e = err(&[("filename.offset.zero.pad.width", "21")]).to_string();
    assert!(e.contains("from 1 to 20"), "{e}");
    let e = err(&[("decode.batch.records", "lots")]).to_string();
    assert!(
        e.contains("decode.batch.records") && e.contains("lots"),
        "{e}"
    );
    let e = err(&[("include.kafka.metadata", "yes")]).to_string();
    assert!(e.contains("true or false"), "{e}");
    let e = err(&[("errors.tolerance", "some")]).to_string();
    assert!(e.contains("none") && e.contains("all"), "{e}");
    let e = err(&[("rotate.interval.ms", "0")]).to_string();
    assert!(e.contains("-1 for unset"), "{e}");
    let e = err(&[("consumer.auto.offset.reset", "middle")]).to_string();
    assert!(
        e.contains("consumer.auto.offset.reset") && e.contains("earliest"),
        "{e}"
    );
    let e = err(&[("topics.dir", "/")]).to_string();
    assert!(e.contains("topics.dir"), "{e}");
}

#[test]
fn numbers_and_intervals() {
    let c = ok(&[
        ("flush.size", "500"),
        ("rotate.size.bytes", "1024"),
        ("rotate.interval.ms", "60000"),
        ("rotate.schedule.interval.ms", "-1"),
        ("filename.offset.zero.pad.width", "20"),
        ("decode.batch.records", "1000000"),
        ("commit.fenced.backoff.ms", "0"),
    ]);
    assert_eq!(c.rotation.flush_size, Some(500));
    assert_eq!(c.rotation.max_bytes, Some(1024));
    assert_eq!(c.rotation.interval, Some(Duration::from_secs(60)));
    assert_eq!(c.rotation.schedule_interval, None);
    assert_eq!(c.offset_pad_width, 20);
    assert_eq!(c.decode_batch_records, 1_000_000);
    assert_eq!(c.fenced_backoff, Duration::ZERO);
}

#[test]
fn topics_and_regex() {
    let c = ok(&[("topics", " a , b,,a, c ,")]);
    assert_eq!(
        c.topics,
        TopicSelection::List(vec!["a".into(), "b".into(), "c".into()])
    );
    let c = Config::from_raw(&{
        let mut raw = raw_with(&[("topics.regex", "logs-.*")]);
        raw.entries.remove("topics");
        raw
    })
    .expect("valid");
    assert_eq!(c.topics, TopicSelection::Regex("^logs-.*".into()));
    let e = err(&[("topics.regex", "^x")]);
    assert!(matches!(e, ConfigError::Conflict(_)), "{e:?}");
    let e = Config::from_raw(&{
        let mut raw = raw_with(&[("topics.regex", "logs-(a|b")]);
        raw.entries.remove("topics");
        raw
    })
    .expect_err("an unclosed group is not a pattern");
    let text = e.to_string();
    assert!(
        matches!(&e, ConfigError::InvalidValue { key, .. } if key == "topics.regex"),
        "{e:?}"
    );
    assert!(
        text.contains("logs-(a|b") && text.contains("unclosed group"),
        "names the value and the regex error: {text}"
    );
    let e = without("topics", &[]);
    assert!(
        matches!(&e, ConfigError::Missing { key, .. } if key == "topics"),
        "{e:?}"
    );
    let e = err(&[("topics", " , ")]);
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e:?}");
    // An empty value counts as unset.
    let c = ok(&[
        ("topics.regex", ""),
        ("errors.deadletterqueue.topic.name", ""),
    ]);
    assert!(matches!(c.topics, TopicSelection::List(_)));
    assert_eq!(c.dlq_topic, None);
}

#[test]
fn required_keys() {
    let e = without("bootstrap.servers", &[]).to_string();
    assert!(
        e.contains("bootstrap.servers") && e.contains("localhost:9092"),
        "{e}"
    );
    let e = without("store.url", &[]).to_string();
    assert!(e.contains("store.url") && e.contains("s3://bucket"), "{e}");
}

#[test]
fn group_id_and_name() {
    let c = ok(&[("name", "clicks")]);
    assert_eq!(c.group_id, "streamx-clicks");
    let c = ok(&[("name", "clicks"), ("group.id", "g1")]);
    assert_eq!(c.group_id, "g1");
    let c = ok(&[("name", "commandes-é-日本")]);
    assert_eq!(c.group_id, "streamx-commandes-é-日本");
    for bad in ["a\0b", "a\nb", "a\u{7f}b", "a\u{85}b"] {
        let e = err(&[("name", bad)]);
        assert_eq!(e.keys(), vec!["name".to_string()]);
        assert!(e.to_string().contains("control characters"), "{e}");
    }
}

#[test]
fn prefixed_pass_through() {
    let c = ok(&[
        ("consumer.auto.offset.reset", "latest"),
        ("consumer.fetch.min.bytes", "1"),
        ("consumer.override.max.poll.interval.ms", "600000"),
        ("producer.acks", "all"),
        ("store.endpoint", "http://127.0.0.1:9000"),
        ("store.allow_http", "true"),
    ]);
    assert_eq!(c.start_from, StartFrom::Latest);
    assert_eq!(c.consumer_overrides["auto.offset.reset"], "latest");
    assert_eq!(c.consumer_overrides["fetch.min.bytes"], "1");
    assert_eq!(c.consumer_overrides["max.poll.interval.ms"], "600000");
    assert_eq!(c.producer_overrides["acks"], "all");
    assert_eq!(c.store_options["endpoint"], "http://127.0.0.1:9000");
    assert_eq!(c.store_options["allow_http"], "true");
    assert!(!c.store_options.contains_key("url"));
    for (reset, want) in [
        ("smallest", StartFrom::Earliest),
        ("END", StartFrom::Latest),
    ] {
        assert_eq!(
            ok(&[("consumer.auto.offset.reset", reset)]).start_from,
            want
        );
    }
}

#[test]
fn aliases() {
    let mut raw = raw_with(&[
        ("s3.url", "s3://b/p"),
        ("format", "RAW"),
        ("value.converter", "bytes"),
    ]);
    raw.entries.remove("store.url");
    // `set` already replaced store.url by its alias.
    let c = Config::from_raw(&raw).expect("valid");
    assert_eq!(c.store_url, "s3://b/p");
    assert_eq!(c.format, OutputFormat::Raw);
    assert_eq!(c.input_format, InputFormat::Raw);
    // Errors name the key as spelt.
    let e = err(&[("format", "orc")]).to_string();
    assert!(
        e.contains("'format'") && e.contains("orc") && e.contains("parquet, avro"),
        "{e}"
    );
}

#[test]
fn format_and_converter_class_names() {
    for name in [
        "parquet",
        "io.confluent.connect.s3.format.parquet.ParquetFormat",
        "io.confluent.connect.hdfs.parquet.ParquetFormat",
        "com.qubole.streamx.parquet.ParquetFormat",
    ] {
        assert_eq!(
            ok(&[("format.class", name)]).format,
            OutputFormat::Parquet,
            "{name}"
        );
    }
    for name in [
        "raw",
        "ByteArray",
        "com.qubole.streamx.SourceFormat",
        "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
    ] {
        let c = ok(&[("format.class", name), ("input.format", "raw")]);
        assert_eq!(c.format, OutputFormat::Raw, "{name}");
    }
    for (name, want) in [
        ("JSON", InputFormat::Json),
        // Kafka Connect's JsonConverter means envelopes unless schemas.enable=false.
        (
            "org.apache.kafka.connect.json.JsonConverter",
            InputFormat::ConnectJson,
        ),
        (
            "org.apache.kafka.connect.storage.StringConverter",
            InputFormat::Raw,
        ),
        (
            "org.apache.kafka.connect.converters.ByteArrayConverter",
            InputFormat::Raw,
        ),
        ("com.qubole.streamx.ByteArrayConverter", InputFormat::Raw),
    ] {
        assert_eq!(
            ok(&[("value.converter", name)]).input_format,
            want,
            "{name}"
        );
    }
    let c = ok(&[
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ]);
    assert_eq!(c.input_format, InputFormat::Json);
    let c = ok(&[
        ("value.converter", "json"),
        ("value.converter.schemas.enable", "true"),
    ]);
    assert_eq!(c.input_format, InputFormat::ConnectJson);
    let e = err(&[("value.converter", "io.confluent.connect.avro.AvroConverter")]).to_string();
    assert!(e.contains("value.converter.schema.registry.url"), "{e}");
    let c = ok(&[
        ("value.converter", "io.confluent.connect.avro.AvroConverter"),
        (
            "value.converter.schema.registry.url",
            "http://registry:8081",
        ),
    ]);
    assert_eq!(c.input_format, InputFormat::Avro);
    for (name, want) in [
        (
            "io.confluent.connect.s3.format.avro.AvroFormat",
            OutputFormat::Avro,
        ),
        (
            "io.confluent.connect.hdfs.avro.AvroFormat",
            OutputFormat::Avro,
        ),
        (
            "io.confluent.connect.s3.format.json.JsonFormat",
            OutputFormat::Json,
        ),
        ("csv", OutputFormat::Csv),
    ] {
        assert_eq!(ok(&[("format.class", name)]).format, want, "{name}");
    }
}

#[test]
fn conflicts() {
    let e = err(&[("format.class", "raw")]).to_string();
    assert!(e.contains("needs input.format=raw"), "{e}");
    let e = err(&[("errors.deadletterqueue.topic.name", "dlq")]).to_string();
    assert!(e.contains("errors.tolerance=all"), "{e}");
    let c = ok(&[
        ("errors.tolerance", "ALL"),
        ("errors.deadletterqueue.topic.name", "dlq"),
    ]);
    assert_eq!(
        (c.errors_tolerance, c.dlq_topic.as_deref()),
        (ErrorTolerance::All, Some("dlq"))
    );
    let e = err(&[("input.format", "raw"), ("value.schema", "id INT")]);
    assert!(matches!(e, ConfigError::Conflict(_)), "{e:?}");
}

#[test]
fn value_schema() {
    let c = ok(&[("value.schema", "id BIGINT NOT NULL, name STRING")]);
    let schema = c.value_schema.expect("declared");
    assert_eq!(schema.fields().len(), 2);
    let e = err(&[("value.schema", "id BIGNT")]).to_string();
    assert!(
        e.contains("value.schema") && e.contains("unknown type 'BIGNT'"),
        "{e}"
    );
}

#[test]
fn json_inference_keys() {
    use crate::config::formats::JsonEvolution;
    let c = ok(&[]);
    assert_eq!(c.formats.json.evolution, JsonEvolution::AddNewColumns);
    assert_eq!(c.formats.json.rescued_column, "_rescued_data");
    assert!(c.formats.json.hints.is_none());
    let c = ok(&[
        ("json.schema.evolution", "Fail-On-New-Columns"),
        ("json.rescued.data.column", "_extra"),
        ("value.schema.hints", "ts TIMESTAMP, amount DECIMAL(10,2)"),
    ]);
    assert_eq!(c.formats.json.evolution, JsonEvolution::FailOnNewColumns);
    assert_eq!(c.formats.json.rescued_column, "_extra");
    assert_eq!(c.formats.json.hints.expect("hints").fields().len(), 2);
    let e = err(&[("json.schema.evolution", "merge")]).to_string();
    assert!(
        e.contains("json.schema.evolution") && e.contains("rescue"),
        "{e}"
    );
    let e = err(&[("value.schema.hints", "ts TIMESTAMPZ")]).to_string();
    assert!(e.contains("value.schema.hints"), "{e}");
    let c = ok(&[]);
    assert_eq!(
        (c.formats.json.max_fields, c.formats.json.max_versions),
        (1000, 100)
    );
    let c = ok(&[
        ("json.schema.max.fields", "50"),
        ("json.schema.max.versions", "3"),
    ]);
    assert_eq!(
        (c.formats.json.max_fields, c.formats.json.max_versions),
        (50, 3)
    );
    for key in ["json.schema.max.fields", "json.schema.max.versions"] {
        let e = err(&[(key, "0")]).to_string();
        assert!(e.contains(key) && e.contains("from 1 to 100000"), "{e}");
    }
}

#[test]
fn kafka_connect_keys() {
    let c = ok(&[
        ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
        ("tasks.max", "8"),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
        ("value.converter.schemas.enable", "false"),
        ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
        (
            "partitioner.class",
            "io.confluent.connect.storage.partitioner.DefaultPartitioner",
        ),
        ("s3.region", "eu-west-1"),
        ("aws.access.key.id", "AKIA"),
        ("aws.secret.access.key", "shh"),
        ("store.region", "us-east-1"),
        ("errors.log.enable", "true"),
        ("errors.deadletterqueue.context.headers.enable", "false"),
    ]);
    assert_eq!(
        c.store_options["region"], "us-east-1",
        "an explicit store option wins"
    );
    assert_eq!(c.store_options["access_key_id"], "AKIA");
    assert_eq!(c.store_options["secret_access_key"], "shh");
    let e = err(&[(
        "partitioner.class",
        "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
    )]);
    assert!(e.to_string().contains("path.format"), "{e}");
    let e = err(&[("value.converter.schemas.enable", "maybe")]);
    assert!(e.to_string().contains("true or false"), "{e}");
}

#[test]
fn s3_bucket_name() {
    let mut raw = raw_with(&[("s3.bucket.name", "logs")]);
    raw.entries.remove("store.url");
    assert_eq!(
        Config::from_raw(&raw).expect("valid").store_url,
        "s3://logs"
    );
    let c = ok(&[
        ("store.url", "s3://logs/prefix"),
        ("s3.bucket.name", "logs"),
    ]);
    assert_eq!(c.store_url, "s3://logs/prefix");
    let e = err(&[("store.url", "s3://logsx"), ("s3.bucket.name", "logs")]);
    assert!(matches!(e, ConfigError::Conflict(_)), "{e:?}");
}

#[test]
fn shipped_example_files_are_valid() {
    let quickstart = include_str!("../../config/quickstart.properties");
    let c = Config::from_properties_str(
        quickstart,
        &[
            ("bootstrap.servers".into(), "b:1".into()),
            ("store.url".into(), "/tmp/x".into()),
        ],
    )
    .expect("quickstart config");
    assert!(c.include_kafka_metadata);
    let c = Config::from_properties_str(include_str!("../../config/local-raw.properties"), &[])
        .expect("raw config");
    assert_eq!(
        (c.format, c.input_format),
        (OutputFormat::Raw, InputFormat::Raw)
    );
    let c = Config::from_properties_str(
        include_str!("../../config/s3-json-to-parquet.properties"),
        &[],
    )
    .expect("s3 config");
    assert_eq!(c.store_options["region"], "us-east-1");
    assert_eq!(c.parquet_codec, ParquetCodec::Zstd);
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let e = err(&[
        ("flush.sise", "10"),
        ("s3.ur", "s3://x"),
        ("zzzz.qqqq.wwww", "1"),
    ]);
    assert!(
        matches!(&e, ConfigError::UnknownKeys(keys) if keys.len() == 3),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "unknown config keys: 'flush.sise' (did you mean 'flush.size'?), 's3.ur' (did you mean \
         's3.url'?), 'zzzz.qqqq.wwww'"
    );
    assert_eq!(e.keys(), ["flush.sise", "s3.ur", "zzzz.qqqq.wwww"]);
}

/// The Confluent S3 sink's quickstart-s3.properties, as it ships (Avro output of JSON input).
const CONFLUENT_QUICKSTART: &str = "
name=s3-sink
connector.class=io.confluent.connect.s3.S3SinkConnector
tasks.max=1
topics=s3_topic
s3.region=us-west-2
s3.bucket.name=confluent-kafka-connect-s3-testing
s3.part.size=5242880
flush.size=3
storage.class=io.confluent.connect.s3.storage.S3Storage
format.class=io.confluent.connect.s3.format.avro.AvroFormat
schema.generator.class=io.confluent.connect.storage.hive.schema.DefaultSchemaGenerator
partitioner.class=io.confluent.connect.storage.partitioner.DefaultPartitioner
schema.compatibility=NONE
";

#[test]
fn confluent_and_seed_quickstarts_run_as_they_are() {
    let c = Config::from_properties_str(
        CONFLUENT_QUICKSTART,
        &[("bootstrap.servers".into(), "localhost:9092".into())],
    )
    .expect("the Confluent quickstart validates");
    assert_eq!(c.store_url, "s3://confluent-kafka-connect-s3-testing");
    assert_eq!(c.store_options["region"], "us-west-2");
    assert_eq!(c.format, OutputFormat::Avro);
    assert_eq!(c.tasks_max, 1);
    // The seed's job: hadoop.conf.dir names a laptop's directory; accepted, nothing read.
    let c = ok(&[
        ("connector.class", "com.qubole.streamx.s3.S3SinkConnector"),
        ("format.class", "com.qubole.streamx.SourceFormat"),
        (
            "value.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ),
        ("tasks.max", "2"),
        ("flush.size", "2"),
        ("s3.url", "s3://streamx/demo"),
        ("hadoop.conf.dir", "/Users/pseluka/src/streamx/hadoop-conf"),
    ]);
    assert_eq!(c.format, OutputFormat::Raw);
    assert_eq!(c.tasks_max, 2);
    assert!(c.store_options.is_empty());
}

#[test]
fn connector_class_tasks_max_and_part_size_are_checked() {
    for class in [
        "io.confluent.connect.hdfs.HdfsSinkConnector",
        "S3SinkConnector",
        "streamx",
    ] {
        ok(&[("connector.class", class)]);
    }
    let e = err(&[(
        "connector.class",
        "io.debezium.connector.mysql.MySqlConnector",
    )])
    .to_string();
    assert!(
        e.contains("connector.class") && e.contains("S3SinkConnector"),
        "{e}"
    );
    let e = err(&[("tasks.max", "0")]).to_string();
    assert!(e.contains("tasks.max"), "{e}");
    let e = err(&[("s3.part.size", "1024")]).to_string();
    assert!(e.contains("s3.part.size"), "{e}");
    assert_eq!(ok(&[]).tasks_max, 1);
}

#[test]
fn metrics_listen() {
    assert_eq!(ok(&[]).metrics_listen, None);
    let c = ok(&[("metrics.listen", "localhost:9464")]);
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
    let e = err(&[("metrics.listen", "9464")]).to_string();
    assert!(
        e.contains("metrics.listen") && e.contains("host:port"),
        "{e}"
    );
}

#[test]
fn compact_location_swap_needs_hive() {
    let e = err(&[("compact.hive.swap", "location")]);
    assert!(e.to_string().contains("compact.hive.swap"), "{e}");
    assert!(e.to_string().contains("hive.integration=true"), "{e}");
    let c = ok(&[
        ("compact.hive.swap", "location"),
        ("hive.integration", "true"),
        ("hive.metastore.uris", "thrift://127.0.0.1:9083"),
    ]);
    assert!(c.compact.hive_location_swap);
}

#[test]
fn kafka_security_keys_reach_every_client_with_java_forms_mapped() {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="KEY" password="S3CRET";"#;
    let c = ok(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.jaas.config", jaas),
        ("ssl.endpoint.identification.algorithm", ""),
        ("ssl.protocol", "TLSv1.3"),
        ("consumer.sasl.username", "CONSUMER"),
    ]);
    for client in [&c.consumer_overrides, &c.producer_overrides] {
        assert_eq!(client["security.protocol"], "SASL_SSL");
        assert_eq!(client["sasl.mechanism"], "PLAIN");
        assert_eq!(client["sasl.password"], "S3CRET");
        assert_eq!(client["ssl.endpoint.identification.algorithm"], "none");
        assert!(!client.contains_key("sasl.jaas.config"));
        assert!(
            !client.contains_key("ssl.protocol"),
            "Java-only key dropped"
        );
    }
    assert_eq!(c.consumer_overrides["sasl.username"], "CONSUMER");
    assert_eq!(c.producer_overrides["sasl.username"], "KEY");
    // Connect's per-connector override spelling, Java forms included.
    let c = ok(&[("consumer.override.security.protocol", "SSL")]);
    assert_eq!(c.consumer_overrides["security.protocol"], "SSL");
    assert!(!c.producer_overrides.contains_key("security.protocol"));
}

#[test]
fn kafka_security_errors_name_the_key_and_hide_secrets() {
    let e = err(&[("ssl.no.such.thing", "x")]).to_string();
    assert!(e.contains("'ssl.no.such.thing'"), "{e}");
    let e = err(&[("security.protocol", "TLS")]).to_string();
    assert!(
        e.contains("'security.protocol'") && e.contains("TLS"),
        "{e}"
    );
    let e = err(&[("ssl.ca.location", "/nonexistent/ca.pem")]).to_string();
    assert!(
        e.contains("'ssl.ca.location'") && e.contains("readable"),
        "{e}"
    );
    let e = err(&[
        ("sasl.mechanism", "SCRAM-SHA-512"),
        (
            "sasl.jaas.config",
            r#"x.PlainLoginModule required username="u" password="S3CRET";"#,
        ),
    ])
    .to_string();
    assert!(
        e.contains("'sasl.jaas.config'") && e.contains("sasl.mechanism=PLAIN"),
        "{e}"
    );
    assert!(!e.contains("S3CRET"), "{e}");
    let e = err(&[("sasl.mechanism", "AWS_MSK_IAM")]).to_string();
    assert!(
        e.contains("'security.protocol'") && e.contains("MSK's IAM listener takes TLS only"),
        "{e}"
    );
    let e = err(&[(
        "sasl.login.callback.handler.class",
        "com.example.MyLoginHandler",
    )])
    .to_string();
    assert!(e.contains("not Java login classes"), "{e}");
}

#[test]
fn msk_iam_reaches_the_consumer_and_the_dlq_producer_as_oauthbearer_with_the_region() {
    let c = ok(&[
        (
            "bootstrap.servers",
            "b-1.orders.x1.c2.kafka.ap-south-1.amazonaws.com:9098",
        ),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "AWS_MSK_IAM"),
        (
            "sasl.jaas.config",
            "software.amazon.msk.auth.iam.IAMLoginModule required;",
        ),
        (
            "sasl.client.callback.handler.class",
            "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        ),
    ]);
    for client in [&c.consumer_overrides, &c.producer_overrides] {
        let get = |k: &str| client.get(k).map(String::as_str);
        assert_eq!(get("sasl.mechanism"), Some("OAUTHBEARER"), "{client:?}");
        assert_eq!(
            get("sasl.oauthbearer.config"),
            Some("aws_msk_iam region=ap-south-1")
        );
    }
}

#[test]
fn kafka_security_jks_is_refused_with_the_conversion() {
    let dir = std::env::temp_dir().join(format!("streamx-jks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jks = dir.join("truststore.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
    let path = jks.to_str().unwrap();
    let e = err(&[("ssl.truststore.location", path)]).to_string();
    assert!(e.contains("'ssl.truststore.location'"), "{e}");
    assert!(
        e.contains("keytool -importkeystore") && e.contains("-deststoretype PKCS12"),
        "{e}"
    );
    let e = err(&[
        ("consumer.ssl.keystore.location", path),
        ("consumer.ssl.keystore.type", "JKS"),
    ])
    .to_string();
    assert!(
        e.contains("'consumer.ssl.keystore.location'") && e.contains("keytool"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn librdkafka_has_tls_and_every_sasl_mechanism() {
    let features = kafka_security::builtin_features();
    for f in [
        "ssl",
        "sasl_plain",
        "sasl_scram",
        "sasl_oauthbearer",
        "sasl_gssapi",
        "oidc",
    ] {
        assert!(
            features.split(',').any(|x| x == f),
            "{f} missing in {features}"
        );
    }
}

/// `ssl.enabled.protocols=TLSv1.3` (TLS 1.3 only) was accepted and ignored: librdkafka has no
/// setting for TLS versions and negotiates TLS 1.2 too. Refused unless TLSv1.2 is listed.
#[test]
fn kafka_tls_versions_that_cannot_be_honoured_are_refused() {
    for prefix in ["", "consumer.", "producer."] {
        let key = format!("{prefix}ssl.enabled.protocols");
        let e = err(&[(key.as_str(), "TLSv1.3")]).to_string();
        assert!(e.contains(&key) && e.contains("TLSv1.2"), "{e}");
        ok(&[(key.as_str(), "TLSv1.2,TLSv1.3")]);
        ok(&[(key.as_str(), "TLSv1.2")]);
    }
}

#[test]
fn protobuf_converter_takes_the_registry_keys() {
    let converter = (
        "value.converter",
        "io.confluent.connect.protobuf.ProtobufConverter",
    );
    let e = err(&[converter]).to_string();
    assert!(e.contains("value.converter.schema.registry.url"), "{e}");
    let c = ok(&[
        converter,
        (
            "value.converter.schema.registry.url",
            "http://registry:8081",
        ),
        ("value.converter.basic.auth.credentials.source", "USER_INFO"),
        ("value.converter.basic.auth.user.info", "fred:secret"),
    ]);
    assert_eq!(c.input_format, InputFormat::Protobuf);
    let registry = c.formats.protobuf.as_ref().expect("registry settings");
    assert_eq!(registry.user_info.as_deref(), Some("fred:secret"));
    assert!(c.formats.avro.is_none());
    let e = err(&[
        converter,
        (
            "value.converter.schema.registry.url",
            "http://registry:8081",
        ),
        ("value.converter.basic.auth.credentials.source", "USER_INFO"),
    ])
    .to_string();
    assert!(e.contains("basic.auth.user.info"), "{e}");
}

/// Issue 27 item 3: Confluent's JSON Schema converter is read with the registry keys the Avro
/// converter honours (URL, basic auth, bearer token, TLS).
#[test]
fn json_schema_converter_takes_the_registry_keys() {
    let converter = "io.confluent.connect.json.JsonSchemaConverter";
    let e = err(&[("value.converter", converter)]).to_string();
    assert!(e.contains("value.converter.schema.registry.url"), "{e}");
    let c = ok(&[
        ("value.converter", converter),
        (
            "value.converter.schema.registry.url",
            "http://registry:8081",
        ),
        ("value.converter.basic.auth.credentials.source", "USER_INFO"),
        ("value.converter.basic.auth.user.info", "u:p"),
    ]);
    assert_eq!(format!("{:?}", c.input_format), "JsonSchema");
    let e = err(&[
        ("value.converter", converter),
        ("value.converter.schema.registry.url", "registry:8081"),
    ])
    .to_string();
    assert!(e.contains("value.converter.schema.registry.url"), "{e}");
    let e = err(&[
        ("value.converter", converter),
        (
            "value.converter.schema.registry.url",
            "http://registry:8081",
        ),
        ("value.schema", "a INT"),
    ])
    .to_string();
    assert!(e.contains("value.schema"), "{e}");
}
