//! `streamx compact`: merges the small files of closed output directories into target-sized
//! ones, safely for every reader and for ingest (shared/DESIGN.md, "Compaction").
//!
//! Owns: its keys ([`config`]), planning ([`plan`], [`scan`], [`filter`]), the per-format
//! rewrites ([`rewrite`]), the journal of swaps ([`journal`]), the swap of one directory
//! ([`swap`]), the Hive partition switch of `compact.hive.swap=location` ([`hive`]), the
//! journal-aware listing readers use ([`view`]) and what a run reports ([`report`]). Every store path comes from [`crate::commit::Layout`].
//!
//! ```text
//!  per topic: records ──► complete the newest record of each directory if a killed run left it
//!             │           (publish outputs, inputs to the trash), delete dead staging and the
//!             │           trash past compact.input.grace.ms, prune records; a directory whose
//!             │           record cannot be finished is reported and left out of this run
//!             ▼
//!  list data directories ──► pinned files (newest ingest commit of each Kafka partition)
//!             │             ──► --where on partition columns ──► select + bin-pack (plan)
//!             ▼
//!  --dry-run: print the plan │ otherwise, compact.parallelism directories at a time:
//!                            └─► rewrite to staging ──► create record (PutMode::Create)
//!                                ──► publish outputs ──► inputs to the trash
//! ```
//!
//! Contract:
//! - a listing never misses a row: inputs leave their directory (into the trash, deleted by a
//!   later run after `compact.input.grace.ms`) only after every output is published; a reader
//!   through [`view::JournalView`] (`streamx query`) also reads an input it listed before the
//!   swap from the trash; other readers that open a listed input after its move fail (README,
//!   "What readers see");
//! - a directory-listing reader can see a row twice only between the first publish and the last
//!   input's move of one swap; one that lists through [`view::JournalView`] never;
//! - one directory whose record cannot be finished (outputs another run deleted, a location
//!   swap to finish without Hive settings) is reported and skipped; the others go on;
//! - a kill at any point leaves a state the next `streamx compact` completes (record exists) or
//!   rolls back (no record: the staged outputs are deleted); two compactors never both swap a
//!   directory (the loser of the record's create backs off);
//! - files named by a Kafka partition's newest commit record are never inputs, so ingest
//!   recovery (which replays that commit's publish) keeps working.

pub mod config;
pub mod error;
pub mod filter;
pub mod hive;
pub mod journal;
pub mod plan;
pub mod report;
pub mod rewrite;
pub mod scan;
pub mod swap;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

pub use error::CompactError;
use hive::HiveSwap;
use journal::Journal;
use plan::DirPlan;
pub use report::Report;
use report::{Problem, Skipped};
use swap::{SwapContext, Swapped};

use crate::commit::reader::Reader;
use crate::commit::Layout;
use crate::config::Config;
use crate::store::Store;

/// What to compact and how to show it.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    /// Only these topics (all topics under `topics.dir` when empty).
    pub topics: Vec<String>,
    /// SQL on the partition columns limiting the directories.
    pub where_sql: Option<String>,
    /// Plan only.
    pub dry_run: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Runs `streamx compact` once: recovers, plans, and (unless `dry_run`) compacts.
pub fn run(config: &Config, options: &CompactOptions) -> Result<Report, CompactError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CompactError::Runtime)?;
    runtime.block_on(run_async(config, options))
}

