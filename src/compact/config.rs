//! The `compact.*` keys (documented with their defaults in `config::keys::KEYS`), parsed into a
//! [`CompactConfig`].

use crate::config::ConfigError;

/// How `streamx compact` selects and sizes its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactConfig {
    /// `compact.target.file.size.bytes`: the size outputs aim at.
    pub target_bytes: u64,
    /// `compact.min.input.files`: small files a directory needs before it is compacted.
    pub min_input_files: usize,
    /// `compact.small.file.ratio`, in percent of the target: a file below it is small.
    pub small_ratio_percent: u64,
    /// `compact.min.age.ms`: a directory is closed once nothing was committed into it this long.
    pub min_age_ms: u64,
    /// `compact.parallelism`: directories compacted at once.
    pub parallelism: usize,
    /// `compact.max.bytes.per.run`: input bytes one run takes on at most.
    pub max_bytes_per_run: u64,
    /// `compact.retention.ms`: compaction records older than this are pruned (the newest of each
    /// directory is kept); a run never creates a record for a plan older than half of it.
    pub retention_ms: u64,
    /// `compact.hive.swap=location`: the Hive partition points at the staged outputs while the
    /// files of its directory are swapped (needs `hive.integration=true`).
    pub hive_location_swap: bool,
    /// `compact.input.grace.ms`: how long the inputs of a swap wait in the trash (out of every
    /// listing, still readable by a reader that resolves them through the journal) before a
    /// later run deletes them.
    pub input_grace_ms: u64,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            target_bytes: 128 << 20,
            min_input_files: 5,
            small_ratio_percent: 50,
            min_age_ms: 3_600_000,
            parallelism: 2,
            max_bytes_per_run: 100 << 30,
            retention_ms: 86_400_000,
            hive_location_swap: false,
            input_grace_ms: 3_600_000,
        }
    }
}

impl CompactConfig {
    /// Files strictly below this many bytes are small.
    pub fn small_below(&self) -> u64 {
        self.target_bytes * self.small_ratio_percent / 100
    }
}

fn invalid(key: &str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        allowed: allowed.to_string(),
    }
}

fn whole(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            value,
            &format!("a whole number from {min} to {max}"),
        )),
    }
}

/// A ratio in (0, 1] with at most two decimals, as a percentage.
fn ratio_percent(key: &str, value: &str) -> Result<u64, ConfigError> {
    let bad = || invalid(key, value, "a number above 0 and at most 1, e.g. 0.5");
    let r: f64 = value.parse().map_err(|_| bad())?;
    if !(r > 0.0 && r <= 1.0) {
        return Err(bad());
    }
    Ok(((r * 100.0).round() as u64).max(1))
}

/// Reads the `compact.*` keys through `get` (set value or registry default).
pub fn from_config<'a>(
    get: impl Fn(&'static str) -> Option<(&'a str, &'a str)>,
) -> Result<CompactConfig, ConfigError> {
    let d = CompactConfig::default();
    let num = |k: &'static str, min: u64, max: u64, default: u64| -> Result<u64, ConfigError> {
        get(k).map_or(Ok(default), |(key, value)| whole(key, value, min, max))
    };
    let small_ratio_percent = match get("compact.small.file.ratio") {
        Some((key, value)) => ratio_percent(key, value)?,
        None => d.small_ratio_percent,
    };
    let hive_location_swap = match get("compact.hive.swap") {
        None => d.hive_location_swap,
        Some((_, "files")) => false,
        Some((_, "location")) => true,
        Some((key, value)) => return Err(invalid(key, value, "files or location")),
    };
    Ok(CompactConfig {
        hive_location_swap,
        target_bytes: num(
            "compact.target.file.size.bytes",
            1024,
            1 << 40,
            d.target_bytes,
        )?,
        min_input_files: num("compact.min.input.files", 2, 1 << 20, 5)? as usize,
        small_ratio_percent,
        min_age_ms: num("compact.min.age.ms", 0, u64::MAX / 4, d.min_age_ms)?,
        parallelism: num("compact.parallelism", 1, 256, 2)? as usize,
        max_bytes_per_run: num(
            "compact.max.bytes.per.run",
            1,
            u64::MAX / 4,
            d.max_bytes_per_run,
        )?,
        retention_ms: num("compact.retention.ms", 60_000, u64::MAX / 4, d.retention_ms)?,
        input_grace_ms: num("compact.input.grace.ms", 0, u64::MAX / 4, d.input_grace_ms)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<CompactConfig, ConfigError> {
        from_config(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .copied()
                .or_else(|| crate::config::keys::default_of(k).map(|d| (k, d)))
        })
    }

    #[test]
    fn defaults_match_the_key_table() {
        assert_eq!(parse(&[]).unwrap(), CompactConfig::default());
    }

    #[test]
    fn values_and_errors() {
        let c = parse(&[
            ("compact.target.file.size.bytes", "10000"),
            ("compact.small.file.ratio", "0.25"),
            ("compact.min.input.files", "2"),
        ])
        .unwrap();
        assert_eq!(
            (c.target_bytes, c.small_below(), c.min_input_files),
            (10000, 2500, 2)
        );
        let e = parse(&[("compact.small.file.ratio", "1.5")]).unwrap_err();
        assert!(e.to_string().contains("compact.small.file.ratio"), "{e}");
        let e = parse(&[("compact.min.input.files", "1")]).unwrap_err();
        assert!(e.to_string().contains("compact.min.input.files"), "{e}");
        assert!(
            parse(&[("compact.hive.swap", "location")])
                .unwrap()
                .hive_location_swap
        );
        let e = parse(&[("compact.hive.swap", "dirs")]).unwrap_err();
        assert!(e.to_string().contains("files or location"), "{e}");
    }
}
