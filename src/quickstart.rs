//! `streamx quickstart`: the whole product on one machine with nothing installed.
//!
//! Starts the embedded broker ([`crate::source::embedded`]), produces sample clickstream events,
//! runs the real ingest ([`crate::ingest::run`]) with `config/quickstart.properties` until it has
//! caught up, then prints a summary: committed files and rows (from the commit log) and a query of
//! the output through DataFusion. The embedded broker is for trying StreamX out only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::config::{Config, ConfigError};
use crate::decode::sample::clickstream_event;
use crate::ingest::{self, IngestError, IngestOptions};
use crate::metrics::{Metrics, Snapshot};
use crate::source::embedded::{EmbeddedCluster, EmbeddedError};

/// The quickstart job's configuration, shipped in the binary.
pub const QUICKSTART_PROPERTIES: &str = include_str!("../config/quickstart.properties");
const TOPIC: &str = "clickstream";

#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("producing sample events failed: {0}")]
    Produce(rdkafka::error::KafkaError),
    #[error("reading the output back failed: {0}")]
    Query(String),
    #[error("{0} already holds output of an earlier quickstart; the embedded broker starts empty each time, so use a new --out directory (or remove this one)")]
    OutputExists(String),
}

pub struct QuickstartOptions {
    pub records: u64,
    pub partitions: i32,
    pub out: PathBuf,
}

/// What the quickstart found in the store.
#[derive(Debug)]
pub struct Summary {
    pub files: u64,
    pub rows: u64,
    pub query_output: String,
}

pub fn run(options: &QuickstartOptions) -> Result<Summary, QuickstartError> {
    let used = std::fs::read_dir(&options.out)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if used {
        return Err(QuickstartError::OutputExists(
            options.out.display().to_string(),
        ));
    }
    let cluster = EmbeddedCluster::start(1)?;
    cluster.create_topic(TOPIC, options.partitions)?;
    let servers = cluster.bootstrap_servers();
    println!(
        "embedded broker on {servers}; producing {} events into '{TOPIC}'",
        options.records
    );
    produce_samples(&servers, TOPIC, options.records)?;
    let out = options.out.to_string_lossy().to_string();
    let config = Config::from_properties_str(
        QUICKSTART_PROPERTIES,
        &[
            ("bootstrap.servers".into(), servers),
            ("store.url".into(), out.clone()),
        ],
    )?;
    let metrics = Arc::new(Metrics::default());
    let opts = IngestOptions {
        stop_at_end: true,
        metrics: metrics.clone(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let snapshot = ingest::run(config.clone(), opts)?;
    println!(
        "ingest finished in {:.1} s: {snapshot}",
        started.elapsed().as_secs_f64()
    );
    summarize(&config, &options.out, &snapshot)
}

/// Produces `records` sample clickstream events (keyed by user) into `topic`.
pub fn produce_samples(servers: &str, topic: &str, records: u64) -> Result<(), QuickstartError> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .create()
        .map_err(QuickstartError::Produce)?;
    for i in 0..records {
        let value = clickstream_event(i);
        let key = format!("user-{}", i % 997);
        let mut record = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(value.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(QuickstartError::Produce)
}

/// `streamx samples`: creates `topic` (on the embedded broker when `servers` is `None`, which
/// then keeps running) and loads sample events into it. Returns the bootstrap servers and, for
/// the embedded broker, the cluster to keep alive.
pub fn load_samples(
    servers: Option<&str>,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<(String, Option<EmbeddedCluster>), QuickstartError> {
    let (servers, cluster) = match servers {
        Some(s) => {
            create_topic(s, topic, partitions)?;
            (s.to_string(), None)
        }
        None => {
            let cluster = EmbeddedCluster::start(1)?;
            cluster.create_topic(topic, partitions)?;
            (cluster.bootstrap_servers(), Some(cluster))
        }
    };
    produce_samples(&servers, topic, records)?;
    Ok((servers, cluster))
}

fn create_topic(servers: &str, topic: &str, partitions: i32) -> Result<(), QuickstartError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .map_err(QuickstartError::Produce)?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| QuickstartError::Query(e.to_string()))?;
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .map_err(QuickstartError::Produce)?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(QuickstartError::Produce(
                    rdkafka::error::KafkaError::AdminOp(code),
                ))
                .map_err(|e| QuickstartError::Query(format!("creating topic {t}: {e}")))
            }
        }
    }
    Ok(())
}

/// What this run committed (from its counters: old commit records are pruned, so the store
/// keeps only the newest few per partition) and a query over the files.
fn summarize(config: &Config, out: &Path, snapshot: &Snapshot) -> Result<Summary, QuickstartError> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| QuickstartError::Query(e.to_string()))?;
    rt.block_on(async {
        let (files, rows) = (snapshot.files_committed, snapshot.records_written);
        let dir = out.join(&config.topics_dir).join(TOPIC);
        println!(
            "committed {files} files with {rows} rows under {}",
            dir.display()
        );
        let sql = "SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users, \
                   min(_offset) AS first_offset, max(_offset) AS last_offset \
                   FROM clickstream GROUP BY event_type ORDER BY events DESC";
        let ctx = SessionContext::new();
        let q = |e: datafusion::error::DataFusionError| QuickstartError::Query(e.to_string());
        ctx.register_parquet(
            TOPIC,
            &format!("{}/", dir.display()),
            ParquetReadOptions::default(),
        )
        .await
        .map_err(q)?;
        let batches = ctx.sql(sql).await.map_err(q)?.collect().await.map_err(q)?;
        let table = arrow::util::pretty::pretty_format_batches(&batches)
            .map_err(|e| QuickstartError::Query(e.to_string()))?
            .to_string();
        println!("DataFusion: {sql}\n{table}");
        Ok(Summary {
            files,
            rows,
            query_output: table,
        })
    })
}
