//! Unit tests of the commit protocol on the local store: naming, commit, fencing, recovery and
//! replay of a half-published commit.

use std::collections::BTreeMap;

use bytes::Bytes;
use object_store::ObjectStoreExt;

use super::*;

fn store(dir: &std::path::Path) -> Store {
    Store::with_url(dir.to_str().unwrap(), &BTreeMap::new()).unwrap()
}

fn file(topic: &str, p: i32, first: i64, last: i64) -> PendingFile {
    let name = final_file_name(topic, p, first, last, 10, "raw");
    PendingFile {
        final_path: format!("topics/{topic}/partition={p}/{name}"),
        data: Bytes::from(format!("{first}..{last}\n")),
        rows: (last - first + 1) as u64,
        first_offset: first,
        last_offset: last,
    }
}

#[test]
fn final_names_are_zero_padded() {
    assert_eq!(
        final_file_name("t", 3, 0, 41, 10, "parquet"),
        "t+3+0000000000+0000000041.parquet"
    );
    assert_eq!(final_file_name("t", 0, 5, 7, 3, "raw"), "t+0+005+007.raw");
}

#[tokio::test]
async fn commit_then_recover_resumes_after_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = CommitLog::new(store(dir.path()), "topics", "w1");
    assert_eq!(
        log.recover("t", 0).await.unwrap(),
        Recovered {
            next_seq: 0,
            next_offset: None
        }
    );
    let out = log
        .commit("t", 0, 0, 0, 9, vec![file("t", 0, 0, 9)], vec![])
        .await
        .unwrap();
    assert!(matches!(out, CommitOutcome::Committed(_)));
    let out = log
        .commit("t", 0, 1, 10, 19, vec![file("t", 0, 10, 19)], vec![])
        .await
        .unwrap();
    assert!(matches!(out, CommitOutcome::Committed(_)));
    let rec = log.recover("t", 0).await.unwrap();
    assert_eq!(
        rec,
        Recovered {
            next_seq: 2,
            next_offset: Some(20)
        }
    );
    let final_path = dir
        .path()
        .join("topics/t/partition=0/t+0+0000000010+0000000019.raw");
    assert_eq!(std::fs::read_to_string(final_path).unwrap(), "10..19\n");
    // Nothing is left in staging once published.
    let staging = dir.path().join("topics/_streamx/staging/t/0/w1");
    let left: Vec<_> = walk(&staging);
    assert!(left.is_empty(), "staging not cleaned: {left:?}");
    // Other partitions are independent.
    assert_eq!(log.recover("t", 1).await.unwrap().next_seq, 0);
}

#[tokio::test]
async fn second_writer_of_same_sequence_is_fenced_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = CommitLog::new(store(dir.path()), "topics", "a");
    let b = CommitLog::new(store(dir.path()), "topics", "b");
    let won = a
        .commit("t", 0, 0, 0, 9, vec![file("t", 0, 0, 9)], vec![])
        .await
        .unwrap();
    assert!(matches!(won, CommitOutcome::Committed(_)));
    let lost = b
        .commit("t", 0, 0, 0, 4, vec![file("t", 0, 0, 4)], vec![])
        .await
        .unwrap();
    assert!(matches!(lost, CommitOutcome::Fenced { seq: 0 }));
    assert!(!dir
        .path()
        .join("topics/t/partition=0/t+0+0000000000+0000000004.raw")
        .exists());
    assert!(walk(&dir.path().join("topics/_streamx/staging/t/0/b")).is_empty());
    // The loser learns from the store where the winner got to.
    assert_eq!(b.recover("t", 0).await.unwrap().next_offset, Some(10));
}

#[tokio::test]
async fn concurrent_writers_race_for_one_sequence_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = CommitLog::new(store(dir.path()), "topics", &format!("w{w}"));
        tasks.push(tokio::spawn(async move {
            log.commit("t", 0, 0, 0, w, vec![file("t", 0, 0, w)], vec![])
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), CommitOutcome::Committed(_)) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let finals = walk(&dir.path().join("topics/t"));
    assert_eq!(finals.len(), 1, "{finals:?}");
}

