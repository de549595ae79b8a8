//! The Kafka source: an rdkafka consumer in a consumer group (several processes with one config
//! share the partitions), with assignment and revocation handled explicitly.
//!
//! On assignment the [`IngestContext`] recovers every new partition from the store (the commit
//! log is the source of truth, never Kafka's committed offsets) and assigns it at the offset the
//! store gives; a partition with no commit starts at `consumer.auto.offset.reset` (earliest by
//! default). On revocation the partitions are reported to the ingest loop, which drops their
//! writers and what they buffered (nothing buffered is visible, and the next owner re-reads it).
//! Rebalance callbacks run inside `poll` on the ingest thread; they hand their outcome to the
//! loop through [`IngestContext::take_events`].

pub mod dlq;
pub mod embedded;
pub mod oauth;
pub mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext};

use crate::commit::{CommitLog, Recovered, PARTITIONS_AT_ONCE};
use crate::config::{Config, StartFrom, TopicSelection};
use crate::Origin;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid Kafka client setting: {0}")]
    Client(KafkaError),
    #[error("Kafka brokers {servers} are unreachable (bootstrap.servers): {source}")]
    Unreachable { servers: String, source: KafkaError },
    #[error("topic '{topic}' does not exist on {servers} (topics)")]
    NoSuchTopic { topic: String, servers: String },
    #[error("cannot subscribe to {what}: {source}")]
    Subscribe { what: String, source: KafkaError },
    #[error("recovering topic '{topic}' partition {partition} from the store failed: {message}")]
    Recovery {
        topic: String,
        partition: i32,
        message: String,
    },
    #[error("Kafka consumer failed: {0}")]
    Consumer(KafkaError),
    /// A TLS handshake or SASL authentication failed: the settings (or the cluster's) are
    /// wrong, and retrying will not fix them.
    #[error("cannot connect securely to the Kafka brokers {servers} ({security}): {cause}")]
    Security {
        servers: String,
        /// `security.protocol` and `sasl.mechanism` as configured.
        security: String,
        /// librdkafka's words, naming the broker and the cause.
        cause: String,
    },
}

impl SourceError {
    pub fn origin(&self) -> Origin {
        match self {
            SourceError::Client(_)
            | SourceError::NoSuchTopic { .. }
            | SourceError::Security { .. } => Origin::User,
            _ => Origin::External,
        }
    }
}

/// What a rebalance did, for the ingest loop.
#[derive(Debug)]
pub enum RebalanceEvent {
    /// Partitions now owned, with where the store says each stands, and when the group handed
    /// them over (before their recovery from the store).
    Assigned(Vec<(String, i32, Recovered)>, Instant),
    /// Partitions taken away. With a list, librdkafka has not been told yet: the router
    /// unassigns it ([`unassign`]) once the partitions' workers have let go of them, so nothing
    /// of theirs is committed after the group moved them on.
    Revoked(Vec<(String, i32)>, Option<TopicPartitionList>),
    Failed(SourceError),
}

/// The consumer context: recovers partitions from the store during assignment.
pub struct IngestContext {
    commit_log: CommitLog,
    runtime: tokio::runtime::Handle,
    start_from: StartFrom,
    events: Mutex<Vec<RebalanceEvent>>,
    /// The newest statistics not yet taken (see [`IngestContext::take_offsets`]).
    offsets: Mutex<Option<Offsets>>,
    /// Set while a router handles revocations (it unassigns once the workers let go); when
    /// unset (before the router runs, and while the consumer closes) the rebalance callback
    /// unassigns at once.
    router_unassigns: AtomicBool,
    /// `bootstrap.servers` and the configured security, for [`SourceError::Security`].
    security: (String, String),
    /// The first TLS or authentication failure (see [`IngestContext::security_failure`]).
    security_failure: Mutex<Option<String>>,
}

/// The fetched partitions' offsets, from librdkafka's statistics.
pub type Offsets = HashMap<(String, i32), stats::PartitionOffsets>;

impl IngestContext {
    pub fn new(
        commit_log: CommitLog,
        runtime: tokio::runtime::Handle,
        start_from: StartFrom,
    ) -> Self {
        IngestContext {
            commit_log,
            runtime,
            start_from,
            events: Mutex::new(Vec::new()),
            offsets: Mutex::new(None),
            router_unassigns: AtomicBool::new(false),
            security: (String::new(), String::new()),
            security_failure: Mutex::new(None),
        }
    }

