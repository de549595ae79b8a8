//! [`RecordLog`] for every record kind (commits, compaction records, schema versions), under a
//! [`FaultyStore`]: a create that landed but answered `AlreadyExists` (a client retry) is ours,
//! another writer's record is lost to, and list / read / newest / prune see what was created.
//! The owners' own retried-create tests: `commit::fault_tests` (commits),
//! `decode::schema_store` (schema versions), and the journal's below.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use super::*;
use crate::commit::{CommitRecord, Layout, COMMIT_FORMAT_VERSION};
use crate::compact::journal::{CompactionRecord, Journal, RecordInput};
use crate::decode::schema_store::VersionRecord;
use crate::store::faults::{FaultAction, FaultRule, FaultyStore, Op};

/// The local store under `dir`, wrapped in a fault injector.
fn faulty(dir: &std::path::Path) -> (Store, Arc<FaultyStore>) {
    let real = Store::with_url(dir.to_str().unwrap(), &BTreeMap::new()).unwrap();
    let faults = Arc::new(FaultyStore::new(real.inner.clone()));
    let store = Store {
        inner: faults.clone(),
        ..real
    };
    (store, faults)
}

/// The contract of [`RecordLog::create`] for one record kind: `make(seq, writer)` makes the
/// record a writer would create as `seq`.
async fn check_log<R: StoredRecord + Debug>(keys: LogKeys, make: impl Fn(u64, &str) -> R) {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let log = RecordLog::<R>::new(store, keys.clone());
    // The create is applied, then the client sees AlreadyExists (its retry after a lost answer).
    faults.add(FaultRule::new(
        Op::Put,
        &keys.dir,
        FaultAction::ApplyThenAlreadyExists,
    ));
    let created = log.create(0, &make(0, "us")).await.unwrap();
    assert_eq!(faults.fired(), 1);
    assert_eq!(
        created,
        Created::Retried,
        "{}: our own retried create",
        R::KIND
    );
    assert_eq!(log.read(0).await.unwrap(), make(0, "us"));
    assert_eq!(log.create(1, &make(1, "us")).await.unwrap(), Created::Won);
    // Another writer's create of a taken sequence number loses, and sees the winner.
    let lost = log.create(1, &make(1, "them")).await.unwrap();
    assert_eq!(lost, Created::Lost(make(1, "us")), "{}", R::KIND);
    let seqs: Vec<u64> = log.list().await.unwrap().iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [0, 1]);
    assert_eq!(log.newest().await.unwrap(), Some((1, make(1, "us"))));
    log.prune(0).await;
    log.prune(0).await; // gone already: fine
    let seqs: Vec<u64> = log.list().await.unwrap().iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [1]);
    let err = log.read(0).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

fn commit_record(seq: u64, writer: &str) -> CommitRecord {
    CommitRecord {
        version: COMMIT_FORMAT_VERSION,
        topic: "t".into(),
        partition: 0,
        seq,
        start_offset: seq as i64 * 10,
        end_offset: seq as i64 * 10 + 9,
        writer: writer.into(),
        job: None,
        files: vec![],
    }
}

fn compaction_record(seq: u64, run: &str) -> CompactionRecord {
    CompactionRecord {
        version: 1,
        topic: "t".into(),
        dir: "date=2024-01-01".into(),
        seq,
        run: run.into(),
        created_ms: 1_700_000_000_000,
        inputs: vec![RecordInput {
            path: format!("topics/t/date=2024-01-01/{run}.parquet"),
            bytes: 10,
        }],
        outputs: vec![],
        hive: None,
    }
}

fn schema_version(n: u64, writer: &str) -> VersionRecord {
    VersionRecord {
        topic: "t".into(),
        version: n,
        schema: Schema::new(vec![Field::new(writer, DataType::Int64, true)]),
    }
}

#[tokio::test]
async fn commit_records_follow_the_record_log_contract() {
    check_log(Layout::new("topics").commit_keys("t", 0), commit_record).await;
}

#[tokio::test]
async fn compaction_records_follow_the_record_log_contract() {
    let keys = Layout::new("topics").compaction_keys("t", "date=2024-01-01");
    check_log(keys, compaction_record).await;
}

#[tokio::test]
async fn schema_versions_follow_the_record_log_contract() {
    check_log(Layout::new("topics").schema_keys("t"), schema_version).await;
}

/// The journal's own create: a retried create of our record owns the directory; another run's
/// record of the same sequence number does not.
#[tokio::test]
async fn a_retried_journal_create_that_had_succeeded_owns_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    faults.add(FaultRule::new(
        Op::Put,
        "_streamx/compactions/",
        FaultAction::ApplyThenAlreadyExists,
    ));
    let journal = Journal::new(store, Layout::new("topics"));
    let ours = compaction_record(0, "run-a");
    assert!(journal.create(&ours).await.unwrap().is_ours());
    assert_eq!(faults.fired(), 1);
    let theirs = compaction_record(0, "run-b");
    assert_eq!(
        journal.create(&theirs).await.unwrap(),
        Created::Lost(ours.clone())
    );
    let listed = journal.list("t").await.unwrap();
    assert_eq!(listed["date=2024-01-01"].len(), 1);
    assert_eq!(journal.read("t", "date=2024-01-01", 0).await.unwrap(), ours);
}
