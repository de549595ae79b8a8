//! The swap of one directory: rewrite into staging, create the record (the atomic point),
//! publish outputs, delete inputs, clean up.
//!
//! ```text
//!  rewrite ──► staged outputs ──► create record k (PutMode::Create)
//!                                   ├─ Lost: another compactor owns the directory ──► discard, back off
//!                                   └─ Won ──► publish outputs ──► delete inputs ──► staging <= k deleted
//! ```
//!
//! Fault points (`STREAMX_FAULT`): `compact.after_stage`, `compact.after_record`, then in
//! [`Journal::complete`] `compact.after_first_publish`, `compact.after_publish`,
//! `compact.after_first_delete`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::CompactError;
use super::journal::{CompactionRecord, Created, Journal, RecordInput, RECORD_VERSION};
use super::plan::DirPlan;
use super::rewrite::{self, RewriteSettings, Staging};
use crate::fault;
use crate::store::Store;

/// What became of one directory.
#[derive(Debug)]
pub enum Swapped {
    /// Swapped; with the time from the first publish to the last delete (the window in which a
    /// directory-listing reader can see a row twice).
    Done(CompactionRecord, std::time::Duration),
    /// Another compactor created this directory's record first.
    BackedOff,
    /// The plan grew older than half of `compact.retention.ms` before its record was created.
    Expired,
}

/// Everything a directory's swap shares with the others of a run.
pub struct SwapContext {
    pub store: Store,
    pub journal: Journal,
    pub settings: RewriteSettings,
    pub run: String,
    pub planned_ms: i64,
    pub retention_ms: i64,
    pub on_input: Arc<dyn Fn(u64) + Send + Sync>,
}

/// Compacts one directory as record `seq` (its newest record + 1).
pub async fn swap(ctx: Arc<SwapContext>, plan: DirPlan, seq: u64) -> Result<Swapped, CompactError> {
    let handle = tokio::runtime::Handle::current();
    let (c, p) = (ctx.clone(), plan.clone());
    let outputs = tokio::task::spawn_blocking(move || {
        let staging = Staging {
            store: &c.store,
            layout: c.journal.layout(),
            handle,
            seq,
            run: &c.run,
        };
        rewrite::rewrite(&c.settings, &staging, &p, c.on_input.as_ref())
    })
    .await
    .map_err(|e| CompactError::Write {
        dir: format!("{}/{}", plan.topic, plan.dir),
        message: format!("the rewrite task failed: {e}"),
    })?;
    let outputs = match outputs {
        Err(CompactError::InputGone { dir, path }) => {
            tracing::info!(%dir, %path, "an input vanished: another compactor took the directory; backing off");
            return Ok(Swapped::BackedOff);
        }
        other => other?,
    };
    fault::point("compact.after_stage");
    let record = CompactionRecord {
        version: RECORD_VERSION,
        topic: plan.topic.clone(),
        dir: plan.dir.clone(),
        seq,
        run: ctx.run.clone(),
        created_ms: crate::clock::wall_ms(),
        inputs: plan
            .inputs
            .iter()
            .map(|f| RecordInput {
                path: f.path.clone(),
                bytes: f.bytes,
            })
            .collect(),
        outputs,
    };
    if record.created_ms - ctx.planned_ms > ctx.retention_ms / 2 {
        ctx.journal.discard(&record.outputs).await;
        return Ok(Swapped::Expired);
    }
    if ctx.journal.create(&record).await? == Created::Lost {
        tracing::info!(topic = %plan.topic, dir = %plan.dir, seq, "another compactor owns this directory; backing off");
        ctx.journal.discard(&record.outputs).await;
        return Ok(Swapped::BackedOff);
    }
    fault::point("compact.after_record");
    let window = std::time::Instant::now();
    ctx.journal.complete(&record).await?;
    let window = window.elapsed();
    let newest = BTreeMap::from([(plan.dir.clone(), seq)]);
    ctx.journal
        .clean_staging(&plan.topic, &newest, Some(&plan.dir), ctx.retention_ms / 2)
        .await?;
    Ok(Swapped::Done(record, window))
}