    /// The first TLS handshake or SASL authentication failure librdkafka reported, as the
    /// error that stops the run (it is also queued as a [`RebalanceEvent::Failed`]).
    pub fn security_failure(&self) -> Option<SourceError> {
        let mut cause = self.security_failure.lock().ok()?.clone()?;
        if cause.contains("certificate verify failed") {
            // librdkafka says the same for an unknown CA and for a certificate of another host.
            cause.push_str(
                "; either no CA in ssl.ca.location / ssl.truststore.location signed the broker's \
                 certificate, or the certificate does not name the host in bootstrap.servers \
                 (its subjectAltName; ssl.endpoint.identification.algorithm= skips that check)",
            );
        }
        Some(SourceError::Security {
            servers: self.security.0.clone(),
            security: self.security.1.clone(),
            cause,
        })
    }

    /// Whether revocations are left to the router to unassign (see [`RebalanceEvent::Revoked`]).
    pub fn set_router_unassigns(&self, on: bool) {
        self.router_unassigns.store(on, Ordering::SeqCst);
    }

    /// The fetched partitions' offsets from the statistics emitted since the last call (every
    /// `statistics.interval.ms`), if any were.
    pub fn take_offsets(&self) -> Option<Offsets> {
        self.offsets.lock().ok().and_then(|mut o| o.take())
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&self) -> Vec<RebalanceEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    fn push(&self, event: RebalanceEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    /// The offset to assign a partition at.
    pub fn start_offset(&self, recovered: &Recovered) -> Offset {
        match (recovered.next_offset, self.start_from) {
            (Some(o), _) => Offset::Offset(o),
            (None, StartFrom::Earliest) => Offset::Beginning,
            (None, StartFrom::Latest) => Offset::End,
        }
    }

    /// Recovers one partition from the store (blocking the calling, non-async thread).
    pub fn recover(&self, topic: &str, partition: i32) -> Result<Recovered, SourceError> {
        self.runtime.block_on(self.recover_async(topic, partition))
    }

    async fn recover_async(&self, topic: &str, partition: i32) -> Result<Recovered, SourceError> {
        self.commit_log
            .recover(topic, partition)
            .await
            .map_err(|e| SourceError::Recovery {
                topic: topic.to_string(),
                partition,
                message: e.to_string(),
            })
    }
}

impl IngestContext {
    /// [`IngestContext::recover`] for many partitions, [`PARTITIONS_AT_ONCE`] at a time (a few
    /// store round trips each), in the order given.
    fn recover_all(
        &self,
        parts: &[(String, i32)],
    ) -> Vec<((String, i32), Result<Recovered, SourceError>)> {
        use futures::stream::{self, StreamExt};
        let recoveries = stream::iter(parts.iter().cloned())
            .map(|(topic, partition)| async move {
                let result = self.recover_async(&topic, partition).await;
                ((topic, partition), result)
            })
            .buffered(PARTITIONS_AT_ONCE)
            .collect::<Vec<_>>();
        self.runtime.block_on(recoveries)
    }
}

impl ClientContext for IngestContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        Ok(oauth::token_for(config)?)
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error if is_security_log(fac, log_message) => {
                self.note_security_failure(log_message)
            }
            Emerg | Alert | Critical | Error => {
                tracing::error!(target: "librdkafka", fac, "{log_message}")
            }
            Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            Notice | Info => tracing::info!(target: "librdkafka", fac, "{log_message}"),
            Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn stats_raw(&self, json: &[u8]) {
        match stats::fetched_partitions(json) {
            Some(offsets) => {
                if let Ok(mut o) = self.offsets.lock() {
                    *o = Some(offsets);
                }
            }
            None => tracing::debug!("librdkafka statistics unreadable; consumer lag not updated"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            return; // the end of a partition is not an error; the loop handles it
        }
        if is_security_failure(&error) {
            self.note_security_failure(reason);
            return;
        }
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl IngestContext {
    /// Records the first TLS or authentication failure and queues it as the run's end.
    fn note_security_failure(&self, cause: &str) {
        let first = match self.security_failure.lock() {
            Ok(mut f) if f.is_none() => {
                *f = Some(cause.to_string());
                true
            }
            _ => false,
        };
        if let (true, Some(e)) = (first, self.security_failure()) {
            tracing::error!(target: "librdkafka", "{e}");
            self.push(RebalanceEvent::Failed(e));
        }
    }
}

/// A connection failure librdkafka only logs (facility `FAIL`, no error event for a failed TLS
/// handshake) that no retry can fix: a certificate that does not verify, a failed handshake, a
/// refused authentication.
fn is_security_log(fac: &str, message: &str) -> bool {
    fac == "FAIL"
        && [
            "SSL handshake failed",
            "certificate verify failed",
            "SASL authentication error",
            // The broker does not offer the configured sasl.mechanism (or no SASL at all).
            "mechanism handshake failed",
            "SSL routines",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// TLS handshake and SASL authentication failures: fatal for the run (librdkafka would retry
/// them forever, logging at most a line per broker).
fn is_security_failure(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{Authentication, SaslAuthenticationFailed, SSL};
    matches!(
        error.rdkafka_error_code(),
        Some(SSL | Authentication | SaslAuthenticationFailed)
    )
}

/// `security.protocol` and `sasl.mechanism` of a client's settings, for error messages.
pub fn describe_security(settings: &std::collections::BTreeMap<String, String>) -> String {
    let protocol = settings
        .get("security.protocol")
        .map_or("PLAINTEXT", String::as_str)
        .to_uppercase();
    if protocol.starts_with("SASL") {
        let mechanism = settings
            .get("sasl.mechanism")
            .map_or("GSSAPI", String::as_str);
        format!("security.protocol={protocol}, sasl.mechanism={mechanism}")
    } else {
        format!("security.protocol={protocol}")
    }
}

impl IngestContext {
    /// Recovers newly assigned partitions from the store, assigns them at the offsets the store
    /// gives, and queues the `Assigned` event (failures as `Failed`).
    fn assign_recovered(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
        cooperative: bool,
    ) {
        let joined = Instant::now();
        let mut assigned = Vec::new();
        let mut to_assign = TopicPartitionList::new();
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        for ((topic, partition), recovered) in self.recover_all(&parts) {
            match recovered {
                Ok(rec) => {
                    let offset = self.start_offset(&rec);
                    tracing::info!(%topic, partition, next_seq = rec.next_seq, ?offset, "assigned; recovered from the store");
                    // add_partition_offset only fails for an invalid offset, which we never build.
                    let _ = to_assign.add_partition_offset(&topic, partition, offset);
                    assigned.push((topic, partition, rec));
                }
                Err(e) => self.push(RebalanceEvent::Failed(e)),
            }
        }
        let result = if cooperative {
            consumer.incremental_assign(&to_assign)
        } else {
            consumer.assign(&to_assign)
        };
        // librdkafka keeps an application's pause across an unassign and a new assignment
        // (confluentinc/librdkafka#1849): a partition paused after a fence, revoked during its
        // backoff and assigned back here would stay paused for good. A new owner starts
        // unpaused.
        let result = result.and_then(|()| consumer.resume(&to_assign));
        if let Err(e) = result {
            self.push(RebalanceEvent::Failed(SourceError::Consumer(e)));
        }
        tracing::info!(
            partitions = assigned.len(),
            recovery_ms = joined.elapsed().as_millis() as u64,
            "partitions assigned and recovered from the store"
        );
        self.push(RebalanceEvent::Assigned(assigned, joined));
    }
}

impl IngestContext {
    /// Queues the `Revoked` event; unassigns at once unless the router will, once the
    /// partitions' workers let go of them.
    fn revoke(
        &self,
        consumer: &BaseConsumer<Self>,
        revoked: Vec<(String, i32)>,
        tpl: &TopicPartitionList,
    ) {
        if self.router_unassigns.load(Ordering::SeqCst) {
            self.push(RebalanceEvent::Revoked(revoked, Some(tpl.clone())));
        } else {
            unassign(consumer, tpl);
            self.push(RebalanceEvent::Revoked(revoked, None));
        }
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assign_recovered(consumer, tpl, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                tracing::info!(
                    partitions = revoked.len(),
                    lost = consumer.assignment_lost(),
                    "revoked"
                );
                self.revoke(consumer, revoked, tpl);
            }
            other => {
                let e = KafkaError::Rebalance(other.into());
                tracing::warn!(error = %e, "rebalance error");
                let revoked = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.revoke(consumer, revoked, tpl);
            }
        }
    }
}

/// Tells librdkafka that revoked partitions are let go of (the second half of a revocation, see
/// [`RebalanceEvent::Revoked`]).
pub fn unassign<C: ConsumerContext>(consumer: &BaseConsumer<C>, revoked: &TopicPartitionList) {
    let cooperative = matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    );
    let result = if cooperative {
        consumer.incremental_unassign(revoked)
    } else {
        consumer.unassign()
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "unassign failed");
    }
}

/// The consumer's librdkafka settings: ours first, then the job's security keys and every
/// `consumer.*` override (both in [`Config::consumer_overrides`]).
pub fn client_config(config: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", &config.group_id)
        .set("client.id", format!("streamx-{}", config.name))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // The loop pauses to encode and upload; librdkafka's 1 s default stalls fetching after.
        .set("fetch.queue.backoff.ms", "10")
        // Prefetched records are memory outside memory.budget.bytes: 8 MiB of queue (librdkafka
        // defaults to 64 MiB) and 8 MiB per fetch response keep a 2-core ingest fed.
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.max.bytes", "8388608")
        // Statistics every second give the consumer lag metric (no extra broker request).
        .set("statistics.interval.ms", "1000")
        .set(
            "auto.offset.reset",
            match config.start_from {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        );
    for (k, v) in &config.consumer_overrides {
        cc.set(k, v);
    }
    cc
}

/// A client of its own for the end-of-input check's watermark queries (`--stop-at-end`): on the
/// consumer's connection a query waits behind the fetch the broker holds open for new records
/// (up to `fetch.wait.max.ms`, 500 ms by default, per partition queried); on its own it answers
/// in a round trip. It never subscribes, so it never joins the group.
pub fn watermark_client(config: &Config) -> Result<BaseConsumer<oauth::AuthContext>, SourceError> {
    let mut cc = client_config(config);
    cc.set("client.id", format!("streamx-{}-end-check", config.name))
        .remove("statistics.interval.ms");
    cc.create_with_context(oauth::AuthContext)
        .map_err(SourceError::Client)
}

/// The cluster's metadata, asked in short slices until `timeout` so that a TLS or
/// authentication failure (reported through the context meanwhile) ends the wait at once.
fn first_metadata(
    consumer: &BaseConsumer<IngestContext>,
    config: &Config,
    timeout: Duration,
) -> Result<rdkafka::metadata::Metadata, SourceError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let slice = left.min(Duration::from_millis(500));
        match consumer.fetch_metadata(None, slice) {
            Ok(m) => return Ok(m),
            Err(source) => {
                serve_queued_events(consumer);
                if let Some(e) = consumer.context().security_failure() {
                    return Err(e);
                }
                if slice == left {
                    return Err(SourceError::Unreachable {
                        servers: config.bootstrap_servers.clone(),
                        source,
                    });
                }
            }
        }
    }
}

/// Serves the events queued so far (logs, errors: the context's `log` and `error` see them)
/// before subscribing; nothing is assigned yet, so no record can come back. `poll` serves one
/// log event per call and says nothing of it, so the queue is served for a short while rather
/// than until a call returns nothing (with `debug` set, librdkafka queues hundreds of lines
/// ahead of a TLS or SASL failure).
fn serve_queued_events(consumer: &BaseConsumer<IngestContext>) {
    let until = Instant::now() + Duration::from_millis(20);
    while Instant::now() < until {
        let _ = consumer.poll(Duration::ZERO);
    }
}

/// Creates the consumer, checks that the brokers answer within `timeout` and that listed topics
/// exist, then subscribes. Fails fast with the problem named.
pub fn connect(
    config: &Config,
    mut context: IngestContext,
    timeout: Duration,
) -> Result<BaseConsumer<IngestContext>, SourceError> {
    context.security = (
        config.bootstrap_servers.clone(),
        describe_security(&config.consumer_overrides),
    );
    let consumer: BaseConsumer<IngestContext> = client_config(config)
        .create_with_context(context)
        .map_err(SourceError::Client)?;
    let metadata = first_metadata(&consumer, config, timeout)?;
    match &config.topics {
        TopicSelection::List(topics) => {
            for t in topics {
                let exists = metadata
                    .topics()
                    .iter()
                    .any(|m| m.name() == t && !m.partitions().is_empty());
                if !exists {
                    return Err(SourceError::NoSuchTopic {
                        topic: t.clone(),
                        servers: config.bootstrap_servers.clone(),
                    });
                }
            }
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer
                .subscribe(&names)
                .map_err(|source| SourceError::Subscribe {
                    what: names.join(","),
                    source,
                })?;
        }
        TopicSelection::Regex(re) => {
            consumer
                .subscribe(&[re.as_str()])
                .map_err(|source| SourceError::Subscribe {
                    what: re.clone(),
                    source,
                })?;
        }
    }
    Ok(consumer)
}
