//! The `streamx` command line. Thin: parses arguments, loads the config and calls the library.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use clap::{Parser, Subcommand};
use streamx::alloc::{self, MallocProfile};
use streamx::config::Config;
use streamx::ingest::{self, IngestOptions};
use streamx::quickstart::{self, QuickstartOptions};

#[derive(Parser)]
#[command(
    name = "streamx",
    version,
    about = "Copies Kafka topics into object stores, exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume topics into the store until stopped (SIGINT/SIGTERM commit what is open, then exit).
    Ingest {
        /// A .properties file with the job's configuration.
        #[arg(long)]
        config: Option<PathBuf>,
        /// key=value, overriding the file and STREAMX_* environment variables; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Commit and exit once every assigned partition has been read to its end.
        #[arg(long)]
        stop_at_end: bool,
    },
    /// Run the Kafka-Connect-compatible REST API: jobs submitted as JSON, kept in
    /// config.storage.topic, run until stopped (SIGINT/SIGTERM commit what is open, then exit).
    Worker {
        /// A worker.properties file (Kafka Connect distributed-mode keys); CONNECT_* environment
        /// variables win over it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the configuration reference (every key, default and meaning) as Markdown: the
    /// source of docs/configuration.md.
    ConfigReference,
    /// Validate a configuration and print it (secrets redacted), without connecting anywhere.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Show the stored versions of each topic's inferred JSON schema (`_streamx/schemas`).
    Schema {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run SQL over the committed output: each topic is a table with its partition columns.
    Query {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// e.g. "SELECT hour, count(*) FROM clickstream GROUP BY hour ORDER BY hour"
        sql: String,
    },
    /// Merge the small files of closed output directories into target-sized ones (once, then
    /// exit; cron-friendly). Uses the ingest job's configuration and the compact.* keys.
    Compact {
        /// The ingest job's .properties file.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Only this topic; repeatable (default: every topic under topics.dir).
        #[arg(long = "topic", value_name = "TOPIC")]
        topics: Vec<String>,
        /// SQL on the partition columns, e.g. "dt < '2026-11-01'".
        #[arg(long = "where", value_name = "SQL")]
        where_sql: Option<String>,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan (with --dry-run) or the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Try StreamX with nothing installed: embedded broker, sample events, ingest, summary.
    Quickstart {
        #[arg(long, default_value_t = 50_000)]
        records: u64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Output directory (created; reused runs resume where the last one stopped).
        #[arg(long, default_value = "streamx-quickstart")]
        out: PathBuf,
    },
    /// Load sample ~1 KB clickstream events into a topic (for trying things out and benches).
    /// Without --bootstrap-servers it starts the embedded broker and keeps it running.
    Samples {
        #[arg(long, default_value = "clickstream")]
        topic: String,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        #[arg(long)]
        bootstrap_servers: Option<String>,
        /// Write the bootstrap servers here once the events are loaded.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Only print the `value.schema` of the sample events and exit.
        #[arg(long)]
        print_schema: bool,
    },
}

/// The running ingest's shutdown flag, set by SIGINT/SIGTERM.
static SHUTDOWN: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic load (OnceLock::get) and one atomic store.
    if let Some(flag) = SHUTDOWN.get() {
        flag.store(true, Ordering::Relaxed);
    }
}

fn parse_sets(set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    set.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn main() {
    if let Err(e) = run() {
        // One line (with its causes), no backtrace: these are messages for the user.
        eprintln!("streamx: {e:#}");
        std::process::exit(1);
    }
}

/// The job prepared from a file, the environment and `--set` pairs ([`streamx::job::prepare`],
/// as the worker prepares a job); errors say whose fault.
fn load(file: Option<&std::path::Path>, set: &[String]) -> anyhow::Result<Config> {
    let (_, config) = streamx::job::load(file, std::env::vars(), &parse_sets(set)?)
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
    Ok(config)
}

/// The shutdown flag, set by SIGINT/SIGTERM from now on.
fn shutdown_on_signals() -> Arc<AtomicBool> {
    let shutdown = SHUTDOWN
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    // SAFETY: the handler only does atomic operations.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    shutdown
}

/// `streamx worker`: runs until SIGINT/SIGTERM (every task commits what is open).
fn run_worker(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = streamx::worker::WorkerConfig::load(file, std::env::vars())
        .map_err(|e| anyhow::anyhow!("[user error] {e}"))?;
    // Every task of every job draws on the worker's one budget: malloc as for ingest, with its
    // resident-set ceiling.
    alloc::tune(MallocProfile::Ingest {
        workers: ingest::worker_count(),
        budget_bytes: config.memory_budget_bytes,
    });
    streamx::worker::run(config, shutdown_on_signals()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `streamx ingest`: runs until SIGINT/SIGTERM (open files are committed) or the end of input.
fn run_ingest(config: Config, stop_at_end: bool) -> anyhow::Result<()> {
    alloc::tune(MallocProfile::Ingest {
        workers: ingest::worker_count(),
        budget_bytes: config.memory_budget_bytes,
    });
    let shutdown = shutdown_on_signals();
    // The process's one memory budget and I/O runtime (the worker makes one for all its tasks).
    let process = ingest::Process::new(config.memory_budget_bytes, 1)
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
    let options = IngestOptions {
        stop_at_end,
        shutdown,
        process: Some(process),
        ..Default::default()
    };
    let snapshot =
        ingest::run(config, options).map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
    println!("{snapshot}");
    Ok(())
}

/// Prints a compaction plan or report; fails when a directory could not be compacted for a
/// reason outside it (a store failure: the next run finishes the work).
fn print_compaction(
    report: &streamx::compact::Report,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if dry_run {
        print!("{}", report.plan_table());
    } else {
        for p in &report.problems {
            eprintln!("streamx: {}/{}: {}", p.topic, p.dir, p.message);
        }
        println!("{}", report.summary());
    }
    if report.problems.iter().any(|p| !p.local) {
        anyhow::bail!("some directories were not compacted (see above); run again to finish");
    }
    Ok(())
}

/// `streamx check-config`: validates and prints the configuration (secrets redacted).
fn check_config(file: Option<&std::path::Path>, set: &[String]) -> anyhow::Result<()> {
    // Prepared with `${env:..}` / `${file:..}` resolved, printed as written (secrets masked).
    let (raw, config) = streamx::job::load(file, std::env::vars(), &parse_sets(set)?)
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
    for (key, value) in Config::redacted(&raw) {
        println!("{key}={value}");
    }
    println!(
        "# configuration is valid: {} (group {}) -> {}",
        config.name,
        config.group_id,
        streamx::config::secrets::mask_urls(&config.store_url)
    );
    Ok(())
}

/// `streamx compact`: one run, then the plan or the summary.
fn run_compact(
    config: Config,
    options: &streamx::compact::CompactOptions,
    json: bool,
) -> anyhow::Result<()> {
    alloc::tune(MallocProfile::Compaction {
        parallelism: config.compact.parallelism,
    });
    let report = streamx::compact::run(&config, options)
        .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
    print_compaction(&report, options.dry_run, json)
}

/// Where `streamx samples` loads its events.
struct SampleTarget {
    topic: String,
    partitions: i32,
    records: u64,
    bootstrap_servers: Option<String>,
    ready_file: Option<std::path::PathBuf>,
}

/// `streamx samples`: loads the events; with the embedded broker, keeps it running.
fn run_samples(t: &SampleTarget) -> anyhow::Result<()> {
    let (servers, cluster) = quickstart::load_samples(
        t.bootstrap_servers.as_deref(),
        &t.topic,
        t.partitions,
        t.records,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "loaded {} events into '{}' on {servers}",
        t.records, t.topic
    );
    if let Some(f) = &t.ready_file {
        std::fs::write(f, &servers).with_context(|| format!("writing {}", f.display()))?;
    }
    if cluster.is_some() {
        println!("embedded broker running; stop with Ctrl-C");
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

/// Logs to stderr, filtered by `STREAMX_LOG`.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMX_LOG")
                .unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run() -> anyhow::Result<()> {
    alloc::tune(MallocProfile::Lean);
    init_logging();
    match Cli::parse().command {
        Command::Ingest {
            config,
            set,
            stop_at_end,
        } => run_ingest(load(config.as_deref(), &set)?, stop_at_end)?,
        Command::Worker { config } => run_worker(config.as_deref())?,
        Command::ConfigReference => print!("{}", streamx::config::reference::markdown()),
        Command::CheckConfig { config, set } => check_config(config.as_deref(), &set)?,
        Command::Schema { config, set } => {
            let config = load(config.as_deref(), &set)?;
            let shown = streamx::decode::schema_store::show(&config)
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
            print!("{shown}");
        }
        Command::Query { config, set, sql } => {
            let config = load(config.as_deref(), &set)?;
            let table = streamx::query::run_to_string(&config, &sql)
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.origin()))?;
            println!("{table}");
        }
        Command::Compact {
            config,
            set,
            topics,
            where_sql,
            dry_run,
            json,
        } => {
            let options = streamx::compact::CompactOptions {
                topics,
                where_sql,
                dry_run,
                progress: !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            run_compact(load(config.as_deref(), &set)?, &options, json)?
        }
        Command::Samples {
            topic,
            partitions,
            records,
            bootstrap_servers,
            ready_file,
            print_schema,
        } => {
            if print_schema {
                println!("{}", streamx::decode::sample::clickstream_schema_ddl());
                return Ok(());
            }
            let target = SampleTarget {
                topic,
                partitions,
                records,
                bootstrap_servers,
                ready_file,
            };
            run_samples(&target)?
        }
        Command::Quickstart {
            records,
            partitions,
            out,
        } => {
            quickstart::run(&QuickstartOptions {
                records,
                partitions,
                out,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}
