//! The wall clock, in the one unit every module uses (milliseconds since the epoch). Its own
//! module so that `sink`, `expr` and `commit` share it without importing each other.

/// Milliseconds since the epoch, wall clock (0 if the clock is before the epoch).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