#[tokio::test]
async fn recovery_replays_a_half_published_commit() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let log = CommitLog::new(st.clone(), "topics", "w1");
    // Simulate a crash after the commit object was created but before publish: stage by hand.
    let f = file("t", 2, 0, 4);
    let staging = log.staging_rel("t", 2, 0, "t+2+0000000000+0000000004.raw");
    st.inner
        .put(&st.path(&staging), f.data.clone().into())
        .await
        .unwrap();
    let record = CommitRecord {
        version: COMMIT_FORMAT_VERSION,
        topic: "t".into(),
        partition: 2,
        seq: 0,
        start_offset: 0,
        end_offset: 4,
        writer: "w1".into(),
        job: None,
        files: vec![CommittedFile {
            staging,
            final_path: f.final_path.clone(),
            rows: 5,
            bytes: f.data.len() as u64,
            first_offset: 0,
            last_offset: 4,
        }],
    };
    let path = log.commit_path("t", 2, 0);
    st.inner
        .put(&path, serde_json::to_vec(&record).unwrap().into())
        .await
        .unwrap();
    let other = CommitLog::new(st.clone(), "topics", "w2");
    let rec = other.recover("t", 2).await.unwrap();
    assert_eq!(
        rec,
        Recovered {
            next_seq: 1,
            next_offset: Some(5)
        }
    );
    assert!(dir.path().join(&f.final_path).exists());
    // Replaying again is harmless.
    assert_eq!(other.recover("t", 2).await.unwrap(), rec);
}

#[tokio::test]
async fn a_commit_whose_files_vanished_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let log = CommitLog::new(st.clone(), "topics", "w1");
    log.commit("t", 0, 0, 0, 9, vec![file("t", 0, 0, 9)], vec![])
        .await
        .unwrap();
    std::fs::remove_file(
        dir.path()
            .join("topics/t/partition=0/t+0+0000000000+0000000009.raw"),
    )
    .unwrap();
    let err = log.recover("t", 0).await.unwrap_err().to_string();
    assert!(
        err.contains("neither its staged copy nor the final file exists"),
        "{err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn job(name: &str) -> JobIdentity {
    JobIdentity {
        name: name.into(),
        takeover: None,
    }
}

/// A job's sweep applies its own (short) staging.cleanup.age.ms to its own job's staged files
/// only: another job's live writer, whose age may be far longer, keeps its spilled file until
/// the foreign age. Before, any job's sweep deleted every unexplained staged file older than its
/// own age, and the other job's next commit named a deleted file.
#[tokio::test]
async fn a_sweep_leaves_another_jobs_young_staged_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let (a, b) = (job("archive"), job("parquet"));
    let writer_a = CommitLog::new(st.clone(), "topics", &a.new_writer_id()).for_job(a.clone());
    let writer_b = CommitLog::new(st.clone(), "topics", &b.new_writer_id()).for_job(b);
    let spilled = writer_a.stage("t", 0, 0, file("t", 0, 0, 4)).await.unwrap();
    let now = StagingCleanup {
        min_age: std::time::Duration::ZERO,
    };
    let report = writer_b.sweep(now).await.unwrap();
    assert_eq!((report.staging_deleted, report.staging_kept), (0, 1));
    let out = writer_a
        .commit("t", 0, 0, 0, 4, vec![], vec![spilled])
        .await
        .expect("the spilled file is still there to publish");
    assert!(matches!(out, CommitOutcome::Committed(_)));
    // The job's own orphans go at its own age.
    writer_a.stage("t", 0, 7, file("t", 0, 5, 9)).await.unwrap();
    let report = writer_a.sweep(now).await.unwrap();
    assert_eq!(report.staging_deleted, 1);
}

#[test]
fn writer_ids_carry_their_jobs_tag() {
    let a = job("a");
    let id = a.new_writer_id();
    assert_eq!(writer_job_tag(&id), Some(a.tag().as_str()));
    assert_ne!(a.tag(), job("b").tag());
    assert_eq!(job_tag("a"), job_tag("a"), "stable");
    assert_eq!(writer_job_tag("w1"), None, "older ids have no tag");
    assert_eq!(writer_job_tag("4f2a9c0e5b7d1f3c"), None);
}

/// Recovery refuses a partition whose newest commit another job made, and continues it with
/// commit.takeover.job; commits without a job name are continued by anyone.
#[tokio::test]
async fn recovery_refuses_another_jobs_chain_unless_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let first = CommitLog::new(st.clone(), "topics", "w1").for_job(job("first"));
    first
        .commit("t", 0, 0, 0, 9, vec![file("t", 0, 0, 9)], vec![])
        .await
        .unwrap();
    let second = CommitLog::new(st.clone(), "topics", "w2").for_job(job("second"));
    match second.recover("t", 0).await {
        Err(CommitError::OtherJob { owner, ours, .. }) => {
            assert_eq!((owner.as_str(), ours.as_str()), ("first", "second"))
        }
        other => panic!("expected OtherJob, got {other:?}"),
    }
    let taking_over = JobIdentity {
        name: "second".into(),
        takeover: Some("first".into()),
    };
    let second = CommitLog::new(st.clone(), "topics", "w2").for_job(taking_over);
    assert_eq!(second.recover("t", 0).await.unwrap().next_offset, Some(10));
    let tool = CommitLog::new(st, "topics", "reader");
    assert_eq!(tool.recover("t", 1).await.unwrap().next_seq, 0);
    assert!(tool.recover("t", 0).await.is_ok(), "readers without a job");
}

