//! The swap of one directory: rewrite into staging, create the record (the atomic point),
//! publish outputs, move inputs to the trash, clean up.
//!
//! ```text
//!  rewrite ──► staged outputs ──► create record k (PutMode::Create)
//!                                   ├─ Lost: another compactor owns the directory ──► discard, back off
//!                                   └─ Won ──► publish outputs ──► inputs to the trash ──► staging <= k deleted
//! ```
//!
//! Fault points (`STREAMX_FAULT`): `compact.after_stage`, `compact.after_record`, then in
//! [`Journal::complete`] `compact.after_first_publish`, `compact.after_publish`,
//! `compact.after_first_delete` (after the first input moved to the trash); with a location swap ([`super::hive`]) also
//! `compact.after_switch` (partition pointed at the staged outputs) and
//! `compact.before_switch_back` (inputs in the trash, partition not yet back home).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::CompactError;
use super::hive::{HiveSwap, PartitionSwap};
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
    Done(Box<CompactionRecord>, std::time::Duration),
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
    /// The metastore client (`hive.integration=true`).
    pub hive: Option<Arc<HiveSwap>>,
    /// `compact.hive.swap=location`.
    pub location_swap: bool,
}

impl SwapContext {
    /// (max age of unpublished staging, how long published staging is kept) for
    /// [`Journal::clean_staging`].
    pub fn staging_ages(&self) -> (i64, i64) {
        let keep = if self.location_swap {
            self.retention_ms
        } else {
            0
        };
        (self.retention_ms / 2, keep)
    }

    fn hive(&self) -> Option<&HiveSwap> {
        self.hive.as_deref()
    }
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
    let hive = partition_swap(&ctx, &plan, &outputs).await?;
    let record = CompactionRecord {
        version: if hive.is_some() { RECORD_VERSION } else { 1 },
        hive,
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
    if let Created::Lost(_) = ctx.journal.create(&record).await? {
        tracing::info!(topic = %plan.topic, dir = %plan.dir, seq, "another compactor owns this directory; backing off");
        ctx.journal.discard(&record.outputs).await;
        return Ok(Swapped::BackedOff);
    }
    fault::point("compact.after_record");
    let window = std::time::Instant::now();
    ctx.journal.complete(&record, ctx.hive()).await?;
    let window = window.elapsed();
    let newest = BTreeMap::from([(plan.dir.clone(), seq)]);
    ctx.journal
        .clean_staging(
            &plan.topic,
            &newest,
            Some(&plan.dir),
            ctx.staging_ages(),
            &Default::default(),
        )
        .await?;
    Ok(Swapped::Done(Box::new(record), window))
}

/// The partition a location swap switches to the staged outputs' directory, with the files of
/// the directory that are not inputs (to be carried along into it); `None` in files mode,
/// without outputs, or when the directory's partition is not registered.
async fn partition_swap(
    ctx: &SwapContext,
    plan: &DirPlan,
    outputs: &[super::journal::RecordOutput],
) -> Result<Option<PartitionSwap>, CompactError> {
    let (Some(hive), true) = (ctx.hive(), ctx.location_swap) else {
        return Ok(None);
    };
    let Some((staged, _)) = outputs.first().and_then(|o| o.staging.rsplit_once('/')) else {
        return Ok(None);
    };
    let Some(mut swap) = hive.plan(&plan.topic, &plan.dir, staged)? else {
        tracing::info!(topic = %plan.topic, dir = %plan.dir, "no Hive partition registered for the directory: files swapped in place");
        return Ok(None);
    };
    let home = ctx
        .store
        .path(&ctx.journal.layout().data_dir(&plan.topic, &plan.dir));
    let listed = ctx
        .store
        .inner
        .list_with_delimiter(Some(&home))
        .await
        .map_err(|e| super::error::store_err("list (partition directory)", &home, e))?;
    let inputs: std::collections::HashSet<&str> =
        plan.inputs.iter().map(|f| f.path.as_str()).collect();
    for m in listed.objects {
        let (Some(rel), Some(name)) = (
            super::journal::relative(&ctx.store.root, &m.location),
            m.location.filename(),
        ) else {
            continue;
        };
        if !inputs.contains(rel.as_str()) && !name.starts_with(['_', '.']) {
            swap.carried.push((rel.clone(), format!("{staged}/{name}")));
        }
    }
    Ok(Some(swap))
}
