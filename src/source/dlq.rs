//! The dead letter queue: records that cannot be decoded, with `errors.tolerance=all` and
//! `errors.deadletterqueue.topic.name` set, are produced there as they were (key, value, headers)
//! plus Kafka Connect's error headers (`__connect.errors.topic`, `.partition`, `.offset`,
//! `.exception.message`, `.stage`). Delivery is at least once: the writer flushes the queue
//! before every commit, so a committed offset never covers an undelivered dead letter.

use std::time::Duration;

use rdkafka::message::{Header as KHeader, OwnedHeaders};
use std::sync::Mutex;

use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;

use crate::config::Config;
use crate::decode::buffer::Header;

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("cannot create the dead letter queue producer: {0}")]
    Create(rdkafka::error::KafkaError),
    #[error("cannot send to dead letter queue topic '{topic}': {source}")]
    Send {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("dead letter queue topic '{topic}' did not confirm delivery: {source}")]
    Flush {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}

/// Remembers the first failed delivery, so that `flush` can refuse to let a commit cover it.
#[derive(Default)]
struct DeliveryTracker {
    failed: Mutex<Option<rdkafka::error::KafkaError>>,
}

impl ClientContext for DeliveryTracker {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        Ok(super::oauth::token_for(config)?)
    }
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if let Ok(mut f) = self.failed.lock() {
                f.get_or_insert_with(|| e.clone());
            }
        }
    }
}

pub struct DeadLetterQueue {
    producer: BaseProducer<DeliveryTracker>,
    topic: String,
}

impl DeadLetterQueue {
    pub fn new(config: &Config, topic: &str) -> Result<Self, DlqError> {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &config.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("client.id", format!("streamx-{}-dlq", config.name));
        for (k, v) in &config.producer_overrides {
            cc.set(k, v);
        }
        let producer = cc
            .create_with_context(DeliveryTracker::default())
            .map_err(DlqError::Create)?;
        Ok(DeadLetterQueue {
            producer,
            topic: topic.to_string(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        error: &str,
    ) -> Result<(), DlqError> {
        let mut h = OwnedHeaders::new_with_capacity(headers.len() + 5);
        for hd in headers {
            h = h.insert(KHeader {
                key: &hd.key,
                value: hd.value.as_deref(),
            });
        }
        let (p, o) = (partition.to_string(), offset.to_string());
        for (k, v) in [
            ("__connect.errors.topic", topic),
            ("__connect.errors.partition", p.as_str()),
            ("__connect.errors.offset", o.as_str()),
            ("__connect.errors.stage", "VALUE_CONVERTER"),
            ("__connect.errors.exception.message", error),
        ] {
            h = h.insert(KHeader {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(h);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((source, _)) => {
                    return Err(DlqError::Send {
                        topic: self.topic.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Waits until everything sent was acknowledged.
    pub fn flush(&self) -> Result<(), DlqError> {
        let flush_err = |source| DlqError::Flush {
            topic: self.topic.clone(),
            source,
        };
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(flush_err)?;
        // A delivery that failed for good (unknown topic, authorization, ...) fails the commit
        // that would otherwise cover the record; the job stops and nothing is lost.
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        match failed {
            Some(source) => Err(flush_err(source)),
            None => Ok(()),
        }
    }
}
