//! Preparing a job: the one path from a key/value map to a [`Config`] that can run. Every entry
//! point goes through [`prepare`] (`streamx ingest`, `check-config`, `compact`, `schema`,
//! `query`, and the worker's create / PUT config / PATCH / validate and its tasks), so they all
//! accept and refuse the same configs.
//!
//! ```text
//!   RawConfig (file, STREAMX_*, --set | stored JSON + worker defaults), providers resolved
//!        ──► Config::from_raw: keys, values, conflicts (config::validate)
//!        ──► sink::pipeline::check_config: transform.sql, partition rule, timestamp extractor
//!            compiled against the value schema, or without one (syntax, unknown functions)
//!        ──► Config
//! ```
//!
//! Errors are the user's and name the key ([`PrepareError::keys`]); the worker puts them on
//! the keys' entries of a validate answer and answers 400 to a create or PUT.

use crate::config::{Config, ConfigError, RawConfig};
use crate::expr::ExprError;
use crate::Origin;

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// SQL of the config (`transform.sql`, `partition.by`, a timestamp extractor, or a declared
    /// schema the SQL is compiled against) that does not compile.
    #[error(transparent)]
    Sql(#[from] ExprError),
}

impl PrepareError {
    /// The keys this error is about; empty when it is about no one key (a conflict).
    pub fn keys(&self) -> Vec<String> {
        match self {
            PrepareError::Config(e) => e.keys(),
            PrepareError::Sql(ExprError::Compile { key, .. })
            | PrepareError::Sql(ExprError::Evaluate { key, .. }) => vec![key.clone()],
        }
    }

    pub fn origin(&self) -> Origin {
        Origin::User
    }
}

/// Validates `raw` (with `${env:..}` / `${file:..}` references already resolved) into the job's
/// [`Config`], its SQL compiled as far as the config alone allows.
pub fn prepare(raw: &RawConfig) -> Result<Config, PrepareError> {
    let config = Config::from_raw(raw)?;
    crate::sink::pipeline::check_config(&config)?;
    Ok(config)
}

/// [`prepare`] over the command line's layers: the file, the environment (`STREAMX_*`), then
/// `--set` overrides. Also returns the layered map as written (for printing it redacted).
pub fn load(
    file: Option<&std::path::Path>,
    env: impl Iterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<(RawConfig, Config), PrepareError> {
    let raw = RawConfig::layered(file, env, overrides)?;
    let config = prepare(&raw.resolved()?)?;
    Ok((raw, config))
}
