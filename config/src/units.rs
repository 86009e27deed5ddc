//! Human-friendly units in the configuration: durations (`72h`, `30m`, `0s`) and
//! byte sizes (`64MiB`).

use std::time::Duration;

/// Parses a duration such as `72h`, `1h 30m`, `500ms` or `0s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(trimmed)
        .map_err(|error| format!("expected a duration such as \"72h\", \"30m\" or \"0s\" ({error})"))
}

/// Formats a duration the way it is written in the configuration.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(duration).to_string()
}

/// Parses a byte size such as `1048576`, `512KiB`, `64MiB`, `1GB`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 =
        digits.parse().map_err(|_| "expected a size such as \"64MiB\" or a number of bytes".to_owned())?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}; use B, KiB, MiB or GiB")),
    };
    number.checked_mul(multiplier).ok_or_else(|| "size is too large".to_owned())
}
