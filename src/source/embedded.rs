//! An embedded Kafka-protocol broker: librdkafka's mock cluster, for the quickstart and the fast
//! tests. It listens on real loopback ports, so other processes (a `streamx ingest`, `kcat`) can
//! use it while its owner lives. Not for production: retention is tiny (about 5 MB or 100k
//! messages per partition) and there is no durability.

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot start the embedded broker: {0}")]
    Start(String),
    #[error("cannot create topic '{topic}' on the embedded broker: {message}")]
    Topic { topic: String, message: String },
    #[error("cannot move topic '{topic}' partition {partition} to broker {broker} of the embedded cluster: {message}")]
    Leader {
        topic: String,
        partition: i32,
        broker: i32,
        message: String,
    },
    #[error("cannot change broker {broker} of the embedded cluster: {message}")]
    Broker { broker: i32, message: String },
}

/// A running mock cluster; stops when dropped.
pub struct EmbeddedCluster {
    cluster: *mut rdsys::rd_kafka_mock_cluster_t,
    // Owns the librdkafka handle the cluster runs on; must outlive `cluster`.
    _owner: BaseProducer,
}

// SAFETY: librdkafka's mock cluster API is thread-safe (it posts operations to the cluster's own
// thread); the pointer is only destroyed in Drop.
unsafe impl Send for EmbeddedCluster {}
unsafe impl Sync for EmbeddedCluster {}

impl EmbeddedCluster {
    /// Starts a cluster of `brokers` brokers with group joins that do not wait (the default
    /// initial rebalance delay of 3 s is set to 0).
    pub fn start(brokers: i32) -> Result<Self, EmbeddedError> {
        let owner: BaseProducer = ClientConfig::new()
            .set("log_level", "3")
            .create()
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        // SAFETY: the handle is valid while `owner` lives, and the cluster is destroyed first.
        let cluster =
            unsafe { rdsys::rd_kafka_mock_cluster_new(owner.client().native_ptr(), brokers) };
        if cluster.is_null() {
            return Err(EmbeddedError::Start(
                "rd_kafka_mock_cluster_new returned null".into(),
            ));
        }
        // SAFETY: `cluster` is a live mock cluster.
        unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0) };
        Ok(EmbeddedCluster {
            cluster,
            _owner: owner,
        })
    }

    /// The `bootstrap.servers` of the cluster (loopback addresses).
    pub fn bootstrap_servers(&self) -> String {
        // SAFETY: returns a NUL-terminated string owned by the live cluster.
        unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(self.cluster)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Creates a topic (the mock cluster has no CreateTopics API).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        let name = CString::new(topic).map_err(|e| EmbeddedError::Topic {
            topic: topic.to_string(),
            message: e.to_string(),
        })?;
        // SAFETY: valid cluster and NUL-terminated name.
        let err = unsafe {
            rdsys::rd_kafka_mock_topic_create(self.cluster, name.as_ptr(), partitions, 1)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = rdkafka::error::RDKafkaErrorCode::from(err).to_string();
            return Err(EmbeddedError::Topic {
                topic: topic.to_string(),
                message,
            });
        }
        Ok(())
    }

    /// Moves the leadership of one partition to broker `broker` (1-based), e.g. to put it
    /// behind a slow broker.
    pub fn set_partition_leader(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), EmbeddedError> {
        let leader_err = |message: String| EmbeddedError::Leader {
            topic: topic.to_string(),
            partition,
            broker,
            message,
        };
        let name = CString::new(topic).map_err(|e| leader_err(e.to_string()))?;
        // SAFETY: valid cluster and NUL-terminated name.
        let err = unsafe {
            rdsys::rd_kafka_mock_partition_set_leader(
                self.cluster,
                name.as_ptr(),
                partition,
                broker,
            )
        };
        check(err).map_err(leader_err)
    }

    /// Delays every response of broker `broker` (1-based) by `rtt`.
    pub fn set_broker_rtt(&self, broker: i32, rtt: Duration) -> Result<(), EmbeddedError> {
        let ms = i32::try_from(rtt.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: valid cluster.
        let err = unsafe { rdsys::rd_kafka_mock_broker_set_rtt(self.cluster, broker, ms) };
        check(err).map_err(|m| EmbeddedError::Broker { broker, message: m })
    }
}

fn check(err: rdsys::rd_kafka_resp_err_t) -> Result<(), String> {
    if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(rdkafka::error::RDKafkaErrorCode::from(err).to_string())
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        // SAFETY: created in `start`, destroyed once, before its owning handle.
        unsafe { rdsys::rd_kafka_mock_cluster_destroy(self.cluster) };
    }
}