async fn run_async(config: &Config, options: &CompactOptions) -> Result<Report, CompactError> {
    let started = Instant::now();
    let store = Store::with_url(&config.store_url, &config.store_options)?;
    let layout = Layout::new(&config.topics_dir);
    let journal = Journal::new(store.clone(), layout.clone());
    let log = Reader::new(store.clone(), &config.topics_dir);
    let cfg = config.compact;
    let hive = HiveSwap::from_config(config)?.map(Arc::new);
    let topics = if options.topics.is_empty() {
        scan::topics(&store, &layout).await?
    } else {
        options.topics.clone()
    };
    let mut report = Report::default();
    let planned_ms = crate::clock::wall_ms();
    let mut plans = Vec::new();
    let mut newest: BTreeMap<(String, String), u64> = BTreeMap::new();
    for topic in &topics {
        let recovered = recover(
            &journal,
            hive.as_deref(),
            topic,
            &cfg,
            options.dry_run,
            &mut report,
        )
        .await?;
        for (dir, seq) in recovered.newest {
            newest.insert((topic.clone(), dir), seq);
        }
        let mut planned = Vec::new();
        plan_topic(
            &store,
            &layout,
            &log,
            config,
            topic,
            options,
            &mut planned,
            &mut report,
        )
        .await?;
        planned.retain(|p| !recovered.blocked.contains(&p.dir));
        plans.extend(planned);
    }
    let (plans, deferred) = plan::limit_bytes(plans, cfg.max_bytes_per_run);
    report.plans = plans;
    report.deferred = deferred;
    if !options.dry_run {
        execute(
            store,
            (journal, hive),
            config,
            options,
            &newest,
            planned_ms,
            &mut report,
        )
        .await;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What recovery left for the rest of a run: each directory's newest sequence number, and the
/// directories that must not be compacted this run (their newest record could not be finished).
#[derive(Debug, Default)]
struct Recovered {
    newest: BTreeMap<String, u64>,
    blocked: BTreeSet<String>,
}

/// Completes the newest record of every directory of `topic` that a killed run left half done,
/// deletes staged outputs no record will publish and trashed inputs past
/// `compact.input.grace.ms`, prunes old records. A location swap's partition is put back home if
/// a kill left it on the staged outputs. A directory whose record cannot be finished (a missing
/// output, a pending switch and no Hive settings) is reported and blocked, its staging kept;
/// the other directories go on. A dry run only reads.
async fn recover(
    journal: &Journal,
    hive: Option<&HiveSwap>,
    topic: &str,
    cfg: &config::CompactConfig,
    dry_run: bool,
    report: &mut Report,
) -> Result<Recovered, CompactError> {
    let retention_ms = cfg.retention_ms as i64;
    let records = journal.list(topic).await?;
    let mut out = Recovered::default();
    let mut fresh = BTreeSet::new();
    for (dir, listed) in &records {
        let Some(last) = listed.last() else { continue };
        out.newest.insert(dir.clone(), last.seq);
        if dry_run {
            continue;
        }
        match recover_dir(journal, hive, topic, dir, last.seq, report).await {
            Ok(true) => {
                fresh.insert(dir.clone());
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%topic, %dir, error = %e, "directory left as it is");
                report.problems.push(Problem {
                    topic: topic.to_string(),
                    dir: dir.clone(),
                    local: e.is_directory_local(),
                    message: e.to_string(),
                });
                out.blocked.insert(dir.clone());
            }
        }
        journal.prune(topic, dir, listed, retention_ms).await;
    }
    if !dry_run {
        let keep = if cfg.hive_location_swap {
            retention_ms
        } else {
            0
        };
        let ages = (retention_ms / 2, keep);
        journal
            .clean_staging(topic, &out.newest, None, ages, &out.blocked)
            .await?;
        let grace = cfg.input_grace_ms as i64;
        journal.clean_trash(topic, &records, grace, &fresh).await?;
    }
    Ok(out)
}

/// Finishes the newest record `seq` of one directory: completes it if a killed run left it half
/// done (true), or puts a location swap's partition back home unless a run already did.
async fn recover_dir(
    journal: &Journal,
    hive: Option<&HiveSwap>,
    topic: &str,
    dir: &str,
    seq: u64,
    report: &mut Report,
) -> Result<bool, CompactError> {
    let record = journal.read(topic, dir, seq).await?;
    if record.hive.is_some() && hive.is_none() && !journal.is_home(&record).await? {
        return Err(CompactError::HiveNeeded {
            record: journal.layout().compaction_record(topic, dir, seq),
        });
    }
    if !journal.is_complete(&record).await? {
        let (published, moved) = journal.complete(&record, hive).await?;
        tracing::info!(%topic, %dir, seq, published, moved, "completed the swap of an earlier run");
        report.recovered += 1;
        return Ok(true);
    }
    if let (Some(swap), Some(client)) = (&record.hive, hive) {
        // One metastore call per directory whose newest swap is not known to be home.
        if !journal.is_home(&record).await? && journal.put_home(&record, swap, client).await? {
            tracing::info!(%topic, %dir, seq, "put the Hive partition of an earlier run's swap back home");
            report.recovered += 1;
        }
    }
    Ok(false)
}

/// Lists, filters and selects the directories of one topic.
#[allow(clippy::too_many_arguments)]
async fn plan_topic(
    store: &Store,
    layout: &Layout,
    log: &Reader,
    config: &Config,
    topic: &str,
    options: &CompactOptions,
    plans: &mut Vec<DirPlan>,
    report: &mut Report,
) -> Result<(), CompactError> {
    let mut dirs = scan::directories(store, layout, topic, config.file_extension()).await?;
    // After the listing (see scan::pinned).
    let pinned = scan::pinned(log, topic).await?;
    if let Some(predicate) = &options.where_sql {
        let names: Vec<String> = dirs.iter().map(|d| d.dir.clone()).collect();
        let keep = filter::matching(&names, predicate).await?;
        dirs = keep.into_iter().map(|i| dirs[i].clone()).collect();
    }
    let now = crate::clock::wall_ms();
    for dir in &dirs {
        match plan::select(dir, &pinned, &config.compact, now) {
            Ok(p) => plans.push(p),
            Err(skip) => report.skipped.push(Skipped {
                topic: topic.to_string(),
                dir: dir.dir.clone(),
                skip,
            }),
        }
    }
    Ok(())
}

/// Compacts the planned directories, `compact.parallelism` at a time.
async fn execute(
    store: Store,
    (journal, hive): (Journal, Option<Arc<HiveSwap>>),
    config: &Config,
    options: &CompactOptions,
    newest: &BTreeMap<(String, String), u64>,
    planned_ms: i64,
    report: &mut Report,
) {
    let total: u64 = report.plans.iter().map(|p| p.input_bytes()).sum();
    let bar = progress_bar(options.progress, total);
    let b = bar.clone();
    let ctx = Arc::new(SwapContext {
        store,
        journal,
        settings: rewrite::RewriteSettings::from_config(config),
        run: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        planned_ms,
        retention_ms: config.compact.retention_ms as i64,
        on_input: Arc::new(move |bytes| b.inc(bytes)),
        hive,
        location_swap: config.compact.hive_location_swap,
    });
    let plans = report.plans.clone();
    let results: Vec<_> = futures::stream::iter(plans)
        .map(|p| {
            let seq = newest
                .get(&(p.topic.clone(), p.dir.clone()))
                .map_or(0, |s| s + 1);
            let ctx = ctx.clone();
            async move { (p.clone(), swap::swap(ctx, p, seq).await) }
        })
        .buffer_unordered(config.compact.parallelism)
        .collect()
        .await;
    bar.finish_and_clear();
    for (plan, result) in results {
        account(report, &plan, result);
    }
}

fn account(report: &mut Report, plan: &DirPlan, result: Result<Swapped, CompactError>) {
    match result {
        Ok(Swapped::Done(record, window)) => {
            report.dirs_done += 1;
            report.duplicate_window_ms = report.duplicate_window_ms.max(window.as_millis() as u64);
            report.files_in += record.inputs.len();
            report.files_out += record.outputs.len();
            report.bytes_in += record.inputs.iter().map(|i| i.bytes).sum::<u64>();
            report.bytes_out += record.outputs.iter().map(|o| o.bytes).sum::<u64>();
            report.rows += record.outputs.iter().map(|o| o.rows).sum::<u64>();
        }
        Ok(Swapped::BackedOff) => report.backed_off += 1,
        Ok(Swapped::Expired) => report.deferred += 1,
        Err(e) => {
            tracing::warn!(topic = %plan.topic, dir = %plan.dir, error = %e, "directory not compacted");
            report.problems.push(Problem {
                topic: plan.topic.clone(),
                dir: plan.dir.clone(),
                local: e.is_directory_local(),
                message: e.to_string(),
            });
        }
    }
}

/// A progress bar over input bytes on stderr, or a hidden one.
fn progress_bar(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "compacting [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