/// Consumption waits for the start-up sweep, which replays the newest commit of every partition
/// under `topics.dir` (a few round trips each): on a store 20 ms away, 64 partitions must overlap
/// as much as recovery on assignment does, not 8 at a time (256 partitions 60 ms away took 7.7 s
/// before the first record).
#[tokio::test]
async fn the_sweep_replays_many_partitions_at_once_on_a_distant_store() {
    use crate::store::delayed::DelayedStore;
    let dir = tempfile::tempdir().unwrap();
    let local = store(dir.path());
    let log = CommitLog::new(local.clone(), "topics", "w1");
    let commits = (0..64).map(|p| {
        let log = log.clone();
        async move {
            log.commit("t", p, 0, 0, 9, vec![file("t", p, 0, 9)], vec![])
                .await
        }
    });
    for outcome in futures::future::join_all(commits).await {
        assert!(matches!(outcome, Ok(CommitOutcome::Committed(_))));
    }
    let delayed = std::sync::Arc::new(DelayedStore::new(
        local.inner.clone(),
        std::time::Duration::from_millis(20),
    ));
    let distant = Store {
        inner: delayed.clone(),
        ..local
    };
    let cleanup = StagingCleanup {
        min_age: std::time::Duration::from_secs(3600),
    };
    let report = CommitLog::new(distant, "topics", "w2")
        .sweep(cleanup)
        .await
        .unwrap();
    assert_eq!(report.partitions, 64);
    let peak = delayed.peak_in_flight();
    assert!(
        peak >= 16,
        "the sweep had at most {peak} store calls in flight at once"
    );
}

/// Recovery on assignment reads the newest commit and the one before it (the chain check): both
/// names come from one listing, so on a store far away the two reads go out together.
#[tokio::test]
async fn recovery_reads_the_newest_and_previous_commits_together() {
    use crate::store::delayed::DelayedStore;
    let dir = tempfile::tempdir().unwrap();
    let local = store(dir.path());
    let log = CommitLog::new(local.clone(), "topics", "w1");
    for (seq, (first, last)) in [(0, 9), (10, 19), (20, 29)].into_iter().enumerate() {
        let files = vec![file("t", 0, first, last)];
        let outcome = log.commit("t", 0, seq as u64, first, last, files, vec![]);
        assert!(matches!(outcome.await, Ok(CommitOutcome::Committed(_))));
    }
    let delayed = std::sync::Arc::new(DelayedStore::new(
        local.inner.clone(),
        std::time::Duration::from_millis(20),
    ));
    let distant = Store {
        inner: delayed.clone(),
        ..local
    };
    let rec = CommitLog::new(distant, "topics", "w2")
        .recover("t", 0)
        .await
        .unwrap();
    assert_eq!(rec.next_offset, Some(30));
    assert_eq!(rec.next_seq, 3);
    let peak = delayed.peak_in_flight();
    assert_eq!(
        peak, 2,
        "the newest and previous commits were read one after the other"
    );
}

#[tokio::test]
async fn a_reader_sees_topics_partitions_and_newest_commits_without_a_writer_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = CommitLog::new(store(dir.path()), "topics", "w1");
    for (topic, p, seq, first, last) in [
        ("a", 0, 0, 0, 9),
        ("a", 0, 1, 10, 19),
        ("a", 3, 0, 0, 4),
        ("b", 1, 0, 0, 0),
    ] {
        let files = vec![file(topic, p, first, last)];
        let out = log.commit(topic, p, seq, first, last, files, vec![]).await;
        assert!(matches!(out.unwrap(), CommitOutcome::Committed(_)));
    }
    let reader = reader::Reader::new(store(dir.path()), "topics");
    assert_eq!(reader.topics().await.unwrap(), ["a", "b"]);
    assert_eq!(reader.partitions("a").await.unwrap(), [0, 3]);
    let newest = reader.newest_commit("a", 0).await.unwrap().unwrap();
    assert_eq!((newest.seq, newest.end_offset), (1, 19));
    assert!(reader.newest_commit("a", 1).await.unwrap().is_none());
    assert!(reader.partitions("none").await.unwrap().is_empty());
}
